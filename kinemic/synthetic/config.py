"""Configs of the embedded world (params.yaml section `synthetic`); every default lives here and only here.

    synthetic:
      seed: 0
      prior: {num_motions: 3000, ...}     # SyntheticPriorConfig
      target: {classes: [A099, A102, A104], difficulty: 0.8, ...}   # SyntheticTargetConfig
      previews: {num_prior: 3, ...}       # PreviewsConfig

`SyntheticConfig.from_params` rejects unknown keys at every level, naming the section and the valid keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from kinemic.params import config_from_params


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True)
class SyntheticPriorConfig:
    """The HumanML3D-like prior corpus: long, multi-action, captioned motions at 20 fps."""

    num_motions: int = 3000
    fps: int = 20
    min_seconds: float = 2.0  # 41 frames -> 40 feature rows, HumanML3D's minimum
    max_seconds: float = 9.8  # 197 frames -> 196 feature rows, MDM's max_motion_length
    max_primitives: int = 4
    min_captions: int = 3
    max_captions: int = 5
    subspan_prob: float = 0.5  # chance that a motion gets one caption of a sub-span (HumanML3D #from#to)
    idle_prob: float = 0.35  # chance of an idle segment at the start, between actions and at the end
    blend_seconds: float = 0.35  # overlap of consecutive segments
    height_range: tuple[float, float] = (0.86, 1.14)
    proportion_sd: float = 0.04
    split: tuple[float, float, float] = (0.80, 0.05, 0.15)  # train / val / test
    mirror: bool = True

    def __post_init__(self) -> None:
        _check(self.num_motions >= 1, f"synthetic.prior.num_motions={self.num_motions}: need at least 1 motion")
        _check(self.fps == 20, f"synthetic.prior.fps={self.fps}: the prior plays HumanML3D, which is 20 fps")
        _check(2.0 <= self.min_seconds < self.max_seconds <= 9.8,
               f"synthetic.prior min/max_seconds=({self.min_seconds}, {self.max_seconds}): need 2.0 <= min < max <= "
               "9.8 so that every motion has 40..196 feature rows (HumanML3D's loader drops the others)")
        _check(1 <= self.max_primitives <= 6, f"synthetic.prior.max_primitives={self.max_primitives}: expected 1..6")
        _check(1 <= self.min_captions <= self.max_captions <= 10,
               f"synthetic.prior captions ({self.min_captions}, {self.max_captions}): need 1 <= min <= max <= 10")
        _check(len(self.split) == 3 and abs(sum(self.split) - 1.0) < 1e-6 and min(self.split) >= 0,
               f"synthetic.prior.split={self.split}: expected three non-negative fractions summing to 1")
        _check(len(self.height_range) == 2 and 0 < self.height_range[0] <= self.height_range[1],
               f"synthetic.prior.height_range={self.height_range}: expected [low, high] scale factors")


TARGET_CLASS_TAGS = ("A010", "A023", "A027", "A097", "A099", "A100", "A101", "A102", "A104")


@dataclass(frozen=True)
class SyntheticTargetConfig:
    """The NTU RGB+D 120-like target set as VIBE would estimate it (raw 24 joints, 30 fps, y-down camera frame).

    `difficulty` in [0, 1] scales intra-class variation (variant mix, tempo and amplitude spread, idle lead-in/out),
    view spread and camera tilt; the explicit noise parameters set the VIBE-like estimation artifacts.
    """

    classes: tuple[str, ...] = ("A099", "A102", "A104")
    num_performers: int = 40
    clips_per_class: int = 300  # performer sessions x 3 cameras x 2 replications
    setups: tuple[int, int] = (18, 32)
    fps: int = 30
    min_seconds: float = 1.5
    max_seconds: float = 4.0
    difficulty: float = 0.8  # calibrated: scripts/calibrate_synthetic.py
    camera_yaw_deg: tuple[float, float, float] = (-45.0, 0.0, 45.0)
    jitter_m: float = 0.012  # per-frame joint jitter (x, y in the image plane)
    depth_jitter_factor: float = 2.5  # jitter along the camera's depth axis, relative to jitter_m
    bone_wobble: float = 0.015  # sd of the slow per-frame body-scale wobble (per-frame betas)
    wobble_event_prob: float = 0.3  # chance of a burst of limb-length error in a clip
    glitch_prob: float = 0.05  # chance that a view briefly loses the global orientation (VIBE failures)
    smoothing_frames: float = 0.8  # sigma of VIBE's mild temporal smoothing
    height_range: tuple[float, float] = (0.86, 1.14)
    proportion_sd: float = 0.04

    def __post_init__(self) -> None:
        unknown = sorted(set(self.classes) - set(TARGET_CLASS_TAGS))
        _check(not unknown and len(self.classes) >= 2,
               f"synthetic.target.classes={list(self.classes)}: need at least 2 of {list(TARGET_CLASS_TAGS)}"
               + (f" (unknown: {unknown})" if unknown else ""))
        _check(len(set(self.classes)) == len(self.classes), f"synthetic.target.classes has duplicates: {self.classes}")
        _check(self.num_performers >= 2, f"synthetic.target.num_performers={self.num_performers}: need at least 2 "
               "(one on each side of the cross-subject split)")
        _check(self.num_performers <= 106, f"synthetic.target.num_performers={self.num_performers}: NTU has 106")
        _check(self.clips_per_class >= 1, f"synthetic.target.clips_per_class={self.clips_per_class}: need >= 1")
        _check(18 <= self.setups[0] <= self.setups[1] <= 32,
               f"synthetic.target.setups={self.setups}: NTU120's new setups are 18..32")
        _check(self.fps == 30, f"synthetic.target.fps={self.fps}: VIBE on NTU videos gives 30 fps")
        _check(0.5 <= self.min_seconds <= self.max_seconds <= 10.0,
               f"synthetic.target min/max_seconds=({self.min_seconds}, {self.max_seconds}): expected 0.5 <= min <= max")
        _check(0.0 <= self.difficulty <= 1.0, f"synthetic.target.difficulty={self.difficulty}: expected 0..1")
        _check(len(self.camera_yaw_deg) == 3, f"synthetic.target.camera_yaw_deg={self.camera_yaw_deg}: need 3 views")
        for name in ("jitter_m", "depth_jitter_factor", "bone_wobble", "wobble_event_prob", "glitch_prob",
                     "smoothing_frames"):
            _check(getattr(self, name) >= 0, f"synthetic.target.{name}={getattr(self, name)}: must be >= 0")


@dataclass(frozen=True)
class PreviewsConfig:
    """Preview GIFs the stage writes: a few prior motions and one target sample per class."""

    num_prior: int = 3
    frame_step: int = 2
    enabled: bool = True

    def __post_init__(self) -> None:
        _check(self.num_prior >= 0, f"synthetic.previews.num_prior={self.num_prior}: expected >= 0")
        _check(self.frame_step >= 1, f"synthetic.previews.frame_step={self.frame_step}: expected an integer >= 1")


@dataclass(frozen=True)
class SyntheticConfig:
    seed: int = 0
    prior: SyntheticPriorConfig = field(default_factory=SyntheticPriorConfig)
    target: SyntheticTargetConfig = field(default_factory=SyntheticTargetConfig)
    previews: PreviewsConfig = field(default_factory=PreviewsConfig)

    @classmethod
    def from_params(cls, section: dict[str, Any] | None) -> SyntheticConfig:
        """Build from the `synthetic` params section; nested sections are checked like the top level."""
        section = dict(section or {})
        nested = {"prior": SyntheticPriorConfig, "target": SyntheticTargetConfig, "previews": PreviewsConfig}
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(section) - valid)
        if unknown:
            raise ValueError(f"params section 'synthetic': unknown keys {unknown}; valid keys are {sorted(valid)}")
        values: dict[str, Any] = {}
        for key, value in section.items():
            if key in nested:
                if not isinstance(value, dict):
                    raise ValueError(f"params section 'synthetic.{key}' must be a mapping, got {value!r}")
                values[key] = config_from_params(nested[key], value, f"synthetic.{key}")
            else:
                values[key] = value
        if not isinstance(values.get("seed", 0), int):
            raise ValueError(f"synthetic.seed={values['seed']!r}: expected an integer")
        return cls(**values)
