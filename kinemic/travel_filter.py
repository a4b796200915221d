"""Drop generated samples that travel where the target's clips never go.

The target's skeletons carry no translation (VIBE estimates none, and its SMPL pass runs at translation 0), so a real
clip's pelvis stays within centimetres of where it starts. A student sometimes samples a motion that walks several
metres away, the prior's locomotion showing through. A few such samples decide FID (a mean and covariance), and they
put a classifier's inputs far from every real clip. The filter measures each sample's root travel, the farthest
horizontal distance of the pelvis from its first frame, and drops a sample that travels more than `margin` metres
farther than its class's farthest few-shot clip. Dropped samples are not replaced: a class keeps what passed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kinemic.synthetic_set import SyntheticSet

log = logging.getLogger(__name__)
PELVIS = 0
HORIZONTAL = [0, 2]  # x and z of the y-up joint frame (HumanML3D's, which both sets are recovered into)


def root_travel(joints: np.ndarray) -> float:
    """The farthest horizontal distance (metres) of the pelvis from its first-frame position; joints (T, J, 3)."""
    joints = np.asarray(joints)
    if joints.ndim != 3 or joints.shape[-1] != 3 or len(joints) == 0:
        raise ValueError(f"joints must be (T, J, 3) with T >= 1, got shape {joints.shape}")
    path = joints[:, PELVIS, HORIZONTAL]
    return float(np.linalg.norm(path - path[0], axis=1).max())


@dataclass(frozen=True)
class TravelFilter:
    """The filter's decision: per-sample travel and kept mask, per-class limit (metres)."""

    travel: np.ndarray
    kept: np.ndarray
    limits: np.ndarray

    def dropped_per_class(self, labels: np.ndarray) -> np.ndarray:
        return np.bincount(labels[~self.kept], minlength=len(self.limits))


def travel_filter(samples: Sequence[np.ndarray], labels: np.ndarray, reference: Sequence[np.ndarray],
                  reference_labels: np.ndarray, num_classes: int, margin: float) -> TravelFilter:
    """Keep a sample whose travel is at most its class's farthest `reference` clip's plus `margin` metres."""
    if margin <= 0:
        raise ValueError(f"the travel margin must be > 0 metres, got {margin}")
    limits = np.full(num_classes, np.nan)
    for joints, label in zip(reference, reference_labels, strict=True):
        limits[label] = np.fmax(limits[label], root_travel(joints))
    missing = np.flatnonzero(np.isnan(limits))
    if missing.size:
        raise ValueError(f"classes {missing.tolist()} have no few-shot clip to measure their travel against")
    limits += margin
    travel = np.array([root_travel(j) for j in samples])
    kept = travel <= limits[labels]
    emptied = [c for c in range(num_classes) if np.any(labels == c) and not np.any(kept[labels == c])]
    if emptied:
        raise ValueError(f"the travel filter dropped every sample of classes {emptied} (limits "
                         f"{np.round(limits[emptied], 3).tolist()} m): raise generate.travel_margin or set it to 0 "
                         "(off), and look at the samples (plots/generate)")
    return TravelFilter(travel, kept, limits)


def drop_travellers(synthetic: SyntheticSet, reference: Sequence[np.ndarray], reference_labels: np.ndarray,
                    margin: float) -> tuple[SyntheticSet, TravelFilter]:
    """The synthetic set without the samples `travel_filter` drops, in their original order."""
    decision = travel_filter(synthetic.joints, synthetic.labels, reference, reference_labels,
                             len(synthetic.class_names), margin)
    keep = np.flatnonzero(decision.kept)
    dropped = decision.dropped_per_class(synthetic.labels)
    log.info("travel filter (limit: farthest few-shot clip + %g m): dropped %d of %d samples %s", margin,
             int(dropped.sum()), len(synthetic),
             {name: int(n) for name, n in zip(synthetic.class_names, dropped, strict=True) if n})
    kept_set = SyntheticSet([synthetic.features[i] for i in keep], [synthetic.joints[i] for i in keep],
                            synthetic.labels[keep], list(synthetic.class_names))
    return kept_set, decision
