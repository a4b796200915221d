"""The frozen teacher: an MDM either imported from an official checkpoint or pretrained on the prepared prior.

Both routes write the same self-describing checkpoint (`TeacherCheckpoint`): MDM config + weights, the normalisation
statistics the model was trained with, the diffusion schedule and the text encoder it expects. Downstream stages
rebuild everything from it and never from their own params, so a teacher cannot be paired with the wrong statistics.

Pretraining follows MDM's recipe (reference/mdm_kinemic.md sections 4-6): a random caption per motion per step, a random
crop to a multiple of 4 frames (sometimes one unit shorter), z-normalisation, zero padding to the batch's longest crop,
uniform t, x0 prediction with the masked MSE, text dropout for guidance, AdamW, at a constant learning rate or with a
warmup and a cosine decay (`lr_schedule`). With `ema_decay` > 0 it also keeps an exponential moving average of the
weights and saves that as the teacher, as the official MDM checkpoints are (0, the default, keeps the raw weights). It
checkpoints every N steps with optimizer, EMA and RNG state, and a re-run after an interruption resumes from the last
checkpoint and continues the same random stream, so an interrupted and an uninterrupted run end with identical weights.

Under torchrun (`nproc` > 1, kinemic.distributed) it trains data-parallel: every rank draws the same global batch as
one process would and trains on its slice, DistributedDataParallel averages the gradients, and rank 0 alone writes
the resume checkpoints. The run is the same as in one process up to float summation order, except for the dropout
masks, which each rank draws for its own slice.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from kinemic.batching import CaptionedMotionSampler, collate
from kinemic.checkpoints import (
    atomic_torch_save,
    mdm_from_dict,
    mdm_to_dict,
    read_checkpoint,
    stats_from_dict,
    stats_to_dict,
)
from kinemic.conditioning import TextSpec
from kinemic.corpus import PreparedPrior
from kinemic.devices import autocast, resolve_device
from kinemic.diffusion import GaussianDiffusion, masked_acceleration_mse, masked_mse, masked_velocity_mse
from kinemic.distributed import (
    World,
    check_agree,
    current_world,
    mean_over_ranks,
    process_group,
    rank_device,
    rank_generator,
    shard,
    step_seed,
)
from kinemic.models.mdm import MDM, MDMConfig
from kinemic.motion import FEATURE_SLICES, FeatureStats
from kinemic.params import check_range
from kinemic.resume import (
    checkpoint_due,
    discard_finished,
    load_resume,
    resume_file,
    save_resume,
    update_with_array,
    update_with_tensor,
)
from kinemic.samplers import SAMPLERS
from kinemic.schedules import LR_SCHEDULES, scheduled_lr

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "kinemic.teacher/1"
TextEmbedder = Callable[[list[str]], np.ndarray]
TEACHER_SOURCES = ("pretrain", "release", "official")


@dataclass(frozen=True)
class TeacherConfig:
    """Params section `teacher`."""

    source: str = "pretrain"  # 'pretrain' on the prepared prior, 'release' (the shipped one), 'official' (MDM's)
    release: str = "releases/teacher"  # the released teacher's folder (kinemic.teacher_release)
    official_checkpoint: str = ""
    official_args: str = ""  # optional args.json; by default the one beside the checkpoint is used
    # Params give these two as mappings; the config holds them typed (`params` gives the mappings as given). The
    # model's text_dim is the text encoder's (`build_mdm_config`): the one here is MDMConfig's default unless given.
    model: MDMConfig = field(default_factory=dict)  # MDMConfig fields; {}: all of its defaults
    text: TextSpec = field(default_factory=TextSpec)  # {encoder, options, normalize}
    diffusion_steps: int = 1000
    noise_schedule: str = "cosine"
    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-4
    lr_schedule: str = "constant"  # or 'cosine' (annealed to 0 at the last step)
    warmup_steps: int = 0
    weight_decay: float = 0.0
    ema_decay: float = 0.0  # > 0: the saved teacher is an EMA of the weights (MDM: 0.9999); 0: the raw weights
    velocity_weight: float = 0.0  # > 0: adds the x0 prediction's frame-difference MSE (MDM's lambda_vel) to the loss
    velocity_from_step: int = 0  # the term is on from this step: a velocity fine-tune of a plain run, in one recipe
    acceleration_weight: float = 0.0  # > 0: adds the x0 prediction's second-difference MSE (damps over-acceleration)
    acceleration_from_step: int = 0  # ... from this step on (a fine-tune of another run, like velocity_from_step)
    position_weight: float = 0.0  # > 0: adds the MSE of the columns joints are recovered from (`JOINT_COLUMNS`)
    position_from_step: int = 0  # ... from this step on (a fine-tune of another run, like velocity_from_step)
    high_noise_share: float = 0.0  # > 0: that share of every batch draws its t from the schedule's top fifth
    high_noise_from_step: int = 0  # ... from this step on (a fine-tune of another run, like velocity_from_step)
    max_frames: int = 196
    unit_length: int = 4
    splits: tuple[str, ...] = ("train",)
    checkpoint_every: int = 250
    log_every: int = 10
    seed: int = 10
    device: str = "auto"
    nproc: int = 1  # > 1: data-parallel pretraining in that many processes under torchrun (kinemic.distributed)
    precision: str = "fp32"  # or 'bf16' (autocast)
    preview_captions: tuple[str, ...] = ()
    preview_steps: int = 50
    preview_sampler: str = "ancestral"  # ancestral | ddim | dpmpp_2m (kinemic.samplers), for the previews
    guidance: float = 2.5
    card: dict | None = field(default_factory=dict)  # kinemic.teacher_card.CardConfig fields; None: no report card

    def __post_init__(self) -> None:
        if self.source not in TEACHER_SOURCES:
            raise ValueError(f"teacher.source must be one of {TEACHER_SOURCES}, got {self.source!r}")
        if self.source == "official" and not self.official_checkpoint:
            raise ValueError("teacher.source is 'official' but teacher.official_checkpoint is empty: give the .pt path")
        for name in ("steps", "batch_size", "max_frames", "unit_length", "checkpoint_every", "log_every", "nproc"):
            if getattr(self, name) < 1:
                raise ValueError(f"teacher.{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size % self.nproc:
            raise ValueError(f"teacher.batch_size ({self.batch_size}) must be divisible by teacher.nproc "
                             f"({self.nproc}): each process trains on an equal slice of the global batch")
        if self.max_frames < self.unit_length:
            raise ValueError(f"teacher.max_frames ({self.max_frames}) must be >= unit_length ({self.unit_length})")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"teacher.precision must be 'fp32' or 'bf16', got {self.precision!r}")
        if self.warmup_steps < 0 or self.warmup_steps >= self.steps:
            raise ValueError(f"teacher.warmup_steps must lie in [0, steps), got {self.warmup_steps}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"teacher.lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if self.preview_sampler not in SAMPLERS:
            raise ValueError(f"teacher.preview_sampler must be one of {SAMPLERS}, got {self.preview_sampler!r}")
        if not 0.0 <= self.high_noise_share <= 1.0:
            raise ValueError(f"teacher.high_noise_share must lie in [0, 1] (0 = off), got {self.high_noise_share}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"teacher.ema_decay must lie in [0, 1) (0 = off), got {self.ema_decay}")
        check_range("teacher", self, positive=("lr", "diffusion_steps"),
                    non_negative=("weight_decay", "guidance", "preview_steps", "velocity_weight", "velocity_from_step",
                                  "acceleration_weight", "acceleration_from_step", "position_weight",
                                  "position_from_step", "high_noise_from_step"))
        # Keys and values checked here, before any data loads. The mappings as given stay beside the typed views:
        # they are what the resume fingerprint and a release's recipe hold (`params`).
        given = {"model": _as_mapping("model", self.model, MDMConfig),
                 "text": _as_mapping("text", self.text, TextSpec)}
        object.__setattr__(self, "text", TextSpec.from_dict(given["text"]))
        object.__setattr__(self, "model", MDMConfig.from_dict(given["model"]))
        object.__setattr__(self, "_given", given)

    def params(self) -> dict[str, Any]:
        """The fields as params give them: `model` and `text` as the mappings given, not their typed views.

        A resume checkpoint is found by the hash of these (`run_fingerprint`) and a release records them as its
        recipe, so a key left out (a default) stays left out: expanding `model` to every MDMConfig field would change
        the fingerprint of every existing run. A typed value given directly counts as all of its fields, and so does
        the result of `dataclasses.replace` (it passes the typed views back): where the fingerprint matters, build a
        variant from params.
        """
        fields = dataclasses.asdict(self)
        fields.update(copy.deepcopy(self._given))
        return fields

    @property
    def forked_at(self) -> int:
        """The last step at which this recipe is still the run it varies: the latest `*_from_step` of a term that is on.

        A variant can start from that run's loop state at this step or before (`release_teacher.py train --init-from`).
        """
        return max(self.velocity_from_step if self.velocity_weight > 0 else 0,
                   self.acceleration_from_step if self.acceleration_weight > 0 else 0,
                   self.position_from_step if self.position_weight > 0 else 0,
                   self.high_noise_from_step if self.high_noise_share > 0 else 0)

    def lr_at(self, step: int) -> float:
        """The learning rate the loop applies at the update that follows `step` completed steps."""
        return scheduled_lr(self.lr, step, self.steps, self.lr_schedule, self.warmup_steps)


def _as_mapping(name: str, value: Any, typed: type) -> dict[str, Any]:
    """A nested section as params give it: a copy of the mapping, or every field of a typed value given directly."""
    if isinstance(value, typed):
        return typed.to_dict(value)
    if not isinstance(value, Mapping):
        raise ValueError(f"teacher.{name} must be a mapping of {typed.__name__} fields, got {value!r}")
    return copy.deepcopy(dict(value))


@dataclass
class TeacherCheckpoint:
    """Everything needed to use a teacher: rebuilt model, statistics, schedule and text encoder identity."""

    model: MDM
    stats: FeatureStats
    diffusion_steps: int
    noise_schedule: str
    text_encoder: dict[str, Any]
    max_frames: int
    source: str
    step: int = 0

    def diffusion(self, respacing: int | None = None) -> GaussianDiffusion:
        return GaussianDiffusion(self.diffusion_steps, self.noise_schedule, respacing)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            **mdm_to_dict(self.model),
            "stats": stats_to_dict(self.stats),
            "diffusion": {"steps": self.diffusion_steps, "schedule": self.noise_schedule},
            "text_encoder": dict(self.text_encoder),
            "max_frames": self.max_frames,
            "source": self.source,
            "step": self.step,
        }

    def save(self, path: Path) -> None:
        atomic_torch_save(self.to_dict(), path)

    @classmethod
    def load(cls, path: Path, device: str | torch.device = "cpu") -> TeacherCheckpoint:
        data = read_checkpoint(path, CHECKPOINT_FORMAT, stage="teacher")
        return cls(
            model=mdm_from_dict(data, device),
            stats=stats_from_dict(data["stats"]),
            diffusion_steps=int(data["diffusion"]["steps"]),
            noise_schedule=str(data["diffusion"]["schedule"]),
            text_encoder=dict(data["text_encoder"]),
            max_frames=int(data["max_frames"]),
            source=str(data["source"]),
            step=int(data["step"]),
        )


# --------------------------------------------------------------------------------------------------------------------
# EMA weights
# --------------------------------------------------------------------------------------------------------------------


class WeightAverage:
    """Exponential moving average of a model's parameters, updated after every optimizer step.

    A diffusion model's raw weights wander with the last batches' noise; their average over the last ~1 / (1 - decay)
    steps samples better, which is why MDM releases EMA weights (decay 0.9999 over 600k steps). The first update
    copies the weights, as `torch.optim.swa_utils.AveragedModel` does, so the average never contains the random
    initialisation; every later one is ema <- decay * ema + (1 - decay) * w. Buffers (MDM's positional table) are
    constants and are not averaged.
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must lie in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.shadow = {name: p.detach().clone() for name, p in model.named_parameters()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for name, p in model.named_parameters():
            if self.updates == 0:
                self.shadow[name].copy_(p)
            else:
                self.shadow[name].mul_(self.decay).add_(p.detach(), alpha=1.0 - self.decay)
        self.updates += 1

    @torch.no_grad()
    def copy_to(self, model: torch.nn.Module) -> None:
        """Overwrite the model's parameters with the average (in place)."""
        for name, p in model.named_parameters():
            p.copy_(self.shadow[name])

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates, "shadow": dict(self.shadow)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if float(state["decay"]) != self.decay or set(state["shadow"]) != set(self.shadow):
            raise ValueError("EMA state of another run (decay or parameter names differ)")
        self.updates = int(state["updates"])
        for name, value in state["shadow"].items():
            self.shadow[name].copy_(value)


# --------------------------------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------------------------------


class LoggedStep(NamedTuple):
    """A point of the pretraining curve: the mean loss of the logging window that `step` closes, and the learning rate
    of that step's update."""

    step: int
    loss: float
    lr: float


def logged_curve(losses: Sequence[tuple[int, float]], config: TeacherConfig) -> list[LoggedStep]:
    """A run's (step, loss) log with the rate the loop applied at each logged step: the update that completed step s
    ran at `config.lr_at(s - 1)`. For what keeps only (step, loss): a resumed run's earlier steps, a release's curve."""
    return [LoggedStep(step, loss, config.lr_at(step - 1)) for step, loss in losses]


@dataclass
class PretrainResult:
    teacher: TeacherCheckpoint
    losses: list[tuple[int, float]]
    resumed_from: int
    seconds: float


def run_fingerprint(config: TeacherConfig, prior: PreparedPrior, text_table: torch.Tensor) -> str:
    """Identity of a pretraining run: a resume checkpoint is only reused for the same config, data and embeddings.

    Every byte of every input is hashed (not a sample of rows): a resume from a run on other data would silently mix
    two runs' weights.
    """
    digest = hashlib.sha256()
    fields = config.params()  # model and text as given, as before they were typed: old checkpoints still match
    fields = without_later_fields_off(fields)
    del fields["card"]  # the card scores the finished teacher; it does not shape the run
    del fields["release"]  # where a finished teacher is published, not how it is trained
    del fields["preview_sampler"]  # how the finished teacher is previewed
    del fields["nproc"]  # 1 or N processes train on the same global batches: the same run up to float order
    digest.update(json.dumps(fields, sort_keys=True, default=str).encode())
    update_with_tensor(digest, text_table)  # the caption embeddings as used (this covers the text encoder)
    digest.update(prior_hash(prior).encode())
    return digest.hexdigest()[:16]


# The feature columns joints are recovered from (`kinemic.motion.features_to_joints`, the official recover_from_ric):
# the root (0:4) and the root-relative joint positions (4:67). Every skeleton the project measures (the card, the
# students' samples, the classifiers' input) is made of these; the 6D rotations, local velocities and foot contacts
# (67:263) are in the plain loss but in no skeleton. `teacher.position_weight` weighs them once more.
JOINT_COLUMNS = slice(FEATURE_SLICES["root_rot_vel"].start, FEATURE_SLICES["ric"].stop)


# Recipe fields added after runs and releases existed: off (0), they are left out of a run's identity and a release's
# recipe, so those runs still resume and those releases still read as trained with the recipe they record.
LATER_FIELDS = ("ema_decay", "velocity_weight", "velocity_from_step", "acceleration_weight", "acceleration_from_step",
                "position_weight", "position_from_step", "high_noise_share", "high_noise_from_step")

# The top of the schedule that `high_noise_share` draws from. Where the embedded teacher loses slow periodic motion:
# real arm circles noised to t = 88 of 100 and sampled back keep their speed, noised to t = 94 keep 0.4 of it (README
# "Past 12,000 steps"); the model must learn to pick a motion's phase out of a nearly pure-noise input there.
HIGH_NOISE_BAND = 0.2


def emphasise_high_noise(t: torch.Tensor, share: float, num_timesteps: int, generator: torch.Generator) -> torch.Tensor:
    """The first round(share * B) of the uniformly drawn steps `t` redrawn uniformly from the top `HIGH_NOISE_BAND`.

    Importance sampling of the training steps, unweighted: the loss spends more of the batch where the x0 prediction
    must amplify a faint signal. The rest of the batch keeps the uniform draw, so every step is still trained.
    """
    count = round(share * len(t))
    if count == 0:
        return t
    low = min(num_timesteps - 1, int(round(num_timesteps * (1.0 - HIGH_NOISE_BAND))))
    out = t.clone()
    out[:count] = torch.randint(low, num_timesteps, (count,), generator=generator, device=generator.device).to(t.device)
    return out


def without_later_fields_off(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if not (k in LATER_FIELDS and v == 0.0)}


def prior_hash(prior: PreparedPrior) -> str:
    """Hash of a prepared prior as training reads it: both tables, every feature frame and the statistics."""
    digest = hashlib.sha256()
    digest.update(prior.motions.to_csv(index=False).encode())
    digest.update(prior.captions.to_csv(index=False).encode())
    for array in (prior.features, prior.stats.mean, prior.stats.std):
        update_with_array(digest, array)
    return digest.hexdigest()


def build_mdm_config(config: TeacherConfig, text_dim: int) -> MDMConfig:
    """The teacher's MDM config with the text encoder's width (a `teacher.model.text_dim` given must agree)."""
    given = config.params()["model"]
    if "text_dim" in given and given["text_dim"] != text_dim:
        raise ValueError(f"teacher.model.text_dim={given['text_dim']} differs from the text encoder's dim {text_dim}")
    return dataclasses.replace(config.model, text_dim=text_dim)


def pretrain_teacher(
    prior: PreparedPrior,
    embed: TextEmbedder,
    config: TeacherConfig,
    text_encoder: dict[str, Any],
    resume_dir: Path | None = None,
    progress: Callable[[LoggedStep, int], None] | None = None,
    stop_after: int | None = None,
) -> PretrainResult:
    """Pretrain an MDM on the prepared prior's captioned motions.

    `embed` maps captions to text embeddings (the same encoder the teacher will be prompted with). `resume_dir` holds
    the resume checkpoint; `stop_after` ends early after that many steps (it simulates an interruption in tests).
    `progress(row, total)` gets every logged point of the curve, with the learning rate its step was trained at.

    Under torchrun every process calls this: it joins the process group (created here unless the caller made one)
    and trains on its slice of each global batch. Every rank returns the same teacher; rank 0 alone reports
    `progress` and writes the resume checkpoint, which every rank reads on a resume.
    """
    device = rank_device(resolve_device(config.device), current_world())  # under torchrun on CUDA: this rank's GPU
    with process_group(device) as world:
        return _pretrain(prior, embed, config, text_encoder, resume_dir, progress, stop_after, device, world)


def _pretrain(
    prior: PreparedPrior,
    embed: TextEmbedder,
    config: TeacherConfig,
    text_encoder: dict[str, Any],
    resume_dir: Path | None,
    progress: Callable[[LoggedStep, int], None] | None,
    stop_after: int | None,
    device: torch.device,
    world: World,
) -> PretrainResult:
    start_time = time.perf_counter()
    prior = prior.subset(config.splits)
    if len(prior) == 0:
        raise ValueError(f"prepared prior has no motions in splits {list(config.splits)}")
    texts = prior.captions["caption"].tolist()
    text_table = torch.from_numpy(np.asarray(embed(texts), dtype=np.float32)).to(device)
    if len(text_table) != len(texts) or not torch.isfinite(text_table).all():
        raise ValueError("text encoder returned a wrong number of embeddings or non-finite values")
    sampler = CaptionedMotionSampler(prior, np.arange(len(texts)), config)
    local = shard(config.batch_size, world)  # this rank's slice of every global batch (all of it in one process)

    torch.manual_seed(config.seed)  # dropout inside the transformer uses the global stream
    mdm_config = build_mdm_config(config, text_table.shape[1])
    model = MDM.from_config(mdm_config).to(device).train()
    diffusion = GaussianDiffusion(config.diffusion_steps, config.noise_schedule)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    ema = WeightAverage(model, config.ema_decay) if config.ema_decay > 0 else None
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator(device="cpu").manual_seed(config.seed)
    losses: list[tuple[int, float]] = []
    step = 0
    running, count = 0.0, 0  # loss sum and steps since the last log point: part of the resume state

    resume_path = resume_file(resume_dir, lambda: run_fingerprint(config, prior, text_table))
    state = load_resume(resume_path, rng, generator)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        losses, step = list(state["losses"]), int(state["step"])
        running, count = float(state["running"]), int(state["count"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        if world.is_main:
            log.info("resuming teacher pretraining from step %d (%s)", step, resume_path)
    resumed_from = step
    net: torch.nn.Module = model
    if world.distributed:
        check_agree(step, "the step to resume from", device)
        net = DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            forward_sync_buffers=False,  # the only buffer, the positional table, is a constant
            find_unused_parameters=mdm_config.num_actions > 0,  # pretraining passes no action
        )

    while step < config.steps:
        motions, caption_idx = sampler.sample(rng)
        batch = collate(motions, prior.stats, device)
        t = diffusion.sample_timesteps(len(motions), generator)
        if config.high_noise_share > 0 and step >= config.high_noise_from_step:
            t = emphasise_high_noise(t, config.high_noise_share, diffusion.num_timesteps, generator)
        t = t.to(device)
        noise = torch.randn(batch.x0.shape, generator=generator).to(device)
        x0, mask, forward_generator = batch.x0, batch.mask, generator
        if world.distributed:  # the global batch was drawn above exactly as one process draws it; keep this slice
            x0, mask, t, noise, caption_idx = (v[local] for v in (x0, mask, t, noise, caption_idx))
            forward_generator = rank_generator(generator, len(motions), world)  # this slice's condition dropout
            torch.manual_seed(step_seed(config.seed, step, world.rank))  # this rank's dropout masks
        x_t = diffusion.q_sample(x0, t, noise)
        with autocast(device, config.precision):
            pred = net(x_t, t, text_emb=text_table[caption_idx], mask=mask, generator=forward_generator)
        loss = masked_mse(pred.float(), x0, mask).mean()
        if config.velocity_weight > 0 and step >= config.velocity_from_step:
            loss = loss + config.velocity_weight * masked_velocity_mse(pred.float(), x0, mask).mean()
        if config.acceleration_weight > 0 and step >= config.acceleration_from_step:
            loss = loss + config.acceleration_weight * masked_acceleration_mse(pred.float(), x0, mask).mean()
        if config.position_weight > 0 and step >= config.position_from_step:
            loss = loss + config.position_weight * masked_mse(pred[..., JOINT_COLUMNS].float(), x0[..., JOINT_COLUMNS],
                                                              mask).mean()
        if world.distributed:
            _skip_condition_draws(generator, len(motions), mdm_config)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # under DDP: the gradients averaged over the ranks' equal slices, i.e. the batch's gradient
        lr = config.lr_at(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.step()
        if ema is not None:
            ema.update(model)
        step += 1
        step_loss = mean_over_ranks(loss) if world.distributed else loss
        running, count = running + step_loss.item(), count + 1
        if step % config.log_every == 0 or step == config.steps:
            losses.append((step, running / count))
            running, count = 0.0, 0
            if progress is not None and world.is_main:
                progress(LoggedStep(step, losses[-1][1], lr), config.steps)  # the rate this step's update ran at
        if world.is_main and checkpoint_due(resume_path, step, config.checkpoint_every, config.steps):
            save_resume(resume_path, _resume_state(model, optimizer, losses, step, running, count, ema), rng, generator)
        if stop_after is not None and step >= stop_after:
            break

    if ema is not None:
        ema.copy_to(model)  # the released weights are the average; the raw ones live on only in the resume checkpoint
    model.eval().requires_grad_(False)
    teacher = TeacherCheckpoint(
        model=model,
        stats=prior.stats,
        diffusion_steps=config.diffusion_steps,
        noise_schedule=config.noise_schedule,
        text_encoder=dict(text_encoder),
        max_frames=config.max_frames,
        source="pretrain",
        step=step,
    )
    if world.is_main:
        discard_finished(resume_path, step, config.steps)
    return PretrainResult(teacher, losses, resumed_from, time.perf_counter() - start_time)


def _skip_condition_draws(generator: torch.Generator, batch_size: int, config: MDMConfig) -> None:
    """Advance the shared generator past what MDM's training forward draws for a whole batch, as one process's
    forward does: a (B,) uniform for each condition with a nonzero drop probability (`kinemic.models.mdm._drop_mask`).

    Under DDP each rank's forward draws from its own copy (`kinemic.distributed.rank_generator`), lined up with its
    slice of the text draws; the action draws it takes from that copy are unused, as pretraining passes no action.
    """
    for prob in (config.cond_mask_prob, config.action_mask_prob):
        if prob > 0:
            torch.rand(batch_size, generator=generator)


def _resume_state(model, optimizer, losses, step, running, count, ema=None) -> dict[str, Any]:
    """Everything the loop carries from one step to the next, the partial log window included (the random streams are
    added by `kinemic.resume.save_resume`).

    Without `running`/`count` a resume restarts the window at the checkpoint step, and when checkpoint_every is not a
    multiple of log_every the next logged loss averages fewer steps than in an uninterrupted run. The EMA state is
    only written when EMA is on, so a default run's resume checkpoint holds the same keys as before.
    """
    extra = {} if ema is None else {"ema": ema.state_dict()}
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "losses": losses,
        "step": step,
        "running": running,
        "count": count,
        **extra,
    }
