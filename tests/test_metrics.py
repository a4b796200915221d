"""FID, diversity, multimodality, top-1, confusion and motion dynamics on hand-made sets with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from kinemic import metrics
from kinemic.metrics import (
    confusion_matrix,
    diversity,
    fid,
    frechet_distance,
    jitter_ratio,
    motion_dynamics,
    multimodality,
    per_class_accuracy,
    top1_accuracy,
)


def _exact_gaussian_sample(mean: np.ndarray, cov: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n points whose sample mean and (n-1)-normalised sample covariance are exactly `mean` and `cov`."""
    z = rng.normal(size=(n, len(mean)))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T  # whitened: sample cov = I
    return mean + z @ np.linalg.cholesky(cov).T


# ---------------------------------------------------------------------------------------------------------------------
# FID
# ---------------------------------------------------------------------------------------------------------------------


def test_fid_of_identical_sets_is_zero(rng):
    feats = rng.normal(size=(500, 16))
    assert fid(feats, feats) == pytest.approx(0.0, abs=1e-8)


def test_fid_matches_closed_form_for_diagonal_gaussians(rng):
    # ||mu1 - mu2||^2 + sum_i (s1_i - s2_i)^2 for diagonal covariances with standard deviations s
    real = _exact_gaussian_sample(np.array([3.0, 0.0]), np.diag([1.0, 4.0]), 400, rng)
    fake = _exact_gaussian_sample(np.array([0.0, 4.0]), np.diag([4.0, 9.0]), 300, rng)
    assert fid(real, fake) == pytest.approx(25.0 + (1 - 2) ** 2 + (2 - 3) ** 2, rel=1e-9)
    assert fid(fake, real) == pytest.approx(fid(real, fake), rel=1e-9)


def test_frechet_distance_for_scaled_full_covariance():
    # sigma2 = c^2 sigma1  =>  sqrtm(sigma1 sigma2) = c sigma1  =>  trace term = (1 - c)^2 tr(sigma1)
    sigma1 = np.array([[2.0, 0.6, 0.1], [0.6, 1.0, 0.3], [0.1, 0.3, 0.5]])
    c = 3.0
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 2.0])
    expected = 9.0 + (1 - c) ** 2 * np.trace(sigma1)
    assert frechet_distance(mu1, sigma1, mu2, c**2 * sigma1) == pytest.approx(expected, rel=1e-9)


def test_fid_retries_with_eps_when_sqrtm_is_not_finite(monkeypatch, rng):
    real_sqrtm = metrics.linalg.sqrtm
    calls = []

    def flaky_sqrtm(matrix):
        calls.append(matrix)
        return np.full_like(matrix, np.nan) if len(calls) == 1 else real_sqrtm(matrix)

    monkeypatch.setattr(metrics.linalg, "sqrtm", flaky_sqrtm)
    feats = rng.normal(size=(50, 3))
    assert fid(feats, feats) == pytest.approx(0.0, abs=1e-4)
    assert len(calls) == 2
    sigma = np.cov(feats, rowvar=False)
    np.testing.assert_allclose(calls[1], (sigma + 1e-6 * np.eye(3)) @ (sigma + 1e-6 * np.eye(3)))


def test_fid_drops_tiny_imaginary_parts_and_rejects_large_ones(monkeypatch):
    sigma = np.eye(2)
    monkeypatch.setattr(metrics.linalg, "sqrtm", lambda m: m.astype(complex) + 1e-9j)
    assert frechet_distance(np.zeros(2), sigma, np.zeros(2), sigma) == pytest.approx(0.0, abs=1e-8)
    monkeypatch.setattr(metrics.linalg, "sqrtm", lambda m: m.astype(complex) + 0.5j)
    with pytest.raises(ValueError, match="imaginary"):
        frechet_distance(np.zeros(2), sigma, np.zeros(2), sigma)


def test_fid_errors():
    with pytest.raises(ValueError, match="at least 2 samples"):
        fid(np.zeros((1, 4)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="feature dimensions differ"):
        fid(np.ones((5, 4)), np.ones((5, 3)))
    with pytest.raises(ValueError, match="2-D"):
        fid(np.zeros(5), np.zeros(5))
    bad = np.zeros((5, 2))
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="sample 3"):
        fid(bad, np.zeros((5, 2)))


# ---------------------------------------------------------------------------------------------------------------------
# diversity and multimodality
# ---------------------------------------------------------------------------------------------------------------------


def test_diversity_of_equidistant_points():
    # n simplex vertices sqrt(2) apart; pairs drawn with replacement repeat an index with probability 1/n
    n = 5
    feats = np.eye(n)
    expected = np.sqrt(2.0) * (1 - 1 / n)
    assert diversity(feats, num_pairs=400_000, rng=0) == pytest.approx(expected, rel=5e-3)
    assert diversity(np.ones((10, 3)), rng=0) == 0.0


def test_diversity_of_points_on_a_line():
    # points 0..n-1 on a line: E|i - j| for i, j uniform with replacement = (n^2 - 1) / (3 n)
    n = 4
    feats = np.c_[np.arange(n), np.zeros(n)] * 2.0
    assert diversity(feats, num_pairs=400_000, rng=1) == pytest.approx(2.0 * (n**2 - 1) / (3 * n), rel=5e-3)


def test_diversity_is_seeded():
    feats = np.random.default_rng(0).normal(size=(30, 8))
    assert diversity(feats, rng=7) == diversity(feats, rng=np.random.default_rng(7))
    assert diversity(feats, rng=7) != diversity(feats, rng=8)


def test_multimodality_measures_within_class_spread():
    # class 0: two points 1 apart; class 1: two points 3 apart; classes are far from each other.
    feats = np.array([[0.0, 0.0], [1.0, 0.0], [100.0, 0.0], [103.0, 0.0]])
    labels = np.array([0, 0, 1, 1])
    # a same-class pair repeats its index half the time: expected (1/2 * 1 + 1/2 * 3) / 2 = 1
    assert multimodality(feats, labels, num_pairs=200_000, rng=0) == pytest.approx(1.0, rel=5e-3)
    tight = np.repeat(np.array([[0.0, 0.0], [50.0, 50.0]]), 3, axis=0)
    tight_labels = np.repeat([0, 1], 3)
    assert multimodality(tight, tight_labels, rng=0) == 0.0
    assert diversity(tight, rng=0) > 0.0


def test_multimodality_errors():
    feats = np.zeros((5, 2))
    with pytest.raises(ValueError, match=r"at least 2 samples per class; classes \[2\]"):
        multimodality(feats, [0, 0, 1, 1, 2])
    with pytest.raises(ValueError, match="one entry per feature row"):
        multimodality(feats, [0, 0, 1])
    with pytest.raises(ValueError, match="at least 2 samples"):
        diversity(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="num_pairs"):
        diversity(feats, num_pairs=0)


# ---------------------------------------------------------------------------------------------------------------------
# recognition
# ---------------------------------------------------------------------------------------------------------------------


def test_top1_and_confusion():
    labels = np.array([0, 0, 1, 1, 1, 2])
    preds = np.array([0, 1, 1, 1, 0, 2])
    assert top1_accuracy(preds, labels) == pytest.approx(4 / 6)
    scores = np.eye(3)[preds] * 0.8 + 0.1
    assert top1_accuracy(scores, labels) == pytest.approx(4 / 6)
    confusion = confusion_matrix(labels, preds, num_classes=4)
    expected = np.array([[1, 1, 0, 0], [1, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(confusion, expected)
    np.testing.assert_allclose(per_class_accuracy(confusion), [0.5, 2 / 3, 1.0, np.nan])


def test_recognition_errors():
    with pytest.raises(ValueError, match="empty"):
        top1_accuracy(np.array([], dtype=int), np.array([], dtype=int))
    with pytest.raises(ValueError, match="matching"):
        top1_accuracy(np.array([0, 1]), np.array([0]))
    with pytest.raises(ValueError, match=r"predictions must be in \[0, 2\)"):
        confusion_matrix([0, 1], [0, 2], num_classes=2)


# ---------------------------------------------------------------------------------------------------------------------
# motion dynamics
# ---------------------------------------------------------------------------------------------------------------------


def _swinging_hand(frames: int, radius: float, omega: float, fps: float) -> np.ndarray:
    """Joint 0 (pelvis) travels in x; joint 1 circles it at `radius` m and `omega` rad/s: known speed, acceleration."""
    t = np.arange(frames) / fps
    joints = np.zeros((frames, 2, 3))
    joints[:, 0, 0] = 3.0 * t  # travel must not count
    joints[:, 1, 0] = joints[:, 0, 0] + radius * np.cos(omega * t)
    joints[:, 1, 1] = radius * np.sin(omega * t)
    return joints


def test_motion_dynamics_of_uniform_circular_motion():
    fps, radius, omega = 200.0, 0.5, 2.0
    result = motion_dynamics([_swinging_hand(400, radius, omega, fps)], fps)
    # Two joints, the pelvis still relative to itself: the mean over joints halves the hand's values.
    assert result["speed"] == pytest.approx(radius * omega / 2, rel=1e-4)
    assert result["acceleration"] == pytest.approx(radius * omega**2 / 2, rel=1e-3)


def test_motion_dynamics_tells_static_and_jittery_sets_apart():
    rng = np.random.default_rng(0)
    smooth = [_swinging_hand(60, 0.4, 3.0, 20.0) for _ in range(4)]
    static = [np.repeat(m[:1], 60, axis=0) for m in smooth]
    jittery = [m + rng.normal(scale=0.02, size=m.shape) for m in smooth]
    reference = motion_dynamics(smooth, 20.0)
    assert motion_dynamics(static, 20.0) == {"speed": 0.0, "acceleration": 0.0}
    assert motion_dynamics(jittery, 20.0)["acceleration"] > 3 * reference["acceleration"]


def test_motion_dynamics_errors():
    with pytest.raises(ValueError, match="at least one"):
        motion_dynamics([], 20.0)
    with pytest.raises(ValueError, match="motion 1: expected"):
        motion_dynamics([np.zeros((5, 2, 3)), np.zeros((2, 2, 3))], 20.0)
    bad = np.zeros((5, 2, 3))
    bad[2, 1, 0] = np.nan
    with pytest.raises(ValueError, match="motion 0 contains NaN"):
        motion_dynamics([bad], 20.0)


def test_jitter_ratio_tells_a_high_frequency_residue_from_a_fast_motion():
    """A smooth swing keeps its acceleration under a 5-frame box filter, at any speed (ratio near 1); the same swing
    with a 1 mm per-frame residue loses most of it (ratio far above), though its speed barely changes."""
    t = np.arange(60) / 20.0
    swing = np.zeros((60, 3, 3))
    swing[:, 1, 0] = 0.3 * np.sin(2 * np.pi * 0.5 * t)  # a joint swinging at 0.5 Hz beside the pelvis
    fast = swing.copy()
    fast[:, 1, 0] = 0.3 * np.sin(2 * np.pi * 1.0 * t)
    noisy = swing + np.random.default_rng(0).normal(0.0, 0.001, swing.shape)
    slow_ratio, fast_ratio, noisy_ratio = jitter_ratio([swing, fast, noisy])
    assert 1.0 <= slow_ratio < 1.1 and 1.0 <= fast_ratio < 1.3
    assert noisy_ratio > 1.8  # 2.3 with this draw
    assert motion_dynamics([noisy], 20)["speed"] < 1.3 * motion_dynamics([swing], 20)["speed"]
    with pytest.raises(ValueError, match="T >= 7"):
        jitter_ratio([swing[:6]])
