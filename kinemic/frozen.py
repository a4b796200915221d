"""Frozen samples: motions a generator holds as a still pose where the prompt asks for movement.

A set's mean speed cannot tell a class whose samples all move too slowly from one whose samples mostly stand still
while a few move: both have a low ratio. They fail differently (a denoiser freezes a periodic motion when the mean
over its phases is a still pose; it slows one it has not learned well), and a student inherits its teacher's frozen
classes. This module holds the per-motion terms of `kinemic.metrics.motion_dynamics` and the share of motions frozen,
for the teacher card (per primitive) and the report (per target class).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kinemic.metrics import motion_dynamics
from kinemic.skeleton import FPS

# A motion moving at under a quarter of its class's mean real speed counts as frozen. On the embedded prior no real
# segment of any primitive falls under it but 7 % of stand idle's (whose slowest tenth moves at 0.27 of its mean).
FROZEN_BELOW = 0.25


def per_motion_dynamics(joints: Sequence[np.ndarray], fps: float = FPS) -> np.ndarray:
    """(N, 2): each motion's (T, J, 3) mean joint speed and acceleration, the terms `motion_dynamics` averages."""
    rows = [[d["speed"], d["acceleration"]] for d in (motion_dynamics([j], fps) for j in joints)]
    return np.array(rows, dtype=np.float64).reshape(-1, 2)


def is_frozen(speeds: np.ndarray, real_mean_speed: np.ndarray | float) -> np.ndarray:
    """The rule, in one place: a speed under FROZEN_BELOW of its real mean speed (broadcast) is frozen."""
    return np.asarray(speeds, dtype=np.float64) < FROZEN_BELOW * np.asarray(real_mean_speed, dtype=np.float64)


def frozen_share(speeds: np.ndarray, real_speeds: np.ndarray) -> float:
    """The share of motions with speeds `speeds` frozen against the mean of the real motions' `real_speeds`."""
    speeds, real_speeds = np.asarray(speeds, dtype=np.float64), np.asarray(real_speeds, dtype=np.float64)
    if len(speeds) == 0 or len(real_speeds) == 0:
        raise ValueError(f"frozen_share needs motions on both sides, got {len(speeds)} and {len(real_speeds)}")
    return float(np.mean(is_frozen(speeds, real_speeds.mean())))


def class_mean_speeds(reference: Sequence[np.ndarray], reference_labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes,): each class's mean speed over its `reference` motions (T, J, 3); NaN for a class without one."""
    reference_labels = np.asarray(reference_labels)
    speeds = per_motion_dynamics(reference)[:, 0]
    return np.array([speeds[reference_labels == c].mean() if np.any(reference_labels == c) else np.nan
                     for c in range(num_classes)])


def frozen_against(joints: Sequence[np.ndarray], labels: np.ndarray, class_speeds: np.ndarray) -> np.ndarray:
    """Per motion (T, J, 3) of class `labels[i]`: is it frozen against `class_speeds[labels[i]]`?"""
    labels = np.asarray(labels)
    missing = sorted(set(np.unique(labels).tolist()) - set(np.flatnonzero(np.isfinite(class_speeds)).tolist()))
    if missing:
        raise ValueError(f"classes {missing} have no reference motion to measure frozen samples against")
    if len(joints) == 0:
        return np.zeros(0, dtype=bool)
    return is_frozen(per_motion_dynamics(joints)[:, 0], class_speeds[labels])


def frozen_mask(joints: Sequence[np.ndarray], labels: np.ndarray, reference: Sequence[np.ndarray],
                reference_labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Per motion (T, J, 3) of class `labels[i]`: is it frozen against its class's `reference` motions' mean speed?

    The reference is the caller's: `generate` holds samples to the few-shot clips (all the method has seen), the
    report's `gen.frozen_share` to the few-shot and unused clips (those FID compares with)."""
    return frozen_against(joints, labels, class_mean_speeds(reference, reference_labels, num_classes))
