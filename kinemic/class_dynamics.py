"""Does each class of a synthetic set move like its real clips? Mean joint speed and acceleration per class.

The set-level dynamics in `metrics/summary.json` (`gen.speed` against `gen.real.speed`) average the classes, so one
class collapsed to a static pose hides behind two that move; FID and the classifier's accuracy can hide it too (a
static, tilted "running on the spot" is easy to tell apart from a kick). Per class, the collapse is one number, and
the share of frozen samples (`kinemic.frozen`) says whether the class stands still in most samples or moves slowly in
all of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kinemic.frozen import frozen_share, per_motion_dynamics
from kinemic.skeleton import FPS
from kinemic.synthetic_set import SyntheticSet
from kinemic.target_set import PreparedTarget

STATIC_BELOW = 0.3  # a class whose samples move at under 30 % of its real clips' speed is flagged as static


@dataclass(frozen=True)
class ClassDynamics:
    class_name: str
    samples: int
    speed: float
    speed_real: float
    acceleration: float
    acceleration_real: float
    frozen_share: float  # of the samples, those frozen (kinemic.frozen)

    @property
    def speed_ratio(self) -> float:
        return self.speed / self.speed_real

    @property
    def static(self) -> bool:
        return self.speed_ratio < STATIC_BELOW


def class_key(name: str) -> str:
    """'running on the spot' -> 'running_on_the_spot': a metrics key part."""
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def dynamics_metrics(rows: Sequence[ClassDynamics]) -> dict[str, float | int]:
    """Flat keys for `metrics/summary.json` (prefixed `gen.` there): each class's speed over its real clips' and share
    of frozen samples, how many classes are static and the share of all samples frozen, so `dvc exp show` and
    `dvc metrics diff` show a collapsed class."""
    if not rows:
        raise ValueError("dynamics_metrics needs at least one class")
    out: dict[str, float | int] = {
        "static_classes": int(sum(r.static for r in rows)),
        "frozen_share": float(sum(r.frozen_share * r.samples for r in rows) / sum(r.samples for r in rows)),
    }
    out.update({f"speed_ratio.{class_key(r.class_name)}": r.speed_ratio for r in rows})
    out.update({f"frozen_share.{class_key(r.class_name)}": r.frozen_share for r in rows})
    return out


def class_dynamics(synthetic: SyntheticSet, real: PreparedTarget) -> list[ClassDynamics]:
    """Per class of `synthetic`, its dynamics beside those of the same class's clips in `real` (both at the
    pipeline's frame rate, pelvis-relative, as `kinemic.evaluation.generative_metrics` measures the whole set)."""
    if list(synthetic.class_names) != list(real.class_names):
        raise ValueError(f"the synthetic set's classes {synthetic.class_names} differ from the real set's "
                         f"{real.class_names}: they come from different runs")
    return compare_classes(synthetic.joints, synthetic.labels, real.all_joints(), real.labels,
                           list(synthetic.class_names))


def compare_classes(joints: Sequence[np.ndarray], labels: np.ndarray, real_joints: Sequence[np.ndarray],
                    real_labels: np.ndarray, class_names: Sequence[str]) -> list[ClassDynamics]:
    """The per-class comparison on plain motions (T, J, 3) and integer labels."""
    rows = []
    for c, name in enumerate(class_names):
        generated = [j for j, label in zip(joints, labels, strict=True) if label == c]
        clips = [j for j, label in zip(real_joints, real_labels, strict=True) if label == c]
        if not generated or not clips:
            raise ValueError(f"class {name!r} has {len(generated)} synthetic and {len(clips)} real motions: "
                             "both are needed to compare their dynamics")
        mine, theirs = per_motion_dynamics(generated, FPS), per_motion_dynamics(clips, FPS)
        rows.append(ClassDynamics(name, len(generated), float(mine[:, 0].mean()), float(theirs[:, 0].mean()),
                                  float(mine[:, 1].mean()), float(theirs[:, 1].mean()),
                                  frozen_share(mine[:, 0], theirs[:, 0])))
    return rows
