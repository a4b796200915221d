"""The released embedded teacher: a pretrained MDM shipped with the project, and the guard that keeps it honest.

The paper's teacher is a checkpoint nobody retrains per experiment; the embedded world gets the same. A release is a
folder (`releases/teacher/`) holding `teacher.pt` (a `TeacherCheckpoint`), `release.json` (the manifest: recipe, steps,
hardware, wall time, sha256, the hash of the prior it was trained on, its report card) and `README.md` (the card in
words). `load_release` refuses a teacher whose bytes changed, that expects another text encoder, or that was trained
on another prior (a user who changed `synthetic.*` needs `teacher.source: pretrain`), each with how to fix it.

"The same prior" allows for the CPU: a machine with other vector math (numpy's AVX-512 arctan2 against the AVX2 one)
writes the same world with other last digits, so other bytes. A prior whose exact hash differs is still the release's
when its tables (ids, lengths, captions) hash the same and its normalisation statistics equal the ones stored in
teacher.pt up to float rounding (`prior_fingerprint`, `STATS_TOLERANCE`); any change of the world moves those. The
statistics are blind to the order of frames, so the manifest also keeps a summary that is not (`frame_order_summary`):
frames reversed or shuffled inside the motions, with tables and statistics unchanged, are another world too.

`train_in_snapshots` runs this project's own `pretrain_teacher` with its resume checkpoint, stopping every N steps to
keep the EMA and raw weights as snapshots, so the card can show where it plateaus and a long CPU run survives
interruptions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kinemic.checkpoints import atomic_torch_save, load_torch_file
from kinemic.corpus import PreparedPrior
from kinemic.io import write_json
from kinemic.models.mdm import MDM
from kinemic.motion import FeatureStats
from kinemic.params import config_from_params
from kinemic.resume import resume_file
from kinemic.teacher import (
    LoggedStep,
    TeacherCheckpoint,
    TeacherConfig,
    TextEmbedder,
    WeightAverage,
    build_mdm_config,
    pretrain_teacher,
    prior_hash,
    run_fingerprint,
    without_later_fields_off,
)

log = logging.getLogger(__name__)

RELEASE_FORMAT = "kinemic.teacher-release/1"
MANIFEST = "release.json"
CHECKPOINT = "teacher.pt"
LOSSES = "losses.tsv"
# TeacherConfig fields that say how a teacher is used or published, not how it was trained
NOT_RECIPE = ("source", "release", "official_checkpoint", "official_args", "preview_captions", "preview_steps",
              "guidance", "card")


class ReleaseError(ValueError):
    """A released teacher that is missing, altered, or does not belong to this prior or text encoder."""


@dataclass(frozen=True)
class ReleaseManifest:
    """What `release.json` records: enough to check the teacher belongs here and to retrain it."""

    step: int
    sha256: str
    prior_hash: str
    text_encoder: dict[str, Any]
    recipe: dict[str, Any]  # the TeacherConfig fields it was trained with
    hardware: dict[str, Any] = field(default_factory=dict)
    wall_seconds: float = 0.0
    card: dict[str, float] = field(default_factory=dict)
    prior_fingerprint: dict[str, Any] = field(default_factory=dict)  # `prior_fingerprint`; {}: the exact hash only
    prior_frame_order: list[float] = field(default_factory=list)  # `frame_order_summary`; []: not recorded
    format: str = RELEASE_FORMAT

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def trained_with(self) -> TeacherConfig:
        """The recipe as a config: its learning-rate schedule gives the released curve's rates."""
        return config_from_params(TeacherConfig, self.recipe, f"{MANIFEST} recipe")

    @classmethod
    def read(cls, folder: Path) -> ReleaseManifest:
        path = Path(folder) / MANIFEST
        if not path.is_file():
            raise ReleaseError(
                f"no released teacher at {folder}: {MANIFEST} is missing. A fresh clone has it in releases/teacher; "
                "point teacher.release there, or set teacher.source: pretrain to train a teacher in the pipeline")
        data = json.loads(path.read_text())
        if data.get("format") != RELEASE_FORMAT:
            raise ReleaseError(f"{path} has format {data.get('format')!r}, expected {RELEASE_FORMAT!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_release(folder: Path, prior: PreparedPrior, text_encoder: dict[str, Any],
                 device: str | torch.device = "cpu") -> tuple[TeacherCheckpoint, ReleaseManifest]:
    """The released teacher, after checking its bytes, its text encoder and the prior it was trained on."""
    folder = Path(folder)
    manifest = ReleaseManifest.read(folder)
    path = folder / CHECKPOINT
    if not path.is_file():
        raise ReleaseError(f"{path} is missing although {folder / MANIFEST} describes it: restore it from git "
                           "(`git checkout -- releases/teacher`)")
    actual = file_sha256(path)
    if actual != manifest.sha256:
        raise ReleaseError(f"{path} has sha256 {actual[:12]}..., the release says {manifest.sha256[:12]}...: the file "
                           "was changed or truncated. Restore it with `git checkout -- releases/teacher`")
    if dict(text_encoder) != dict(manifest.text_encoder):
        raise ReleaseError(f"the released teacher was trained with text encoder {manifest.text_encoder}, but "
                           f"teacher.text asks for {dict(text_encoder)}: set teacher.text back, or train a teacher "
                           "with teacher.source: pretrain")
    teacher = TeacherCheckpoint.load(path, device)
    if teacher.step != manifest.step:
        raise ReleaseError(f"{path} is at step {teacher.step}, {folder / MANIFEST} says {manifest.step}")
    check_trained_on(prior.subset(tuple(manifest.recipe.get("splits", ("train",)))), teacher.stats, manifest)
    teacher.source = "release"
    return teacher, manifest


# How far a prior's normalisation statistics may lie from the release's (|a - b| <= atol + rtol * |b|, float32
# values): float rounding of the same world moves them by a few units in the last place, any change of the world by
# orders of magnitude more.
STATS_TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}


def prior_fingerprint(prior: PreparedPrior) -> dict[str, Any]:
    """What of a prepared prior no CPU's rounding changes: the hash of its tables and the shape of its features."""
    digest = hashlib.sha256()
    digest.update(prior.motions.to_csv(index=False).encode())
    digest.update(prior.captions.to_csv(index=False).encode())
    return {"tables": digest.hexdigest(), "frames": int(prior.features.shape[0]),
            "feature_dim": int(prior.features.shape[1])}


def frame_order_summary(prior: PreparedPrior) -> np.ndarray:
    """Per feature, the mean |x[t+1] - x[t]| and the mean trend (x weighted by time from -1 to +1) within the prior's
    motions, shape (2 * D,). Shuffled frames move the first half, reversed ones flip the second's sign; rounding moves
    both by float noise only. Motions of one frame have neither and are left out."""
    features = prior.features
    dim = features.shape[1]
    steps, trend, step_count, motion_count = np.zeros(dim), np.zeros(dim), 0, 0
    for offset, length in zip(prior.motions["offset"], prior.motions["length"], strict=True):
        if length < 2:
            continue
        motion = np.asarray(features[offset : offset + length], np.float64)
        steps += np.abs(np.diff(motion, axis=0)).sum(axis=0)
        trend += np.linspace(-1.0, 1.0, length) @ motion / length
        step_count, motion_count = step_count + length - 1, motion_count + 1
    return np.concatenate([steps / max(step_count, 1), trend / max(motion_count, 1)])


def frame_order_agrees(prior: PreparedPrior, manifest: ReleaseManifest) -> bool:
    """Whether `prior`'s frame-order summary equals the release's up to float rounding (True when none was recorded:
    releases written before it keep the tables-and-statistics check)."""
    if not manifest.prior_frame_order:
        return True
    summary, reference = frame_order_summary(prior), np.asarray(manifest.prior_frame_order, np.float64)
    return summary.shape == reference.shape and np.allclose(summary, reference, **STATS_TOLERANCE)


def _stat_pairs(stats: FeatureStats, reference: FeatureStats) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.asarray(a, np.float64), np.asarray(b, np.float64))
            for a, b in ((stats.mean, reference.mean), (stats.std, reference.std))]


def stats_agree(stats: FeatureStats, reference: FeatureStats) -> bool:
    """Whether two feature statistics are the same up to float rounding (`STATS_TOLERANCE`)."""
    return all(a.shape == b.shape and np.allclose(a, b, **STATS_TOLERANCE) for a, b in _stat_pairs(stats, reference))


def stats_distance(stats: FeatureStats, reference: FeatureStats) -> float:
    """The largest |a - b| over the mean and std of two feature statistics (inf when their shapes differ)."""
    pairs = _stat_pairs(stats, reference)
    if any(a.shape != b.shape for a, b in pairs):
        return float("inf")
    return max(float(np.abs(a - b).max()) for a, b in pairs)


def check_trained_on(prior: PreparedPrior, stats: FeatureStats, manifest: ReleaseManifest) -> None:
    """Raise `ReleaseError` unless `prior` (the splits the release trained on) is the release's prior: the same
    bytes, or the same tables and statistics equal to the teacher's `stats` up to float rounding (another CPU's last
    digits)."""
    current = prior_hash(prior)
    if current == manifest.prior_hash:
        return
    same_tables = bool(manifest.prior_fingerprint) and prior_fingerprint(prior) == manifest.prior_fingerprint
    same_stats = same_tables and stats_agree(prior.stats, stats)
    if same_stats and frame_order_agrees(prior, manifest):
        log.info("the prior's bytes differ from the ones the released teacher was trained on (hash %s..., this one "
                 "%s...) but its tables and frame order are the same and its statistics lie within %.1e of the "
                 "teacher's: the same world rounded by another CPU's vector math", manifest.prior_hash[:12],
                 current[:12], stats_distance(prior.stats, stats))
        return
    if not manifest.prior_fingerprint:
        why = "the release records no fingerprint beyond the exact hash"
    elif not same_tables:
        why = "its tables (motions, lengths, captions) differ"
    elif not same_stats:
        why = f"its feature statistics lie {stats_distance(prior.stats, stats):.2e} from the teacher's"
    else:
        why = "its tables and statistics are the same but its frames run in another order within the motions"
    raise ReleaseError(
        f"the released teacher was trained on another prior (hash {manifest.prior_hash[:12]}..., this one is "
        f"{current[:12]}...; {why}). It only fits the embedded default world (synthetic.* and prepare_prior.* as "
        "committed). Set teacher.source: pretrain to train a teacher on this prior")


def read_losses(folder: Path) -> list[tuple[int, float]]:
    """The release's pretraining curve (step, masked x0 MSE), so the teacher stage still plots it; [] if absent."""
    path = Path(folder) / LOSSES
    if not path.is_file():
        return []
    rows = [line.split("\t") for line in path.read_text().splitlines()[1:] if line.strip()]
    return [(int(step), float(loss)) for step, loss in rows]


def release_recipe(config: TeacherConfig) -> dict[str, Any]:
    """What a release records of the config it was trained with: the fields that shape training, as params give them
    (`TeacherConfig.params`: model and text as written in the recipe), in JSON types."""
    fields = without_later_fields_off(config.params())
    return json.loads(json.dumps({k: v for k, v in fields.items() if k not in NOT_RECIPE}))


def write_release(folder: Path, teacher: TeacherCheckpoint, prior: PreparedPrior, recipe: TeacherConfig,
                  hardware: dict[str, Any], wall_seconds: float, card: dict[str, float],
                  losses: list[tuple[int, float]]) -> ReleaseManifest:
    """Write teacher.pt, its loss curve and release.json into `folder` (the card's words are the caller's)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LOSSES).write_text("step\tloss\n" + "".join(f"{s}\t{v:.6f}\n" for s, v in losses))
    teacher.source = "pretrain"
    teacher.save(folder / CHECKPOINT)
    trained_on = prior.subset(recipe.splits)
    manifest = ReleaseManifest(
        step=teacher.step,
        sha256=file_sha256(folder / CHECKPOINT),
        prior_hash=prior_hash(trained_on),
        prior_fingerprint=prior_fingerprint(trained_on),
        prior_frame_order=frame_order_summary(trained_on).tolist(),
        text_encoder=dict(teacher.text_encoder),
        recipe=release_recipe(recipe),
        hardware=hardware,
        wall_seconds=round(wall_seconds, 1),
        card=card,
    )
    write_json(folder / MANIFEST, manifest.to_dict())
    return manifest


# --------------------------------------------------------------------------------------------------------------------
# training in snapshots
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    step: int
    ema: Path | None  # the averaged weights (None when the recipe has no EMA)
    raw: Path  # the optimiser's weights at that step
    seconds: float  # wall time of this process's training up to here


def train_in_snapshots(prior: PreparedPrior, embed: TextEmbedder, config: TeacherConfig, text_encoder: dict[str, Any],
                       resume_dir: Path, out: Path, every: int, until: int,
                       progress: Callable[[LoggedStep, int], None] | None = None) -> list[Snapshot]:
    """Pretrain to step `until` (<= config.steps), saving EMA and raw weights every `every` steps under `out`.

    Each segment is one `pretrain_teacher` call that resumes from the run's resume checkpoint and stops after the next
    multiple of `every`, so the weights at every snapshot equal an uninterrupted run's at that step, and a killed run
    restarts from its last resume checkpoint. `every` must be a multiple of `config.checkpoint_every`.
    """
    if every % config.checkpoint_every:
        raise ValueError(f"snapshot interval {every} must be a multiple of teacher.checkpoint_every "
                         f"({config.checkpoint_every}): a segment must end on a resume checkpoint")
    if until > config.steps:
        raise ValueError(f"cannot train to step {until}: the recipe's steps is {config.steps}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    snapshots: list[Snapshot] = []
    start = time.perf_counter()
    resume_path = run_resume_path(resume_dir, config, prior, embed)
    resumed = int(load_torch_file(resume_path)["step"]) if resume_path.is_file() else 0
    stop = every
    while stop <= until:
        ema_path, raw_path = out / f"ema_{stop:06d}.pt", out / f"raw_{stop:06d}.pt"
        if raw_path.is_file():
            snapshots.append(Snapshot(stop, ema_path if ema_path.is_file() else None, raw_path, 0.0))
            stop += every
            continue
        if stop <= resumed:  # the run starts past it (a variant started from another run's state): nothing to keep
            stop += every
            continue
        result = pretrain_teacher(prior, embed, config, text_encoder, resume_dir, progress, stop_after=stop)
        teacher = result.teacher
        if config.ema_decay > 0:
            teacher.save(ema_path)
        state = load_torch_file(resume_path)
        raw = MDM.from_config(teacher.model.config)
        raw.load_state_dict(state["model"])
        dataclasses.replace(teacher, model=raw.eval()).save(raw_path)
        snapshots.append(Snapshot(stop, ema_path if config.ema_decay > 0 else None, raw_path,
                                  time.perf_counter() - start))
        stop += every
    return snapshots


def check_fork(step: int, config: TeacherConfig, source: str) -> None:
    """A recipe variant may start from a state at or before the step where it starts to differ from the run it varies
    (`TeacherConfig.forked_at`); from a later one it would hold steps its recipe does not describe."""
    if step > config.forked_at:
        raise ValueError(f"{source} is at step {step}, past the step where the recipe starts to differ "
                         f"({config.forked_at}: the latest teacher.*_from_step of a term that is on): the variant "
                         "would have trained steps its recipe does not describe. Start from a state at or before that "
                         "step, or set that *_from_step to its step.")


def resume_state_from_weights(teacher: TeacherCheckpoint, config: TeacherConfig) -> dict[str, Any]:
    """The loop state a recipe variant starts from when all it has is a teacher's weights (a release, a snapshot):
    raw weights and EMA both equal to them, a fresh AdamW, no loss history, random streams seeded from the recipe's
    seed and the teacher's step.

    Unlike another run's resume checkpoint, this state has lost the optimizer's moments and the raw weights the EMA
    averaged, so the variant is a fine-tune, not a continuation: `teacher.source: pretrain` cannot replay it, and
    `release_teacher.py publish` refuses to ship its snapshots. It is for recipe studies from the released weights.
    """
    wanted = build_mdm_config(config, teacher.model.config.text_dim)
    if teacher.model.config != wanted:
        differ = {k: (getattr(teacher.model.config, k), getattr(wanted, k)) for k in dataclasses.asdict(wanted)
                  if getattr(teacher.model.config, k) != getattr(wanted, k)}
        raise ValueError(f"the teacher's model is not the recipe's (teacher, recipe): {differ}; set teacher.model in "
                         "the recipe to the teacher's")
    if dict(teacher.text_encoder) != config.text.to_dict():
        raise ValueError(f"the teacher was trained with text encoder {teacher.text_encoder}, the recipe asks for "
                         f"{config.text.to_dict()}; set teacher.text in the recipe to the teacher's")
    check_fork(teacher.step, config, "the teacher")
    model = teacher.model
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    state: dict[str, Any] = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "losses": [],
                             "step": int(teacher.step), "running": 0.0, "count": 0}
    if config.ema_decay > 0:
        ema = WeightAverage(model, config.ema_decay)
        ema.update(model)
        state["ema"] = ema.state_dict()
    streams = np.random.default_rng([config.seed, teacher.step])
    torch_seed, global_seed = (int(v) for v in streams.integers(2**62, size=2))
    return {**state, "numpy_rng": streams.bit_generator.state,
            "torch_rng": torch.Generator().manual_seed(torch_seed).get_state(),
            "global_rng": torch.Generator().manual_seed(global_seed).get_state()}


def seed_resume_from_weights(path: Path, teacher: TeacherCheckpoint, config: TeacherConfig) -> None:
    """Write `resume_state_from_weights` as a run's resume checkpoint (`run_resume_path`), atomically."""
    state = resume_state_from_weights(teacher, config)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(state, Path(path))


def run_resume_path(resume_dir: Path, config: TeacherConfig, prior: PreparedPrior, embed: TextEmbedder) -> Path:
    """The run's resume checkpoint, found as `pretrain_teacher` finds it."""
    prior = prior.subset(config.splits)
    table = torch.from_numpy(np.asarray(embed(prior.captions["caption"].tolist()), dtype=np.float32))
    return resume_file(resume_dir, lambda: run_fingerprint(config, prior, table))
