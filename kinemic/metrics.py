"""Generative and recognition metrics: FID, diversity, multimodality, top-1, confusion; motion dynamics.

Definitions follow Action2Motion / ACTOR (`reference/humanml3d_vibe_ntu.md` section 7), computed on the pooled
penultimate features of an action classifier (`kinemic.classifier.extract_features`):

* FID: Frechet distance of Gaussians fitted to real and generated features,
  ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 sqrtm(S_r S_g));
* diversity: mean distance over 200 random pairs drawn with replacement from all samples, whatever their class;
* multimodality: for each class, 20 random same-class pairs; sum of distances / (20 * num_classes).

Features are (N, D) arrays, one row per sample. `motion_dynamics` reads joints instead: mean joint speed and
acceleration, which tell a static (collapsed) or jittery generator apart. Only numpy and scipy: no model is needed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy import linalg
from scipy.ndimage import uniform_filter1d

logger = logging.getLogger(__name__)

DIVERSITY_PAIRS = 200  # S_d in Action2Motion / ACTOR
MULTIMODALITY_PAIRS = 20  # S_l per class
_IMAGINARY_TOLERANCE = 1e-3  # larger imaginary parts on the sqrtm diagonal mean the result cannot be trusted

RngLike = np.random.Generator | int | None


def _features(feats: np.ndarray, name: str, min_samples: int) -> np.ndarray:
    arr = np.asarray(feats, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (num_samples, feature_dim), got shape {arr.shape}")
    if arr.shape[0] < min_samples:
        raise ValueError(f"{name} needs at least {min_samples} samples, got {arr.shape[0]}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf (sample {int(np.nonzero(~np.isfinite(arr).all(axis=1))[0][0])})")
    return arr


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2).

    When sqrtm(sigma1 sigma2) is not finite (singular product), eps * I is added to both covariances and it is retried.
    Tiny imaginary parts from round-off are dropped; large ones raise, since the distance would be meaningless.
    """
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(
            f"Gaussian dimensions differ: means {mu1.shape} vs {mu2.shape}, covs {sigma1.shape} vs {sigma2.shape}"
        )
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        logger.warning("FID: sqrtm of the covariance product is not finite; adding %g * I to both covariances", eps)
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        max_imag = float(np.max(np.abs(np.diagonal(covmean).imag)))
        if max_imag > _IMAGINARY_TOLERANCE:
            raise ValueError(
                f"FID: sqrtm of the covariance product has imaginary parts up to {max_imag:.3g}; the covariances are "
                "too ill-conditioned (typically fewer samples than feature dimensions): use more samples"
            )
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def fid(real_feats: np.ndarray, fake_feats: np.ndarray) -> float:
    """FID between two feature sets (N_r, D) and (N_g, D): Gaussian fit with np.cov(rowvar=False)."""
    real = _features(real_feats, "real_feats", min_samples=2)
    fake = _features(fake_feats, "fake_feats", min_samples=2)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature dimensions differ: real {real.shape[1]} vs fake {fake.shape[1]}")
    return frechet_distance(
        real.mean(axis=0), np.cov(real, rowvar=False), fake.mean(axis=0), np.cov(fake, rowvar=False)
    )


def diversity(feats: np.ndarray, num_pairs: int = DIVERSITY_PAIRS, rng: RngLike = None) -> float:
    """Mean Euclidean distance of `num_pairs` random index pairs drawn with replacement over all samples.

    A pair may repeat an index (distance 0), as in the reference implementation.
    """
    arr = _features(feats, "feats", min_samples=2)
    if num_pairs < 1:
        raise ValueError(f"num_pairs must be >= 1, got {num_pairs}")
    rng = np.random.default_rng(rng)
    first = rng.integers(len(arr), size=num_pairs)
    second = rng.integers(len(arr), size=num_pairs)
    return float(np.linalg.norm(arr[first] - arr[second], axis=1).mean())


def multimodality(
    feats: np.ndarray, labels: Sequence[int] | np.ndarray, num_pairs: int = MULTIMODALITY_PAIRS, rng: RngLike = None
) -> float:
    """Within-class spread: for each class present, `num_pairs` same-class pairs; sum / (num_pairs * num_classes)."""
    arr = _features(feats, "feats", min_samples=2)
    labels = np.asarray(labels)
    if labels.shape != (len(arr),):
        raise ValueError(f"labels must have one entry per feature row ({len(arr)}), got shape {labels.shape}")
    if num_pairs < 1:
        raise ValueError(f"num_pairs must be >= 1, got {num_pairs}")
    classes, counts = np.unique(labels, return_counts=True)
    if (counts < 2).any():
        raise ValueError(
            f"multimodality needs at least 2 samples per class; classes {classes[counts < 2].tolist()} have fewer"
        )
    rng = np.random.default_rng(rng)
    total = 0.0
    for cls in classes:
        members = np.flatnonzero(labels == cls)
        first = members[rng.integers(len(members), size=num_pairs)]
        second = members[rng.integers(len(members), size=num_pairs)]
        total += float(np.linalg.norm(arr[first] - arr[second], axis=1).sum())
    return total / (num_pairs * len(classes))


def top1_accuracy(predictions: np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
    """Fraction of correct predictions; `predictions` are class ids (N,) or scores (N, C), arg-maxed."""
    preds = np.asarray(predictions)
    if preds.ndim == 2:
        preds = preds.argmax(axis=1)
    labels = np.asarray(labels)
    if preds.shape != labels.shape or preds.ndim != 1:
        raise ValueError(f"predictions {preds.shape} and labels {labels.shape} must be matching flat arrays")
    if len(labels) == 0:
        raise ValueError("top-1 accuracy of an empty set is undefined")
    return float((preds == labels).mean())


def confusion_matrix(
    labels: Sequence[int] | np.ndarray, predictions: Sequence[int] | np.ndarray, num_classes: int
) -> np.ndarray:
    """(C, C) int64 counts; row = true class, column = predicted class."""
    labels, preds = np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
    if labels.shape != preds.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and predictions {preds.shape} must be matching flat arrays")
    for name, arr in (("labels", labels), ("predictions", preds)):
        if len(arr) and (arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(f"{name} must be in [0, {num_classes}), got values in [{arr.min()}, {arr.max()}]")
    return np.bincount(labels * num_classes + preds, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )  # (C, C)


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """Recall of each class (C,) from a confusion matrix; NaN for classes with no true samples."""
    confusion = np.asarray(confusion)
    support = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diagonal(confusion) / support, np.nan)


def motion_dynamics(joints: Sequence[np.ndarray], fps: float) -> dict[str, float]:
    """How much and how smoothly motions move: mean joint speed (m/s) and acceleration (m/s^2), pelvis-relative.

    FID does not say *why* a generated set is far from the real one; these two do. A generator collapsed to static
    poses has a speed far below the real clips'; one that leaves small-noise residue has a far larger acceleration
    (jitter). Each motion (T, J, 3) with T >= 3 counts once, whatever its length.
    """
    if len(joints) == 0:
        raise ValueError("motion_dynamics needs at least one motion")
    speeds, accelerations = [], []
    for i, motion in enumerate(joints):
        arr = np.asarray(motion, dtype=np.float64)
        if arr.ndim != 3 or arr.shape[0] < 3:
            raise ValueError(f"motion {i}: expected (T >= 3, J, 3) joints, got shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"motion {i} contains NaN or inf")
        relative = arr - arr[:, :1]  # the body's own motion, not its travel
        speeds.append(mean_joint_difference(relative, 1) * fps)
        accelerations.append(mean_joint_difference(relative, 2) * fps**2)
    return {"speed": float(np.mean(speeds)), "acceleration": float(np.mean(accelerations))}


def mean_joint_difference(joints: np.ndarray, order: int) -> float:
    """Mean over frames and joints of the norm of the `order`-th frame difference of (T, J, 3) joints (per frame)."""
    return float(np.linalg.norm(np.diff(joints, n=order, axis=0), axis=-1).mean())


def jitter_ratio(joints: Sequence[np.ndarray], window: int = 5) -> np.ndarray:
    """(N,) each motion's mean joint acceleration over that of its `window`-frame moving average (pelvis-relative).

    Tells the two causes of a high acceleration apart: a motion that is fast where the real one is slow keeps its
    acceleration under a short box filter (ratio near the real motions'), a small high-frequency residue on top of
    the motion loses most of it (ratio well above theirs). The filter's edge frames are left out.
    """
    ratios = []
    for i, motion in enumerate(joints):
        arr = np.asarray(motion, dtype=np.float64)
        if arr.ndim != 3 or arr.shape[0] < window + 2:
            raise ValueError(f"motion {i}: expected (T >= {window + 2}, J, 3) joints, got shape {arr.shape}")
        relative = arr - arr[:, :1]
        smooth = uniform_filter1d(relative, window, axis=0)
        edge = window // 2
        inner = slice(edge, arr.shape[0] - edge)
        raw, smoothed = (mean_joint_difference(x[inner], 2) for x in (relative, smooth))
        ratios.append(raw / max(smoothed, 1e-12))
    return np.asarray(ratios)
