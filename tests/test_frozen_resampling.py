"""Frozen samples drawn again: the mask on hand-built motions, and `resample_frozen` replacing exactly the frozen
samples of a tiny student's set, at their length and class, reproducibly; 0 retries only counts."""

from __future__ import annotations

import numpy as np
import pytest

from kinemic.frozen import FROZEN_BELOW, frozen_mask, per_motion_dynamics
from kinemic.generation import GenerateConfig, generate_synthetic, resample_frozen, retry_seed
from kinemic.target_set import PreparedTarget
from tests.test_generation_distributed import GENERATE, _student, _target


def _swing(amplitude: float, frames: int = 30) -> np.ndarray:
    """Joints (T, 22, 3): a still pelvis, the other joints swinging with `amplitude` metres."""
    t = np.linspace(0, 4 * np.pi, frames)[:, None, None]
    joints = np.zeros((frames, 22, 3)) + np.linspace(0, 1, 22)[None, :, None]
    joints[:, 1:] += amplitude * np.sin(t)
    return joints


def test_frozen_is_under_a_quarter_of_the_class_mean_speed():
    reference = [_swing(0.2), _swing(0.2), _swing(0.01)]
    reference_labels = np.array([0, 0, 1])
    motions = [_swing(0.2), _swing(0.2 * FROZEN_BELOW * 0.9), _swing(0.2 * FROZEN_BELOW * 1.1), _swing(0.001)]
    mask = frozen_mask(motions, np.array([0, 0, 0, 1]), reference, reference_labels, 2)
    assert mask.tolist() == [False, True, False, True]  # speed is linear in the amplitude
    with pytest.raises(ValueError, match=r"classes \[2\] have no reference motion"):
        frozen_mask(motions[:1], np.array([2]), reference, reference_labels, 3)
    assert frozen_mask([], np.array([], dtype=int), reference, reference_labels, 2).shape == (0,)


def _target_freezing(synthetic, share: float) -> PreparedTarget:
    """The tiny target with class 0's few-shot clips scaled so that about `share` of class 0's samples count as
    frozen, and class 1's so slow that none of its samples do."""
    target = _target()
    speeds = per_motion_dynamics(synthetic.joints)[:, 0]
    wanted = [np.quantile(speeds[synthetic.labels == 0], share) / FROZEN_BELOW,
              0.01 * speeds[synthetic.labels == 1].min()]
    joints = np.array(target.joints, dtype=np.float64)
    for offset, length, c in zip(target.samples["offset"], target.samples["length"], target.labels, strict=True):
        clips = [target.sample_joints(k) for k in np.flatnonzero(target.labels == c)]
        scale = wanted[c] / per_motion_dynamics(clips)[:, 0].mean()
        joints[offset:offset + length] = joints[offset:offset + length] * scale
    return PreparedTarget(target.features, joints.astype(np.float32), target.samples)


def test_exactly_the_frozen_samples_are_drawn_again_at_their_length_and_class(one_thread):
    student = _student()
    config = GenerateConfig(**GENERATE)
    synthetic = generate_synthetic(student, _target().split("fewshot"), config)
    fewshot = _target_freezing(synthetic, 0.5).split("fewshot")
    before = frozen_mask(synthetic.joints, synthetic.labels, fewshot.all_joints(), fewshot.labels, 2)
    assert 0 < before.sum() < (synthetic.labels == 0).sum() and not before[synthetic.labels == 1].any()

    counted, only_counts = resample_frozen(student, synthetic, fewshot, config)  # 0 retries: counts only
    assert only_counts.frozen_first == only_counts.frozen_left == before.sum() and only_counts.rounds == 0
    assert [f.tobytes() for f in counted.features] == [f.tobytes() for f in synthetic.features]

    retried, report = resample_frozen(student, synthetic, fewshot, GenerateConfig(**{**GENERATE, "frozen_retries": 2}))
    assert report.frozen_first == before.sum() and 1 <= report.rounds <= 2
    changed = np.array([a.tobytes() != b.tobytes() for a, b in zip(retried.features, synthetic.features, strict=True)])
    assert (changed == before).all()  # every frozen sample drawn again, every other one kept byte for byte
    assert [len(f) for f in retried.features] == [len(f) for f in synthetic.features]
    assert (retried.labels == synthetic.labels).all()
    after = frozen_mask(retried.joints, retried.labels, fewshot.all_joints(), fewshot.labels, 2)
    assert report.frozen_left == after.sum() < before.sum()
    again, _ = resample_frozen(student, synthetic, fewshot, GenerateConfig(**{**GENERATE, "frozen_retries": 2}))
    assert [f.tobytes() for f in again.features] == [f.tobytes() for f in retried.features]  # seeded
    assert len({retry_seed(5, 1), retry_seed(5, 2), retry_seed(6, 1), 5}) == 4  # each round its own stream


def test_frozen_retries_must_not_be_negative():
    with pytest.raises(ValueError, match="generate.frozen_retries must be >= 0"):
        GenerateConfig(frozen_retries=-1)
