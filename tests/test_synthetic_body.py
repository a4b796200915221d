"""Body, rest pose and forward kinematics of the embedded world."""

from __future__ import annotations

import numpy as np
import pytest

from kinemic.motion import joints_to_features
from kinemic.skeleton import SMPL24_PARENTS, bone_lengths, mirror_joints
from kinemic.synthetic.body import (
    REST_DIRECTIONS,
    Body,
    Track,
    animate,
    default_body,
    euler_to_matrix,
    mirror_track,
    sample_body,
)
from kinemic.synthetic.primitives import PRIMITIVES, render, sample


def _rest(body: Body) -> np.ndarray:
    return animate(body, Track.zeros(2), 20)[0]


def test_rest_pose_is_anatomical():
    j = _rest(default_body())
    assert j[15, 1] > j[12, 1] > j[9, 1] > j[0, 1] > j[4, 1] > j[7, 1]  # head above spine above pelvis above legs
    assert j[1, 0] > 0 > j[2, 0] and j[16, 0] > 0 > j[17, 0]  # the body's left is +X
    assert j[1, 1] < j[0, 1] and j[2, 1] < j[0, 1]  # hips slightly below the pelvis
    assert j[10, 2] > j[7, 2] and j[11, 2] > j[8, 2]  # feet point forward (+Z)
    assert j[20, 1] < j[18, 1] < j[16, 1]  # arms hang down
    assert j[15, 2] > j[12, 2]  # the head is up and slightly forward from the neck, unlike RAW_OFFSETS' +Z
    assert min(j[10, 1], j[11, 1]) == pytest.approx(0.03, abs=3e-3)  # feet on the floor (soft stance blend)
    assert 1.5 < j[15, 1] < 1.8


def test_rest_directions_are_unit_and_symmetric():
    norms = np.linalg.norm(REST_DIRECTIONS[1:], axis=1)
    np.testing.assert_allclose(norms, 1.0)
    mirrored = REST_DIRECTIONS[[0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20, 23, 22]]
    np.testing.assert_allclose(mirrored * [-1, 1, 1], REST_DIRECTIONS)


def test_sample_body_varies_height_and_proportions():
    rng = np.random.default_rng(0)
    bodies = [sample_body(rng, (0.86, 1.14), 0.04) for _ in range(50)]
    scales = [b.height_scale for b in bodies]
    assert min(scales) < 0.9 and max(scales) > 1.1
    ratios = [b.bone_lengths[4] / b.bone_lengths[18] for b in bodies]  # thigh / upper arm
    assert np.std(ratios) > 0.02
    with pytest.raises(ValueError, match="height_range"):
        sample_body(rng, (1.2, 0.9), 0.04)


def test_euler_sign_conventions():
    down = np.array([0.0, -1.0, 0.0])
    assert (euler_to_matrix(np.radians([0, 0, 30.0])) @ down)[0] > 0  # +z swings a hanging limb to +X (left)
    assert (euler_to_matrix(np.radians([-30.0, 0, 0])) @ down)[2] > 0  # -x swings it forward
    assert (euler_to_matrix(np.radians([0, 30.0, 0])) @ np.array([0, 0, 1.0]))[0] > 0  # +y turns toward the left


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_bone_lengths_constant_and_features_finite(name):
    rng = np.random.default_rng(1)
    body = sample_body(rng, (0.86, 1.14), 0.04)
    joints = animate(body, render(name, sample(name, rng), 20), 20)
    lengths = bone_lengths(joints, SMPL24_PARENTS)
    assert np.abs(lengths - lengths[0]).max() < 1e-5
    np.testing.assert_allclose(lengths[0, 1:], body.bone_lengths[1:], atol=1e-9)
    assert joints[..., 1].min() > -1e-6  # nothing goes through the floor
    assert np.isfinite(joints_to_features(joints[:, :22])).all()


def test_mirror_track_gives_mirrored_joints_on_a_symmetric_body():
    sym = default_body().offsets.copy()
    perm = [0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20, 23, 22]
    sym = 0.5 * (sym + sym[perm] * [-1, 1, 1])
    body = Body(sym)
    track = render("side_kick", {**sample("side_kick", np.random.default_rng(2)), "side": "left"}, 20)
    left = animate(body, track, 20)
    right = animate(body, mirror_track(track), 20)
    np.testing.assert_allclose(right, mirror_joints(left), atol=1e-9)
