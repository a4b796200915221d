"""SMPL-22 constants: consistent chains, parents and mirror maps."""

from __future__ import annotations

import numpy as np

from kinemic import skeleton as sk


def test_chain_matches_parents():
    for chain in sk.KINEMATIC_CHAIN:
        for parent, child in zip(chain[:-1], chain[1:], strict=True):
            assert sk.PARENTS[child] == parent
    covered = {j for chain in sk.KINEMATIC_CHAIN for j in chain}
    assert covered == set(range(sk.NUM_JOINTS))
    assert all(p < j for j, p in enumerate(sk.PARENTS) if j > 0)


def test_raw_offsets_are_unit_and_target_leg_length():
    norms = np.linalg.norm(sk.RAW_OFFSETS[1:], axis=-1)
    np.testing.assert_allclose(norms, 1.0)
    assert abs(sk.leg_length(sk.TARGET_OFFSETS) - 0.81583) < 1e-5  # reference notes, section 1.2


def test_mirror_is_an_involution_and_swaps_sides():
    perm = sk.mirror_permutation()
    np.testing.assert_array_equal(perm[perm], np.arange(22))
    for left, right in zip(sk.LEFT_JOINTS, sk.RIGHT_JOINTS, strict=True):
        assert sk.JOINT_NAMES[left].replace("left", "right") == sk.JOINT_NAMES[right]
        assert perm[left] == right
    joints = np.random.default_rng(0).normal(size=(5, 22, 3))
    np.testing.assert_allclose(sk.mirror_joints(sk.mirror_joints(joints)), joints)
    np.testing.assert_array_equal(sk.mirror_permutation(24)[[22, 23]], [23, 22])


def test_bone_lengths_of_target_offsets():
    pose = np.cumsum(np.zeros((22, 3)), axis=0)
    for j in range(1, 22):
        pose[j] = pose[sk.PARENTS[j]] + sk.TARGET_OFFSETS[j]
    np.testing.assert_allclose(sk.bone_lengths(pose), sk.TARGET_BONE_LENGTHS, atol=1e-12)
    np.testing.assert_allclose(sk.offsets_from_joints(pose), sk.TARGET_OFFSETS, atol=1e-12)
