"""The kinematic quality filter of mined windows: speed from the features, and exactly the windows past the ratio."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kinemic.motion import FeatureStats
from kinemic.window_filter import LOCAL_VEL, class_speeds, mean_joint_speed, plausible_windows


def _clip(speed: float, frames: int = 10) -> np.ndarray:
    """Raw features whose every joint moves `speed` per frame (along x)."""
    features = np.zeros((frames, 263), np.float32)
    vel = np.zeros((22, 3), np.float32)
    vel[:, 0] = speed
    features[:, LOCAL_VEL] = vel.reshape(-1)
    return features


def test_speed_ignores_padded_frames():
    clip = torch.from_numpy(np.concatenate([_clip(0.02, 6), _clip(5.0, 4)]))[None]  # 4 padded frames of garbage
    mask = torch.tensor([[True] * 6 + [False] * 4])
    assert mean_joint_speed(clip, mask).item() == pytest.approx(0.02)
    assert mean_joint_speed(clip).item() == pytest.approx((6 * 0.02 + 4 * 5.0) / 10)


def test_filter_keeps_exactly_the_windows_within_the_ratio():
    reference = class_speeds([_clip(0.02), _clip(0.04), _clip(0.10)], np.array([0, 0, 1]), 3)
    np.testing.assert_allclose(reference[:2], [0.03, 0.10], rtol=1e-6)
    assert np.isnan(reference[2])
    stats = FeatureStats(mean=np.full(263, 0.01, np.float32), std=np.full(263, 2.0, np.float32))
    speeds = [0.03 * 2.9, 0.03 * 3.1, 0.03 / 3.1, 0.10 / 2.9, 0.10 * 3.5]  # class 0, 0, 0, 1, 1
    labels = torch.tensor([0, 0, 0, 1, 1])
    raw = torch.from_numpy(np.stack([_clip(s) for s in speeds]))
    normalised = (raw - 0.01) / 2.0
    mask = torch.ones(5, 10, dtype=torch.bool)
    kept = plausible_windows(normalised, mask, stats, labels, reference, max_ratio=3.0)
    assert kept.tolist() == [1.0, 0.0, 0.0, 1.0, 0.0]
    assert plausible_windows(normalised, mask, stats, labels, reference, max_ratio=4.0).tolist() == [1.0] * 5
    with pytest.raises(ValueError, match="> 1"):
        plausible_windows(normalised, mask, stats, labels, reference, max_ratio=1.0)
