"""The target set (plays NTU RGB+D 120 re-estimated by VIBE): short atomic clips, performers, cameras, artifacts.

Structure as in NTU: performers (`Pppp`) record sessions in setups S018-S032 (`Ssss`), each action twice (`Rrrr`),
filmed at once by three cameras (`Cccc`, at about -45, 0, +45 degrees): the three samples of one SsssPpppRrrr share the
motion and differ by view and estimation noise. Performers have a body, a tempo, an amplitude, a preferred kicking
leg and favourite variants (see `styles`), so the cross-subject split separates styles as it does on NTU.

Output is what the VIBE path has after its SMPL forward pass: 24 joints (hands included) at 30 fps in VIBE's y-down
camera frame, with VIBE's artifacts: no root translation (the pelvis stays put, so jumps and bounces vanish from the
root), per-frame jitter (larger along the camera's depth axis), a slow body-scale wobble and occasional limb-length
bursts (per-frame betas), a slowly drifting global orientation, and mild temporal smoothing.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.ndimage import gaussian_filter1d

from kinemic.formats.ntu import XSUB120_TRAIN_PERFORMERS
from kinemic.formats.target_joints import Joints24Info, write_joints24_dir
from kinemic.rotations import matmul3, matvec3
from kinemic.synthetic.body import Track, animate, rot_x, rot_y, sample_body
from kinemic.synthetic.config import SyntheticTargetConfig
from kinemic.synthetic.curves import num_frames
from kinemic.synthetic.primitives import render
from kinemic.synthetic.styles import (
    VARIANTS,
    distractor_track,
    get_class,
    habitus_track,
    sample_energy,
    sample_habitus,
)

log = logging.getLogger(__name__)

PERFORMER_STREAM = 11
SESSION_STREAM = 12
TARGET_STREAM = 13
CAMERA_STREAM = 14
NUM_NTU_PERFORMERS = 106
CAMERAS = (1, 2, 3)
REPLICATIONS = (1, 2)
XSUB_TRAIN_PERFORMERS = tuple(sorted(XSUB120_TRAIN_PERFORMERS))  # the official NTU RGB+D 120 X-Sub list
_EXTREMITIES = (7, 8, 10, 11, 20, 21, 22, 23)
_LIMB_CHAINS = ((1, 4, 7, 10), (2, 5, 8, 11), (16, 18, 20, 22), (17, 19, 21, 23))
_SMPL_PELVIS = np.array([-0.002, -0.22, 0.028])  # J0 of the SMPL template: where VIBE's untranslated pelvis sits

Progress = Callable[[Iterable], Iterable]


def ntu_id(setup: int, camera: int, performer: int, replication: int, action: int) -> str:
    return f"S{setup:03d}C{camera:03d}P{performer:03d}R{replication:03d}A{action:03d}"


def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(list(keys)))


@dataclass(frozen=True)
class Performer:
    number: int
    setups: tuple[int, ...]
    height_scale: float
    tempo: float
    amplitude: float
    kick_side: str  # preferred leg/arm
    facing_deg: float  # how the performer habitually stands relative to camera 2
    preferences: dict[str, np.ndarray]  # class tag -> variant probabilities
    habitus: dict[str, float]  # constant bodily habits, see styles.sample_habitus
    energy: float  # scales amplitude (and tempo, by its square root) of everything the performer does


def select_performers(num: int, seed: int) -> list[int]:
    """`num` NTU performer numbers, half (rounded up) from the official X-Sub training list, half from the rest."""
    rng = _rng(seed, PERFORMER_STREAM)
    train = np.array(XSUB_TRAIN_PERFORMERS)
    test = np.array([p for p in range(1, NUM_NTU_PERFORMERS + 1) if p not in XSUB_TRAIN_PERFORMERS])
    n_train = min((num + 1) // 2, len(train))
    chosen = list(rng.choice(train, n_train, replace=False)) + list(rng.choice(test, num - n_train, replace=False))
    return sorted(int(p) for p in chosen)


def make_performers(cfg: SyntheticTargetConfig, seed: int) -> list[Performer]:
    numbers = select_performers(cfg.num_performers, seed)
    sessions_needed = max(len(numbers), math.ceil(cfg.clips_per_class / (len(CAMERAS) * len(REPLICATIONS))))
    extra = _rng(seed, SESSION_STREAM).choice(len(numbers), sessions_needed - len(numbers),
                                             replace=sessions_needed - len(numbers) > len(numbers))
    n_sessions = Counter(int(i) for i in extra)
    setups_all = np.arange(cfg.setups[0], cfg.setups[1] + 1)
    d = cfg.difficulty
    performers = []
    for i, number in enumerate(numbers):
        rng = _rng(seed, PERFORMER_STREAM, number)
        k = min(1 + n_sessions[i], len(setups_all))
        setups = tuple(sorted(int(s) for s in rng.choice(setups_all, k, replace=False)))
        prefs = {}
        for tag in cfg.classes:
            weights = get_class(tag).weights(d)
            # Favourite variants: a Dirichlet draw around the class mix; more concentrated when difficulty is low.
            prefs[tag] = rng.dirichlet(weights * (2.0 + 20.0 * (1.0 - d)) + 1e-3)
        performers.append(Performer(
            number=number, setups=setups, height_scale=float(rng.uniform(*cfg.height_range)),
            tempo=float(np.exp(rng.normal(0, 0.06 + 0.14 * d))),
            amplitude=float(np.exp(rng.normal(0, 0.05 + 0.15 * d))),
            kick_side="right" if rng.random() < 0.75 else "left", facing_deg=float(rng.normal(0, 4 + 12 * d)),
            preferences=prefs, habitus=sample_habitus(rng, d), energy=sample_energy(rng, d),
        ))
    return performers


# --------------------------------------------------------------------------------------------------------------------
# one performance and its three views
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Performance:
    joints: np.ndarray  # (T, 24, 3) world y-up at 30 fps, clean
    variant: str
    side: str
    tempo: float
    amplitude: float
    lead_in: float
    distractor: str  # a fidgeting gesture added before/after the action, or ""


def perform(
    cfg: SyntheticTargetConfig, seed: int, performer: Performer, tag: str, setup: int, replication: int
) -> Performance:
    """One execution of class `tag` by a performer, seeded by (seed, action, setup, performer, replication)."""
    action = int(tag[1:])
    rng = _rng(seed, TARGET_STREAM, action, setup, performer.number, replication)
    d = cfg.difficulty
    target_class = get_class(tag)
    names = [v for v, _ in target_class.variants]
    variant = names[int(rng.choice(len(names), p=performer.preferences[tag]))]
    tempo = performer.tempo * np.sqrt(performer.energy) * float(np.exp(rng.normal(0, 0.04 + 0.06 * d)))
    amplitude = performer.amplitude * performer.energy * float(np.exp(rng.normal(0, 0.04 + 0.06 * d)))
    side = performer.kick_side if rng.random() < 0.85 else ("left" if performer.kick_side == "right" else "right")
    action_track, _ = VARIANTS[variant](rng, tempo, amplitude, side, cfg.fps)

    lead_in = float(rng.uniform(0.05, 0.15 + 0.9 * d))
    lead_out = float(rng.uniform(0.05, 0.15 + 0.7 * d))
    seconds = np.clip(lead_in + (len(action_track) - 1) / cfg.fps + lead_out, cfg.min_seconds, cfg.max_seconds)
    num = num_frames(float(seconds), cfg.fps)
    track = Track.zeros(num)
    idle = render("stand_idle", {"duration": (num - 1) / cfg.fps, "sway": float(rng.uniform(0.3, 1.0)),
                                 "phase": float(rng.uniform(0, 6.3)), "look": float(rng.uniform(-10, 10))}, cfg.fps)
    track.add(idle, 0)
    track.add(habitus_track(performer.habitus, num, cfg.fps), 0)
    start = int(round(lead_in * cfg.fps))
    track.add(action_track, start)
    distractor = ""
    if rng.random() < 0.4 * d:  # fidgeting before or after the action, where there is room
        fidget, distractor = distractor_track(rng, cfg.fps)
        before = rng.random() < 0.5
        at = start - len(fidget) if before else start + len(action_track) - 5
        track.add(fidget, int(np.clip(at, 0, max(num - len(fidget), 0))))
    body_rng = _rng(seed, PERFORMER_STREAM, performer.number, 1)  # the same body in every clip of a performer
    body = sample_body(body_rng, (performer.height_scale, performer.height_scale), cfg.proportion_sd)
    joints = animate(body, track, cfg.fps)
    return Performance(joints, variant, side, tempo, amplitude, lead_in, distractor)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Unit-variance noise correlated over the first axis with a Gaussian of `sigma` frames."""
    noise = rng.standard_normal(shape)
    if sigma <= 0:
        return noise
    smooth = gaussian_filter1d(noise, sigma, axis=0, mode="reflect")
    return smooth / max(float(smooth.std()), 1e-9)


def vibe_view(cfg: SyntheticTargetConfig, perf: Performance, view_yaw_deg: float, pitch_deg: float,
              rng: np.random.Generator, scale: float) -> np.ndarray:
    """What VIBE would output for one camera: (T, 24, 3) float32, y-down camera frame, pelvis fixed, with artifacts."""
    d = cfg.difficulty
    num = len(perf.joints)
    rel = perf.joints - perf.joints[:, :1]  # no metric root translation
    # Slowly drifting global orientation error of the estimate.
    drift = np.radians(view_yaw_deg + (1.5 + 4.0 * d) * _smooth_noise(rng, (num,), 12.0))
    if rng.random() < cfg.glitch_prob:  # the estimate flips its global orientation for a few frames
        center, width = rng.uniform(0, num), rng.uniform(2, 8)
        box = np.abs(np.arange(num) - center) < width
        drift = drift + np.radians(rng.choice([-1, 1]) * rng.uniform(60, 180)) * box
    tilt = np.radians(pitch_deg + 1.5 * _smooth_noise(rng, (num,), 15.0))
    rotation = matmul3(rot_x(tilt), rot_y(-drift))  # (T, 3, 3): camera pitch after the view's yaw
    cam = matvec3(rotation[:, None], rel)  # (T, K, 3)
    # Per-frame betas: a slow body-scale wobble, and now and then a burst of limb-length error.
    wobble = 1.0 + cfg.bone_wobble * _smooth_noise(rng, (num,), 4.0)
    cam = cam * wobble[:, None, None]
    if rng.random() < cfg.wobble_event_prob:
        chain = _LIMB_CHAINS[int(rng.integers(len(_LIMB_CHAINS)))]
        center, width = rng.uniform(0, num), rng.uniform(3, 10)
        bump = float(rng.uniform(-0.12, 0.12)) * np.exp(-0.5 * ((np.arange(num) - center) / width) ** 2)
        base = cam[:, chain[0]].copy()
        for j in chain[1:]:
            cam[:, j] += bump[:, None] * (cam[:, j] - base)
    # Jitter: larger along the depth axis (z) and at the extremities, smaller at the pelvis.
    joint_scale = np.ones(24)
    joint_scale[list(_EXTREMITIES)] = 1.5
    joint_scale[0] = 0.3
    jitter = rng.standard_normal((num, 24, 3)) * cfg.jitter_m * joint_scale[None, :, None]
    jitter[..., 2] *= cfg.depth_jitter_factor
    cam = cam + jitter
    if cfg.smoothing_frames > 0:
        cam = gaussian_filter1d(cam, cfg.smoothing_frames, axis=0, mode="nearest")
    cam = cam * np.array([1.0, -1.0, -1.0])  # R_x(180): y-up to VIBE's y-down camera frame
    pelvis = _SMPL_PELVIS * scale + 0.002 * _smooth_noise(rng, (num, 3), 3.0)
    cam = cam - cam[:, :1] + pelvis[:, None, :]
    return cam.astype(np.float32)


# --------------------------------------------------------------------------------------------------------------------
# the set
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetSummary:
    clips: int
    clips_per_class: dict[str, int]
    performers: int
    performers_xsub_train: int
    sessions: int
    mean_seconds: float
    min_seconds: float
    max_seconds: float
    variant_counts: dict[str, int]

    def as_metrics(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {
            "target_clips": self.clips, "target_performers": self.performers,
            "target_performers_xsub_train": self.performers_xsub_train, "target_sessions": self.sessions,
            "target_mean_seconds": round(self.mean_seconds, 4), "target_min_seconds": round(self.min_seconds, 4),
            "target_max_seconds": round(self.max_seconds, 4),
        }
        out.update({f"target_clips_{k}": v for k, v in self.clips_per_class.items()})
        return out


def build_target(cfg: SyntheticTargetConfig, seed: int, out: Path, progress: Progress | None = None) -> TargetSummary:
    """Write `out/joints24/*.npy`, `out/info.json` and the ground-truth `out/variants.parquet`."""
    out = Path(out)
    progress = progress or (lambda it: it)
    performers = make_performers(cfg, seed)
    cam_rng = _rng(seed, CAMERA_STREAM)
    setup_views = {s: cam_rng.normal(0, 3 + 12 * cfg.difficulty, len(CAMERAS)) for s in range(18, 33)}
    setup_pitch = {s: cam_rng.normal(0, 2 + 12 * cfg.difficulty, len(CAMERAS)) for s in range(18, 33)}
    rows: list[dict] = []
    per_class: Counter = Counter()
    variants: Counter = Counter()
    seconds: list[float] = []
    jobs = [(tag, p, s) for tag in cfg.classes for p in performers for s in p.setups]
    clips: dict[str, np.ndarray] = {}
    for label_tag, performer, setup in progress(jobs):
        action = int(label_tag[1:])
        for replication in REPLICATIONS:
            perf = perform(cfg, seed, performer, label_tag, setup, replication)
            variants[f"{label_tag}_{perf.variant}"] += 1
            for c, camera in enumerate(CAMERAS):
                rng = _rng(seed, CAMERA_STREAM, action, setup, performer.number, replication, camera)
                yaw = cfg.camera_yaw_deg[c] + setup_views[setup][c] + performer.facing_deg
                joints = vibe_view(cfg, perf, yaw, setup_pitch[setup][c], rng, performer.height_scale)
                sample_id = ntu_id(setup, camera, performer.number, replication, action)
                clips[sample_id] = joints
                per_class[label_tag] += 1
                seconds.append((len(joints) - 1) / cfg.fps)
                rows.append({
                    "sample_id": sample_id, "action": label_tag, "label": cfg.classes.index(label_tag),
                    "class_name": get_class(label_tag).name, "variant": perf.variant, "side": perf.side,
                    "setup": setup, "camera": camera, "performer": performer.number, "replication": replication,
                    "frames": len(joints), "tempo": round(perf.tempo, 4), "amplitude": round(perf.amplitude, 4),
                    "lead_in_seconds": round(perf.lead_in, 4), "distractor": perf.distractor,
                    "view_yaw_deg": round(float(yaw), 3),
                    "xsub_train": performer.number in XSUB_TRAIN_PERFORMERS,
                })
    write_joints24_dir(out, dict(sorted(clips.items())), Joints24Info(fps=cfg.fps, frame="camera_y_down"))
    rows.sort(key=lambda r: r["sample_id"])
    pq.write_table(pa.Table.from_pylist(rows), out / "variants.parquet")
    log.info("target set: %d clips of %d classes by %d performers in %s", len(rows), len(cfg.classes),
             len(performers), out)
    return TargetSummary(
        clips=len(rows), clips_per_class=dict(per_class), performers=len(performers),
        performers_xsub_train=sum(p.number in XSUB_TRAIN_PERFORMERS for p in performers),
        sessions=sum(len(p.setups) for p in performers), mean_seconds=float(np.mean(seconds)),
        min_seconds=float(np.min(seconds)), max_seconds=float(np.max(seconds)), variant_counts=dict(variants),
    )
