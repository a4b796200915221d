"""HumanML3D representation: parity with the official code, invariances, round trips, mirroring, errors."""

from __future__ import annotations

import numpy as np
import pytest

from kinemic import motion
from kinemic.motion import FEATURE_SLICES, FeatureStats, MotionError
from kinemic.skeleton import (
    LEFT_JOINTS,
    PARENTS,
    RIGHT_JOINTS,
    TARGET_BONE_LENGTHS,
    TARGET_OFFSETS,
    bone_lengths,
    mirror_joints,
)


def _sequence_names(parity):
    return [str(n) for n in parity["sequence_names"]]


_REST_DIRECTIONS = {
    1: (1, -0.3, 0), 2: (-1, -0.3, 0), 3: (0, 1, -0.1), 4: (0, -1, 0.05), 5: (0, -1, 0.05), 6: (0, 1, 0),
    7: (0, -1, -0.05), 8: (0, -1, -0.05), 9: (0, 1, 0), 10: (0, -0.4, 1), 11: (0, -0.4, 1), 12: (0, 1, 0.1),
    13: (1, 0.3, 0), 14: (-1, 0.3, 0), 15: (0, 1, 0.2), 16: (1, -0.2, 0), 17: (-1, -0.2, 0), 18: (0.2, -1, 0),
    19: (-0.2, -1, 0), 20: (0.1, -1, 0.1), 21: (-0.1, -1, 0.1),
}


def _symmetric_lengths() -> np.ndarray:
    lengths = TARGET_BONE_LENGTHS.copy()
    for left, right in zip(LEFT_JOINTS, RIGHT_JOINTS, strict=True):
        lengths[[left, right]] = lengths[[left, right]].mean()
    return lengths


def _walk(rng: np.random.Generator, frames: int = 60, lengths: np.ndarray = TARGET_BONE_LENGTHS) -> np.ndarray:
    """A smooth test motion with constant bone lengths: wobbling bone directions and a curved root path."""
    t = np.arange(frames)[:, None] / 20.0
    phase = rng.uniform(0, 2 * np.pi, size=(22, 3))
    joints = np.zeros((frames, 22, 3))
    joints[:, 0] = np.concatenate([0.3 * t, 0.95 + 0.02 * np.sin(6 * t), 0.8 * t], axis=-1)
    for j in range(1, 22):
        direction = np.array(_REST_DIRECTIONS[j], dtype=float) + 0.15 * np.sin(2 * np.pi * 1.3 * t + phase[j])
        direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
        joints[:, j] = joints[:, PARENTS[j]] + lengths[j] * direction
    return joints


# ---------------------------------------------------------------------------------------------------------- parity


def test_features_match_official_process_file(humanml_parity):
    for name in _sequence_names(humanml_parity):
        ours = motion.joints_to_features(humanml_parity[f"{name}__input_joints"])
        ref = humanml_parity[f"{name}__features"]
        assert ours.shape == ref.shape and ours.dtype == np.float32, name
        np.testing.assert_allclose(ours[:, :259], ref[:, :259], atol=1e-4, rtol=0, err_msg=name)
        np.testing.assert_array_equal(ours[:, 259:], ref[:, 259:], err_msg=f"{name}: foot contacts")


def test_recover_from_ric_matches_official(humanml_parity):
    for name in _sequence_names(humanml_parity):
        ours = motion.features_to_joints(humanml_parity[f"{name}__features"])
        np.testing.assert_allclose(ours, humanml_parity[f"{name}__recovered_from_ric"], atol=5e-4, rtol=0)


def test_recover_from_rot_matches_official(humanml_parity):
    for name in _sequence_names(humanml_parity):
        ours = motion.features_to_joints_rot(humanml_parity[f"{name}__features"])
        np.testing.assert_allclose(ours, humanml_parity[f"{name}__recovered_from_rot"], atol=5e-4, rtol=0)


def test_012314_recovery_is_bit_exact(humanml_parity):
    ours = motion.features_to_joints(humanml_parity["ref012314__new_joint_vecs"])
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, humanml_parity["ref012314__recover_from_ric"])


def test_target_offsets_match_official(humanml_parity):
    np.testing.assert_allclose(TARGET_OFFSETS, humanml_parity["tgt_offsets"], atol=1e-7)
    np.testing.assert_array_equal(np.sign(motion.RAW_OFFSETS), np.sign(humanml_parity["raw_offsets"]))


def test_official_stats_are_group_averaged(humanml_parity):
    """The shipped Std.npy is constant within each feature group, as compute_stats produces."""
    std = humanml_parity["Std"]
    for name, sl in FEATURE_SLICES.items():
        assert np.ptp(std[sl]) < 1e-6, name


def test_batch_equals_single(humanml_parity):
    names = _sequence_names(humanml_parity)
    seqs = [humanml_parity[f"{n}__input_joints"] for n in names]
    batch = motion.joints_to_features_batch(seqs, chunk_size=3)
    for seq, feats in zip(seqs, batch, strict=True):
        np.testing.assert_allclose(feats, motion.joints_to_features(seq), atol=1e-6)


# ---------------------------------------------------------------------------------------------------------- properties


def _ry(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


@pytest.mark.parametrize(
    "theta,scale,shift", [(0.7, 1.0, (0, 0, 0)), (-2.5, 1.3, (4.0, 0.5, -3.0)), (3.0, 0.8, (1, 1, 1))]
)
def test_invariant_to_yaw_translation_and_scale(rng, theta, scale, shift):
    joints = _walk(rng)
    moved = scale * joints @ _ry(theta).T + np.array(shift)
    np.testing.assert_allclose(motion.joints_to_features(moved), motion.joints_to_features(joints), atol=2e-5)


def test_round_trip_keeps_target_bones_and_motion(rng):
    joints = _walk(rng, 80)
    feats = motion.joints_to_features(joints)
    recovered = motion.features_to_joints(feats)
    lengths = bone_lengths(recovered)
    np.testing.assert_allclose(lengths, np.broadcast_to(TARGET_BONE_LENGTHS, lengths.shape), atol=1e-5)
    # Up to the re-targeting (a rigid canonicalisation plus bone-length change), the motion is the same: a second pass
    # through the representation is a fixed point apart from the dropped last frame and smoothing-window edges.
    again = motion.joints_to_features(recovered)
    np.testing.assert_allclose(again[5:-25, 4:67], feats[5 : len(again) - 25, 4:67], atol=5e-3)
    np.testing.assert_allclose(again[:, 259:], feats[: len(again), 259:], atol=0)
    # Canonical frame: floor at zero, frame-0 root at the XZ origin.
    assert abs(recovered[..., 1].min()) < 0.05
    np.testing.assert_allclose(recovered[0, 0, [0, 2]], 0.0, atol=1e-6)


def test_rot_and_ric_recoveries_agree_without_facing_slip(rng):
    feats = motion.joints_to_features(_walk(rng))
    np.testing.assert_allclose(motion.features_to_joints_rot(feats), motion.features_to_joints(feats), atol=2e-3)


def test_mirrored_input_gives_mirrored_features(rng):
    # HumanML3D's target skeleton is slightly asymmetric; with a symmetric body and target the relation is exact.
    joints = _walk(rng, lengths=_symmetric_lengths())
    symmetric = motion.RAW_OFFSETS * _symmetric_lengths()[:, None]
    feats = motion.joints_to_features(joints, target_offsets=symmetric)
    mirrored = motion.joints_to_features(mirror_joints(joints), target_offsets=symmetric)
    np.testing.assert_allclose(mirrored, motion.mirror_features(feats), atol=2e-5)
    # With the official (asymmetric) skeleton the relation holds up to the bone-length asymmetry of a few mm.
    feats = motion.joints_to_features(joints)
    mirrored = motion.joints_to_features(mirror_joints(joints))
    np.testing.assert_allclose(mirrored[:, :193], motion.mirror_features(feats)[:, :193], atol=0.02)


def test_mirror_features_is_an_involution(rng):
    feats = motion.joints_to_features(_walk(rng))
    np.testing.assert_array_equal(motion.mirror_features(motion.mirror_features(feats)), feats)


# ---------------------------------------------------------------------------------------------------------- errors


def test_rejects_nan(rng):
    joints = _walk(rng)
    joints[7, 3] = np.nan
    with pytest.raises(MotionError, match="NaN.*frames \\[7\\]"):
        motion.joints_to_features(joints)


def test_rejects_single_frame(rng):
    with pytest.raises(MotionError, match="at least 2 frames"):
        motion.joints_to_features(_walk(rng)[:1])


def test_rejects_wrong_shape():
    with pytest.raises(MotionError, match=r"\(T, 22, 3\)"):
        motion.joints_to_features(np.zeros((10, 24, 3)))


def test_rejects_undefined_facing(rng):
    joints = _walk(rng)
    # Every joint stacked on the vertical through the root: no left-right direction, hence no facing.
    joints[..., [0, 2]] = joints[:, :1, [0, 2]]
    with pytest.raises(MotionError, match="facing direction is undefined"):
        motion.joints_to_features(joints)


def test_batch_error_names_the_sequence(rng):
    good = _walk(rng)
    with pytest.raises(MotionError, match="sequence 1"):
        motion.joints_to_features_batch([good, good[:1]])


# ---------------------------------------------------------------------------------------------------------- stats


def test_compute_stats_groups_and_feat_bias(rng):
    feats = [motion.joints_to_features(_walk(rng, n)) for n in (40, 55, 70)]
    stats = motion.compute_stats(feats)
    data = np.concatenate(feats)
    np.testing.assert_allclose(stats.mean, data.mean(0), atol=1e-6)
    for sl in FEATURE_SLICES.values():
        np.testing.assert_allclose(stats.std[sl], data.std(0)[sl].mean(), rtol=1e-5)
    biased = motion.compute_stats(feats, feat_bias=25.0)
    np.testing.assert_allclose(biased.std[FEATURE_SLICES["ric"]], stats.std[FEATURE_SLICES["ric"]])
    np.testing.assert_allclose(biased.std[FEATURE_SLICES["foot_contact"]], stats.std[259:263] / 25.0, rtol=1e-6)


def test_normalize_round_trip_numpy_and_torch(rng, tmp_path):
    import torch

    feats = motion.joints_to_features(_walk(rng))
    stats = motion.compute_stats([feats])
    np.testing.assert_allclose(stats.denormalize(stats.normalize(feats)), feats, atol=1e-5)
    tensor = torch.from_numpy(feats)
    assert torch.allclose(stats.normalize(tensor), torch.from_numpy(stats.normalize(feats)), atol=1e-6)
    stats.save(tmp_path / "stats.npz")
    loaded = FeatureStats.load(tmp_path / "stats.npz")
    np.testing.assert_array_equal(loaded.std, stats.std)


def test_stats_validation():
    with pytest.raises(ValueError, match="positive"):
        FeatureStats(mean=np.zeros(263, np.float32), std=np.zeros(263, np.float32))
    with pytest.raises(ValueError, match="shape"):
        FeatureStats(mean=np.zeros(10), std=np.ones(10))
    with pytest.raises(ValueError, match="NaN"):
        motion.compute_stats([np.full((3, 263), np.nan)])


def test_features_to_joints_rejects_non_finite_features():
    """One NaN root velocity would make every later frame's joints NaN without a word (158 of 169 frames)."""
    features = np.zeros((169, 263), np.float32)
    features[11, 0] = np.nan
    with pytest.raises(MotionError, match=r"NaN or inf in 1 of 169 frames \(first \[11\]\), feature columns \[0\] "
                                          r"\['root_rot_vel'\]"):
        motion.features_to_joints(features)
    batch = np.zeros((2, 30, 263), np.float32)
    batch[1, 3:5, 100] = np.inf
    with pytest.raises(MotionError, match=r"in 2 of 60 frames \(first \[\(1, 3\), \(1, 4\)\]\), "
                                          r"feature columns \[100\] \['rot6d'\]"):
        motion.features_to_joints(batch)
