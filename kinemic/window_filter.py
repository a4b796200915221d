"""A kinematic quality filter for mined windows: drop windows that move implausibly fast or slowly for their class.

The paper's future work. A mined window is the prior segment that MIC attends to most (eq. (2)); nothing checks that
it moves like the target action, and a static guard pose mined for "side kick" teaches the student to stand still.
The filter compares each window's mean local joint speed (HumanML3D's local-velocity features, in metres per frame,
so windows and few-shot clips of any length compare) with the mean of its class's few-shot clips, and keeps it when
the ratio lies within [1 / max_ratio, max_ratio]. A dropped window gets weight 0 in the window losses (eqs. (4), (5)),
on top of dynamic window weighting (eq. (6)).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from kinemic.motion import FEATURE_SLICES, FeatureStats

LOCAL_VEL = FEATURE_SLICES["local_vel"]


def mean_joint_speed(features: Tensor, mask: Tensor | None = None) -> Tensor:
    """(B,) mean over valid frames and joints of the local joint speed; `features` are raw (B, T, 263) features."""
    vel = features[..., LOCAL_VEL].reshape(*features.shape[:-1], -1, 3).norm(dim=-1).mean(dim=-1)  # (B, T)
    if mask is None:
        return vel.mean(dim=1)
    valid = mask.to(vel.dtype)
    return (vel * valid).sum(dim=1) / valid.sum(dim=1).clamp_min(1.0)


def class_speeds(clips: Sequence[np.ndarray], labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(C,) mean joint speed of each class's clips (raw features, one array per clip); NaN for a class without any."""
    speeds = np.array([float(mean_joint_speed(torch.from_numpy(np.asarray(c, np.float32))[None])[0]) for c in clips])
    out = np.full(num_classes, np.nan)
    for c in range(num_classes):
        if (labels == c).any():
            out[c] = speeds[labels == c].mean()
    return out


def plausible_windows(windows: Tensor, mask: Tensor, stats: FeatureStats, labels: Tensor, reference: np.ndarray,
                      max_ratio: float) -> Tensor:
    """(B,) 1.0 for a window whose speed is within a factor `max_ratio` of its class reference, else 0.0.

    `windows` are normalised features (as the losses see them); they are de-normalised with `stats` first.
    """
    if max_ratio <= 1.0:
        raise ValueError(f"the window speed ratio must be > 1 (0 turns the filter off), got {max_ratio}")
    mean = torch.as_tensor(stats.mean, dtype=windows.dtype, device=windows.device)
    std = torch.as_tensor(stats.std, dtype=windows.dtype, device=windows.device)
    speed = mean_joint_speed(windows * std + mean, mask)
    ref = torch.as_tensor(reference, dtype=speed.dtype, device=speed.device)[labels]
    ratio = speed / ref.clamp_min(1e-8)
    return ((ratio >= 1.0 / max_ratio) & (ratio <= max_ratio)).to(windows.dtype)
