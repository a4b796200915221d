"""The released embedded teacher: a pretrained MDM shipped with the project, and the guard that keeps it honest.

The paper's teacher is a checkpoint nobody retrains per experiment; the embedded world gets the same. A release is a
folder (`releases/teacher/`) holding `teacher.pt` (a `TeacherCheckpoint`), `release.json` (the manifest: recipe, steps,
hardware, wall time, sha256, the hash of the prior it was trained on, its report card) and `README.md` (the card in
words). `load_release` refuses a teacher whose bytes changed, that expects another text encoder, or that was trained
on another prior (a user who changed `synthetic.*` needs `teacher.source: pretrain`), each with how to fix it.

`train_in_snapshots` runs this project's own `pretrain_teacher` with its resume checkpoint, stopping every N steps to
keep the EMA and raw weights as snapshots, so the card can show where it plateaus and a long CPU run survives
interruptions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kinemic.checkpoints import load_torch_file
from kinemic.corpus import PreparedPrior
from kinemic.io import write_json
from kinemic.models.mdm import MDM
from kinemic.params import config_from_params
from kinemic.resume import resume_file
from kinemic.teacher import (
    LoggedStep,
    TeacherCheckpoint,
    TeacherConfig,
    TextEmbedder,
    pretrain_teacher,
    prior_hash,
    run_fingerprint,
    without_later_fields_off,
)

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
    splits = tuple(manifest.recipe.get("splits", ("train",)))
    current = prior_hash(prior.subset(splits))
    if current != manifest.prior_hash:
        raise ReleaseError(
            f"the released teacher was trained on another prior (hash {manifest.prior_hash[:12]}..., this one is "
            f"{current[:12]}...). It only fits the embedded default world (synthetic.* and prepare_prior.* as "
            "committed). Set teacher.source: pretrain to train a teacher on this prior")
    teacher = TeacherCheckpoint.load(path, device)
    if teacher.step != manifest.step:
        raise ReleaseError(f"{path} is at step {teacher.step}, {folder / MANIFEST} says {manifest.step}")
    teacher.source = "release"
    return teacher, manifest


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
    manifest = ReleaseManifest(
        step=teacher.step,
        sha256=file_sha256(folder / CHECKPOINT),
        prior_hash=prior_hash(prior.subset(recipe.splits)),
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


def run_resume_path(resume_dir: Path, config: TeacherConfig, prior: PreparedPrior, embed: TextEmbedder) -> Path:
    """The run's resume checkpoint, found as `pretrain_teacher` finds it."""
    prior = prior.subset(config.splits)
    table = torch.from_numpy(np.asarray(embed(prior.captions["caption"].tolist()), dtype=np.float32))
    return resume_file(resume_dir, lambda: run_fingerprint(config, prior, table))
