"""The prior corpus (plays HumanML3D): long, multi-action, captioned motions in the HumanML3D directory layout.

Each motion chains 1-4 primitives with optional idle segments; consecutive segments overlap by `blend_seconds` and
their enveloped joint-angle deltas add, so transitions are smooth. A random subject performs it by forward
kinematics; the joints go through the same `joints_to_features_batch` as real mocap. Every motion is seeded from
SeedSequence([seed, PRIOR_STREAM, index]), so its bytes do not depend on processing order or corpus size.

Besides what HumanML3D ships, `primitives.parquet` records the ground truth (which primitive spans which frames),
which real data would not have: later stages use it to measure mining purity.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kinemic.formats.humanml3d import (
    MAX_MOTION_LEN,
    MIN_MOTION_LEN,
    Caption,
    write_motion,
    write_split_files,
    write_stats,
)
from kinemic.motion import FEATURE_SLICES, FeatureStats, features_to_joints, joints_to_features_batch
from kinemic.skeleton import FEATURE_DIM, mirror_joints
from kinemic.synthetic import captions as cap
from kinemic.synthetic.body import Track, animate, sample_body
from kinemic.synthetic.config import SyntheticPriorConfig
from kinemic.synthetic.curves import TrackBuilder
from kinemic.synthetic.primitives import PRIMITIVES, Params, render, sample

log = logging.getLogger(__name__)

PRIOR_STREAM = 1
SPLIT_STREAM = 2
Progress = Callable[[Iterable], Iterable]

# How often each primitive is drawn for an action slot of the prior corpus.
PRIOR_WEIGHTS = {
    "walk": 14, "run": 5, "turn_around": 4, "jog_in_place": 6, "high_knees": 3, "butt_kicks": 2, "jump": 6,
    "side_kick": 5, "front_kick": 4, "back_kick": 3, "punch": 6, "wave": 5, "clap": 4, "bow": 3, "stretch_up": 5,
    "side_bend": 4, "torso_twist": 3, "squat": 4, "arm_circles": 4, "toe_touch": 3,
}


@dataclass(frozen=True)
class Segment:
    """One primitive instance placed on a motion's timeline (frames at 20 fps, end exclusive)."""

    primitive: str
    params: Params
    start: int
    end: int


@dataclass(frozen=True)
class PriorMotion:
    motion_id: str
    joints: np.ndarray  # (T, 22, 3) y-up metres, 20 fps, exact bone lengths
    segments: tuple[Segment, ...]
    captions: tuple[Caption, ...]


# --------------------------------------------------------------------------------------------------------------------
# one motion
# --------------------------------------------------------------------------------------------------------------------


def motion_rng(seed: int, index: int, stream: int = PRIOR_STREAM) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream, index]))


def _plan(cfg: SyntheticPriorConfig, rng: np.random.Generator) -> list[tuple[str, Params]]:
    """Primitive instances in temporal order, fitting max_seconds (with overlaps) and padded to min_seconds."""
    names = list(PRIOR_WEIGHTS)
    probs = np.array([PRIOR_WEIGHTS[n] for n in names], dtype=np.float64)
    probs /= probs.sum()
    n_actions = int(rng.choice(np.arange(1, cfg.max_primitives + 1), p=_count_probs(cfg.max_primitives)))
    plan: list[tuple[str, Params]] = []
    if rng.random() < cfg.idle_prob:
        plan.append(("stand_idle", sample("stand_idle", rng)))
    for i in range(n_actions):
        for _ in range(3):  # re-draw an instance that would overflow the motion
            name = str(rng.choice(names, p=probs))
            params = sample(name, rng)
            repeat = bool(plan) and plan[-1][0] == name  # the same action twice in a row reads as one
            if not repeat and _total(plan + [(name, params)], cfg) <= cfg.max_seconds:
                break
        else:
            break
        plan.append((name, params))
        if i < n_actions - 1 and rng.random() < cfg.idle_prob:
            idle = sample("stand_idle", rng)
            if _total(plan + [("stand_idle", idle)], cfg) <= cfg.max_seconds:
                plan.append(("stand_idle", idle))
    if not any(name != "stand_idle" for name, _ in plan):  # the first draw overflowed: fall back to a short action
        plan = [("jump", {**sample("jump", rng), "reps": 1, "rep_time": 1.2, "duration": 1.5})]
    if rng.random() < cfg.idle_prob:
        idle = sample("stand_idle", rng)
        if _total(plan + [("stand_idle", idle)], cfg) <= cfg.max_seconds:
            plan.append(("stand_idle", idle))
    short = cfg.min_seconds + 0.1 - _total(plan, cfg)
    if short > 0:
        plan.append(("stand_idle", {**sample("stand_idle", rng), "duration": short + cfg.blend_seconds + 0.2}))
    return plan


def _count_probs(max_primitives: int) -> np.ndarray:
    weights = np.array([3.0, 4.0, 3.0, 2.0, 1.0, 1.0][:max_primitives])
    return weights / weights.sum()


def _total(plan: list[tuple[str, Params]], cfg: SyntheticPriorConfig) -> float:
    durations = [float(p["duration"]) for _, p in plan]
    return sum(durations) - cfg.blend_seconds * max(len(durations) - 1, 0)


def _layout(plan: list[tuple[str, Params]], cfg: SyntheticPriorConfig) -> tuple[list[Segment], list[Track], int]:
    fps = cfg.fps
    segments, tracks, t0 = [], [], 0.0
    for name, params in plan:
        track = render(name, params, fps)
        start = int(round(t0 * fps))
        segments.append(Segment(name, params, start, start + len(track)))
        tracks.append(track)
        t0 += float(params["duration"]) - cfg.blend_seconds
    num = int(np.clip(max(s.end for s in segments), round(cfg.min_seconds * fps) + 1, round(cfg.max_seconds * fps) + 1))
    segments = [Segment(s.primitive, s.params, s.start, min(s.end, num)) for s in segments]
    return segments, tracks, num


def _posture(rng: np.random.Generator, num: int, fps: float) -> Track:
    """A subject's habitual posture and a slow sway under every segment, so no frame is a frozen rest pose."""
    b = TrackBuilder((num - 1) / fps, fps)
    b.pair("elbow", x=-rng.uniform(4, 14))
    b.pair("shoulder", z=rng.uniform(0, 6))
    b.spine(x=rng.uniform(-4, 5))
    b.rot("neck", x=rng.uniform(-6, 8))
    b.rot("pelvis", z=1.0 * np.sin(2 * np.pi * 0.2 * b.t + rng.uniform(0, 6.3)))
    posture = Track.zeros(num)
    posture.add(b.track, 0)
    return posture


def make_motion(cfg: SyntheticPriorConfig, seed: int, index: int) -> PriorMotion:
    """Motion `index` of the corpus: segments, joints by FK, and 3-5 captions."""
    rng = motion_rng(seed, index)
    plan = _plan(cfg, rng)
    segments, tracks, num = _layout(plan, cfg)
    track = _posture(rng, num, cfg.fps)
    for seg, tr in zip(segments, tracks, strict=True):
        track.add(tr, seg.start)
    body = sample_body(rng, cfg.height_range, cfg.proportion_sd)
    joints = animate(body, track, cfg.fps, start_yaw=rng.uniform(-np.pi, np.pi), start_xz=rng.uniform(-1, 1, 2))
    captions = _captions(cfg, segments, num, rng)
    return PriorMotion(f"{index:06d}", joints[:, :22], tuple(segments), tuple(captions))


# --------------------------------------------------------------------------------------------------------------------
# captions
# --------------------------------------------------------------------------------------------------------------------


def _seconds(frame: int, fps: int) -> float:
    """A time in seconds that HumanML3D's loader maps back to exactly `frame` via int(seconds * fps)."""
    value = round(frame / fps, 4)
    while int(float(f"{value:g}") * fps) < frame:
        value = round(value + 1e-4, 4)
    return value


def _subspan(segments: list[Segment], num: int, rng: np.random.Generator, fps: int) -> Caption | None:
    """A caption of one action's span widened to >= 2 s, or None when no span shorter than the motion fits."""
    rows = num - 1  # feature rows; the loader slices features[int(from * fps):int(to * fps)]
    actions = [s for s in segments if s.primitive != "stand_idle"]
    if rows < MIN_MOTION_LEN + 10 or not actions:
        return None
    seg = actions[int(rng.integers(len(actions)))]
    lo, hi = max(seg.start, 0), min(seg.end, rows)
    while hi - lo < MIN_MOTION_LEN:  # widen symmetrically within the motion
        lo, hi = max(lo - 2, 0), min(hi + 2, rows)
    if hi - lo >= rows - 4 or hi - lo >= MAX_MOTION_LEN:
        return None
    covered = [s for s in actions if min(s.end, hi) - max(s.start, lo) > 0.5 * (s.end - s.start)] or [seg]
    subject = cap.pick(rng, cap.SUBJECTS)
    text = cap.sequence_caption(subject, [cap.phrase(s.primitive, s.params, rng) for s in covered], rng)
    return Caption(text, cap.tokens(text), _seconds(lo, fps), _seconds(hi, fps))


def _captions(cfg: SyntheticPriorConfig, segments: list[Segment], num: int, rng: np.random.Generator) -> list[Caption]:
    actions = [s for s in segments if s.primitive != "stand_idle"]
    n_total = int(rng.integers(cfg.min_captions, cfg.max_captions + 1))
    texts: list[str] = []

    def full_sequence() -> str:
        kept = [s for s in segments if s.primitive != "stand_idle" or rng.random() < 0.25]
        phrases = [cap.phrase(s.primitive, s.params, rng) for s in kept]
        return cap.sequence_caption(cap.pick(rng, cap.SUBJECTS), phrases, rng)

    texts.append(full_sequence())
    categories = Counter(PRIMITIVES[s.primitive].category for s in actions)
    sub = _subspan(segments, num, rng, cfg.fps) if rng.random() < cfg.subspan_prob else None
    n_whole = n_total - (sub is not None)
    for _ in range(50):
        if len(texts) >= n_whole:
            break
        kind = rng.random()
        if kind < 0.3 and categories:
            category = max(sorted(categories), key=lambda c: categories[c])
            text = cap.abstract_caption(cap.pick(rng, cap.SUBJECTS), category, rng) or full_sequence()
        elif kind < 0.55 and len(actions) > 1:
            main = max(actions, key=lambda s: s.end - s.start)
            text = cap.sequence_caption(cap.pick(rng, cap.SUBJECTS), [cap.phrase(main.primitive, main.params, rng)],
                                        rng)
        else:
            text = full_sequence()
        if text not in texts:
            texts.append(text)
    while len(texts) < n_whole:  # tiny template spaces can repeat; HumanML3D has duplicate captions too
        texts.append(full_sequence())
    captions = [Caption(t, cap.tokens(t)) for t in texts]
    if sub is not None:
        captions.insert(int(rng.integers(1, len(captions) + 1)), sub)
    return captions


def mirror_caption(caption: Caption) -> Caption:
    text = cap.mirror_text(caption.text)
    return Caption(text, cap.tokens(text), caption.start, caption.end)


def mirror_params(params: Params) -> Params:
    """Parameters of the mirrored instance (for the ground-truth table)."""
    out = dict(params)
    if out.get("side") in ("left", "right"):
        out["side"] = "right" if out["side"] == "left" else "left"
    if out.get("direction") in ("clockwise", "counterclockwise"):
        out["direction"] = "counterclockwise" if out["direction"] == "clockwise" else "clockwise"
    if "turn" in out:
        out["turn"] = -float(out["turn"])
    return out


# --------------------------------------------------------------------------------------------------------------------
# the corpus
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PriorSummary:
    """Corpus statistics for the stage's metrics."""

    motions: int
    mirrors: int
    captions: int
    subspan_captions: int
    frames: int
    mean_seconds: float
    min_seconds: float
    max_seconds: float
    splits: dict[str, int]
    primitive_counts: dict[str, int]

    def as_metrics(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {
            "prior_motions": self.motions, "prior_mirrors": self.mirrors, "prior_files": self.motions + self.mirrors,
            "prior_captions": self.captions, "prior_subspan_captions": self.subspan_captions,
            "prior_frames": self.frames, "prior_mean_seconds": round(self.mean_seconds, 4),
            "prior_min_seconds": round(self.min_seconds, 4), "prior_max_seconds": round(self.max_seconds, 4),
        }
        out.update({f"prior_split_{k}": v for k, v in self.splits.items()})
        out.update({f"prior_segments_{k}": v for k, v in sorted(self.primitive_counts.items())})
        return out


class _RunningStats:
    """Per-dimension mean and (population) std over feature chunks in float64, then HumanML3D's group averaging.

    The same numbers as `kinemic.motion.compute_stats` over the concatenation of all files, without holding the
    whole corpus (and its float64 copies, several GB at the default size) in memory.
    """

    def __init__(self) -> None:
        self.count, self.total, self.total_sq = 0, np.zeros(FEATURE_DIM), np.zeros(FEATURE_DIM)
        self.shift: np.ndarray | None = None

    def update(self, chunk: list[np.ndarray]) -> None:
        data = np.concatenate(chunk).astype(np.float64)
        if self.shift is None:  # shifting by a first estimate keeps the sum of squares numerically stable
            self.shift = data.mean(axis=0)
        centred = data - self.shift
        self.count += len(data)
        self.total += centred.sum(axis=0)
        self.total_sq += (centred * centred).sum(axis=0)

    def stats(self) -> FeatureStats:
        mean_c = self.total / self.count
        std = np.sqrt(np.maximum(self.total_sq / self.count - mean_c**2, 0.0))
        for sl in FEATURE_SLICES.values():
            std[sl] = std[sl].mean()
        return FeatureStats(mean=(mean_c + self.shift).astype(np.float32), std=std.astype(np.float32))


def split_ids(num: int, fractions: tuple[float, float, float], seed: int) -> dict[str, list[int]]:
    """Seeded train/val/test assignment of motion indices (mirrors follow their originals)."""
    order = np.random.default_rng(np.random.SeedSequence([seed, SPLIT_STREAM])).permutation(num)
    n_train = int(round(fractions[0] * num))
    n_val = int(round(fractions[1] * num))
    parts = {"train": order[:n_train], "val": order[n_train:n_train + n_val], "test": order[n_train + n_val:]}
    return {k: sorted(int(i) for i in v) for k, v in parts.items()}


def _ground_truth_rows(motion: PriorMotion, motion_id: str, mirrored: bool) -> list[dict]:
    rows = []
    for i, seg in enumerate(motion.segments):
        params = mirror_params(seg.params) if mirrored else seg.params
        rows.append({"motion_id": motion_id, "segment": i, "primitive": seg.primitive,
                     "side": str(params.get("side", "none")) if PRIMITIVES[seg.primitive].sided else "none",
                     "start_frame": seg.start, "end_frame": seg.end, "mirrored": mirrored,
                     "params": json.dumps(params, sort_keys=True)})
    return rows


def build_prior(cfg: SyntheticPriorConfig, seed: int, out: Path, progress: Progress | None = None,
                chunk: int = 120) -> PriorSummary:
    """Write the corpus to `out` (HumanML3D layout + primitives.parquet) and return its statistics."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    progress = progress or (lambda it: it)
    starts = range(0, cfg.num_motions, chunk)
    running = _RunningStats()
    rows: list[dict] = []
    n_captions = n_sub = frames = 0
    durations: list[float] = []
    counts: Counter = Counter()
    for start in progress(starts):
        motions = [make_motion(cfg, seed, i) for i in range(start, min(start + chunk, cfg.num_motions))]
        joints = [m.joints for m in motions]
        if cfg.mirror:
            joints += [mirror_joints(m.joints) for m in motions]
        features = joints_to_features_batch(joints)
        recovered = [features_to_joints(f) for f in features]
        for k, m in enumerate(motions):
            write_motion(out, m.motion_id, features[k], recovered[k], m.captions)
            rows += _ground_truth_rows(m, m.motion_id, False)
            if cfg.mirror:
                k_m = k + len(motions)
                mirrored = [mirror_caption(c) for c in m.captions]
                write_motion(out, "M" + m.motion_id, features[k_m], recovered[k_m], mirrored)
                rows += _ground_truth_rows(m, "M" + m.motion_id, True)
            n_captions += len(m.captions) * (2 if cfg.mirror else 1)
            n_sub += sum(not c.is_whole for c in m.captions) * (2 if cfg.mirror else 1)
            frames += len(m.joints)
            durations.append((len(m.joints) - 1) / cfg.fps)
            counts.update(s.primitive for s in m.segments)
        running.update(features)
    write_stats(out, running.stats())
    parts = split_ids(cfg.num_motions, cfg.split, seed)
    ids = {k: [x for i in v for x in ([f"{i:06d}", f"M{i:06d}"] if cfg.mirror else [f"{i:06d}"])]
           for k, v in parts.items()}
    write_split_files(out, ids)
    pq.write_table(pa.Table.from_pylist(rows), out / "primitives.parquet")
    log.info("prior corpus: %d motions (+%d mirrors), %d captions, in %s", cfg.num_motions,
             cfg.num_motions if cfg.mirror else 0, n_captions, out)
    return PriorSummary(
        motions=cfg.num_motions, mirrors=cfg.num_motions if cfg.mirror else 0, captions=n_captions,
        subspan_captions=n_sub, frames=frames, mean_seconds=float(np.mean(durations)),
        min_seconds=float(np.min(durations)), max_seconds=float(np.max(durations)),
        splits={k: len(v) for k, v in ids.items()}, primitive_counts=dict(counts),
    )
