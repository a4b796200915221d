"""Training the student: KineMIC (paper sec. 4.2-4.5) and the baselines of Table 1, as one configurable loop.

Methods (`train.method`):
- `kinemic`: frozen teacher stream on soft-paired prior motions, LoRA student stream on the few-shot targets and on the
  mined prior windows, the MIC module trained contrastively (eq. 1). Losses: target reconstruction (eq. 3), window
  reconstruction (eq. 4), window distillation (eq. 5, switch `use_dist`), dynamic window weighting (eq. 6, switch
  `use_dww`); `use_dist: false, use_dww: false` is the paper's "KineMIC (Base)".
- `lora`: the same LoRA student trained on the few-shot samples only (target reconstruction).
- `scratch`: the same architecture from a random initialisation, every weight trained, few-shot samples only.
- `zeroshot`: no training; the teacher is prompted with the class prompt.
Every method writes the same `StudentCheckpoint`, so generation treats them alike.

One training step (kinemic): all few-shot samples plus one prior motion per sample drawn from its class's top-k soft
pairs; the same t and the same noise tensor for both streams; teacher features under no-grad; the window of each prior
motion with the largest cumulative MIC attention, of the paired target's length, is cut from the clean motion and from
the noise and re-noised at the same t, then reconstructed by the student under the target's condition (text prompt +
action) as a pseudo-label. Every step's windows are recorded (`TrainResult.windows`: the crop of each prior motion and
the window eq. (2) picked in it), so that what MIC selected can be scored afterwards (kinemic.window_recognition).

With `extra_templates` the text condition of each few-shot sample is drawn per step from its class's prompts (the class
prompt and one per extra template), from a stream of its own seeded by (seed, step), so no other draw moves and with
the option off every output stays as it was. Generation keeps the single class prompt.

Under torchrun (`nproc` > 1, kinemic.distributed) it trains data-parallel, DDP over the trainable parts (student, MIC,
logit scale; the frozen teacher is replicated): every rank draws the whole batch as one process does (samples, crops,
t, noise, the text and action dropout masks) and runs the networks on its slice; the contrastive loss and the memory
bank see the whole batch's embeddings, gathered from every rank. The gradients, and so the weights, are one process's
up to float summation order, except for transformer and LoRA dropout masks (0 in the default params), which each rank
draws for its own slice. Rank 0 alone reports progress and writes the resume checkpoints.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from kinemic.batching import collate, crop_length
from kinemic.corpus import PreparedPrior
from kinemic.devices import autocast, resolve_device
from kinemic.diffusion import GaussianDiffusion, masked_mse
from kinemic.distributed import (
    World,
    check_agree,
    current_world,
    gather_batch,
    mean_over_ranks,
    process_group,
    rank_device,
    shard,
    step_seed,
)
from kinemic.mining import build_prompts
from kinemic.models.mdm import MDM, MDMConfig, _drop_mask
from kinemic.models.mic import MIC, MICConfig
from kinemic.motion import FeatureStats
from kinemic.objectives import (
    LOGIT_SCALE_MAX,
    MemoryBank,
    align_to_window,
    best_window_starts,
    feature_distillation,
    snn_loss,
    window_mask,
    window_weights,
)
from kinemic.params import check_range, config_from_params
from kinemic.resume import (
    checkpoint_due,
    discard_finished,
    load_resume,
    resume_file,
    save_resume,
    update_with_array,
    update_with_tensor,
)
from kinemic.student import LoRASettings, StudentCheckpoint, add_lora, merged_model, with_actions
from kinemic.target_set import PreparedTarget
from kinemic.teacher import TeacherCheckpoint, prior_hash
from kinemic.window_filter import class_speeds, plausible_windows

log = logging.getLogger(__name__)

METHODS = ("kinemic", "lora", "scratch", "zeroshot")
LOSS_COLUMNS = ("loss", "target_rec", "contrastive", "window_rec", "window_distill", "dww_mean", "logit_scale")
# One row per prior sample of every kinemic step: its crop of the prior motion and the window eq. (2) picked in it
# (window_start counts from the crop's first frame), then whether the kinematic filter kept it (1/0; -1: filter off).
WINDOW_RECORD = ("step", "class_id", "target_index", "prior_index", "crop_start", "crop_length", "window_start",
                 "window_length", "kept")
PROMPT_STREAM = 15  # the prompt draws' own seed sequence: (seed, step, PROMPT_STREAM)


@dataclass(frozen=True)
class TrainConfig:
    """Params section `train`."""

    method: str = "kinemic"
    use_dist: bool = True
    use_dww: bool = True
    steps: int = 5000
    target_batch: int = 0  # 0: every few-shot sample in every step (the paper's 30)
    lr: float = 2e-5
    scratch_lr: float = 1e-4  # a randomly initialised model cannot learn at the fine-tuning rate
    weight_decay: float = 1e-5
    grad_clip: float = 1.0
    lora: LoRASettings = field(default_factory=LoRASettings)  # params give a mapping {rank, alpha, dropout}
    mic_hidden: int = 0  # 0: the teacher's latent size (the authors' 512 for the official model)
    mic_output: int = 0
    tau: float = 0.07
    bank_size: int = 60
    lambda_rec: float = 1.0
    lambda_contrastive: float = 1.0
    lambda_window_rec: float = 1.0
    lambda_window_distill: float = 0.5
    text_mask_prob: float = 0.1
    action_mask_prob: float = 0.1
    # Prompt augmentation for conditioning: more templates ('{label}': the class name); each step draws one of the
    # class prompt and these per sample. Empty: the class prompt every step, as the paper.
    extra_templates: tuple[str, ...] = ()
    window_speed_ratio: float = 0.0  # > 1: drop mined windows this many times faster/slower than the class; 0: off
    prior_max_frames: int = 0  # longest prior crop; 0: the teacher's training crop (its checkpoint's max_frames)
    seed: int = 42
    device: str = "auto"
    nproc: int = 1  # > 1: data-parallel training in that many processes under torchrun (kinemic.distributed)
    precision: str = "fp32"
    checkpoint_every: int = 100
    log_every: int = 10

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"train.method must be one of {METHODS}, got {self.method!r}")
        for name in ("steps", "checkpoint_every", "log_every", "nproc"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if self.target_batch % self.nproc:  # target_batch 0 (every few-shot sample) is checked against the set
            raise ValueError(f"train.target_batch ({self.target_batch}) must be divisible by train.nproc "
                             f"({self.nproc}): each process trains on an equal slice of the global batch")
        if self.window_speed_ratio and self.window_speed_ratio <= 1.0:
            raise ValueError(f"train.window_speed_ratio must be 0 (off) or > 1, got {self.window_speed_ratio}")
        if self.prior_max_frames < 0:
            raise ValueError(f"train.prior_max_frames must be >= 0 (0: the teacher's), got {self.prior_max_frames}")
        if self.target_batch < 0 or self.bank_size < 0:
            raise ValueError("train.target_batch and train.bank_size must be >= 0")
        if not 0 < self.tau < 1:
            raise ValueError(f"train.tau must lie in (0, 1), got {self.tau}")
        for name in ("text_mask_prob", "action_mask_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"train.{name} must lie in [0, 1), got {getattr(self, name)}")
        check_range("train", self, positive=("lr", "scratch_lr"), non_negative=(
            "weight_decay", "grad_clip", "mic_hidden", "mic_output", "lambda_rec", "lambda_contrastive",
            "lambda_window_rec", "lambda_window_distill"))
        for template in self.extra_templates:
            if not isinstance(template, str) or "{label}" not in template:
                raise ValueError(f"train.extra_templates: {template!r} must be text containing '{{label}}', where the "
                                 "class name goes (e.g. 'someone does a {label}')")
        if not isinstance(self.lora, LoRASettings):  # unknown keys and numbers written as text fail here, named
            object.__setattr__(self, "lora", config_from_params(LoRASettings, self.lora, "train.lora"))

    @property
    def uses_prior(self) -> bool:
        return self.method == "kinemic"

    @property
    def learning_rate(self) -> float:
        """The constant rate the student trains at: a randomly initialised model gets `scratch_lr`."""
        return self.scratch_lr if self.method == "scratch" else self.lr


# --------------------------------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class TrainingData:
    """Everything a training step draws from, already embedded and indexed."""

    target_features: list[np.ndarray]
    target_labels: np.ndarray  # (N,) class index
    class_names: list[str]
    class_prompts: list[str]
    prompt_embeddings: np.ndarray  # (C, text_dim)
    prior: PreparedPrior | None = None
    pairs_by_class: list[np.ndarray] = field(default_factory=list)  # prior motion indices per class (top-k)
    prior_caption_rows: list[np.ndarray] = field(default_factory=list)  # caption rows per prior motion
    caption_embeddings: np.ndarray | None = None  # (captions, text_dim), rows of prior.captions
    # train.extra_templates: every class's prompts, template by template (row j * C + c: template j of class c, the
    # class prompt first, so rows [0, C) are `class_prompts`); empty with the option off
    step_prompts: list[str] = field(default_factory=list)
    step_prompt_embeddings: np.ndarray | None = None  # (templates * C, text_dim)

    @property
    def prompt_templates(self) -> int:
        """How many prompts each class has to draw from (1: the class prompt alone)."""
        return max(1, len(self.step_prompts) // max(1, len(self.class_names)))

    def fingerprint(self) -> str:
        """Hash of every input a step reads, in full: the few-shot set, prompts and their embeddings, the soft pairs,
        the prior (tables, every feature frame, statistics), its caption embeddings and the drawn prompts (hashed
        only when there are any, so a run without them keeps its identity)."""
        digest = hashlib.sha256()
        for f in self.target_features:
            update_with_array(digest, f)  # shapes too: the same frames split at other lengths are another set
        update_with_array(digest, self.target_labels)
        digest.update(json.dumps([self.class_names, self.class_prompts]).encode())
        update_with_array(digest, self.prompt_embeddings)
        digest.update(f"pairs{len(self.pairs_by_class)}".encode())
        for pairs in self.pairs_by_class:
            update_with_array(digest, pairs)
        if self.prior is not None:
            digest.update(prior_hash(self.prior).encode())
        digest.update(f"rows{len(self.prior_caption_rows)}".encode())
        for rows in self.prior_caption_rows:
            update_with_array(digest, rows)
        if self.caption_embeddings is not None:
            update_with_array(digest, self.caption_embeddings)
        if self.step_prompts:
            digest.update(json.dumps(self.step_prompts).encode())
            update_with_array(digest, self.step_prompt_embeddings)
        return digest.hexdigest()


def build_training_data(
    fewshot: PreparedTarget,
    soft_pairs: pd.DataFrame | None,
    prior: PreparedPrior | None,
    embed: Callable[[list[str]], np.ndarray],
    extra_templates: tuple[str, ...] = (),
) -> TrainingData:
    """Index the few-shot set, the soft pairs and the prior captions; embed prompts and captions once.

    `extra_templates` (train.extra_templates) add one prompt per class and template (kinemic.mining.build_prompts),
    embedded here once, for the steps to draw from; the class prompt keeps its own embedding.
    """
    if len(fewshot) == 0:
        raise ValueError("the few-shot set is empty: check prepare_target's split (no sample has split 'fewshot')")
    class_names = fewshot.class_names
    if soft_pairs is not None:
        prompts = soft_pairs.drop_duplicates("class_id").set_index("class_id")["prompt"]
        missing = [c for c in range(len(class_names)) if c not in prompts.index]
        if missing:
            raise ValueError(f"soft pairs lack classes {[class_names[c] for c in missing]}; re-run `dvc repro mine`")
        class_prompts = [str(prompts[c]) for c in range(len(class_names))]
    else:
        class_prompts = fewshot.samples.drop_duplicates("class_index").sort_values("class_index")["caption"].tolist()
    data = TrainingData(
        target_features=fewshot.all_features(),
        target_labels=fewshot.labels,
        class_names=class_names,
        class_prompts=class_prompts,
        prompt_embeddings=np.asarray(embed(class_prompts), dtype=np.float32),
    )
    if extra_templates:
        extra = [prompt for template in extra_templates for prompt in build_prompts(class_names, template)]
        data.step_prompts = class_prompts + extra
        data.step_prompt_embeddings = np.concatenate(
            [data.prompt_embeddings, np.asarray(embed(extra), dtype=np.float32)])
    if prior is None or soft_pairs is None:
        return data
    index_of = {m: i for i, m in enumerate(prior.motions["motion_id"])}
    unknown = sorted(set(soft_pairs["motion_id"]) - set(index_of))
    if unknown:
        raise ValueError(f"soft pairs name motions missing from the prepared prior (e.g. {unknown[:3]}); re-run mining")
    data.prior = prior
    data.pairs_by_class = [
        soft_pairs.loc[soft_pairs["class_id"] == c, "motion_id"].map(index_of).to_numpy(dtype=np.int64)
        for c in range(len(class_names))
    ]
    codes = prior.captions["motion_id"].map(index_of).to_numpy()
    order = np.argsort(codes, kind="stable")  # caption rows grouped by motion, in row order within a motion
    data.prior_caption_rows = np.split(order, np.cumsum(np.bincount(codes, minlength=len(prior)))[:-1])
    data.caption_embeddings = np.asarray(embed(prior.captions["caption"].tolist()), dtype=np.float32)
    return data


# --------------------------------------------------------------------------------------------------------------------
# model assembly
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class StudentParts:
    student: nn.Module  # LoRA-wrapped or plain MDM
    mic: MIC | None
    logit_scale: nn.Parameter | None


def build_student(teacher: MDM, num_classes: int, config: TrainConfig) -> StudentParts:
    """The trainable modules of one method (zeroshot has none)."""
    if config.method in ("kinemic", "lora"):
        student = add_lora(with_actions(teacher, num_classes, config.seed), config.lora)
    elif config.method == "scratch":
        fields = {**teacher.config.to_dict(), "num_actions": num_classes}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            student = MDM.from_config(MDMConfig.from_dict(fields)).to(next(teacher.parameters()).device)
    else:
        raise ValueError(f"method {config.method!r} has no trainable student")
    _set_dropout_probs(student, config)
    mic = logit_scale = None
    if config.uses_prior:
        latent = teacher.config.latent_dim
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed + 1)
            mic = MIC(MICConfig(latent, config.mic_hidden or latent, config.mic_output or latent))
        mic.to(next(teacher.parameters()).device)
        logit_scale = nn.Parameter(torch.tensor(float(np.log(1.0 / config.tau)), device=mic.hidden0.device))
    return StudentParts(student, mic, logit_scale)


def _base_model(student: nn.Module) -> MDM:
    """The MDM inside a LoRA-wrapped student (the student itself when it is plain)."""
    return student.get_base_model() if hasattr(student, "get_base_model") else student


def _set_dropout_probs(student: nn.Module, config: TrainConfig) -> None:
    """Text and action are dropped independently for guidance, with the train section's probabilities."""
    base = _base_model(student)
    base.config = dataclasses.replace(
        base.config, cond_mask_prob=config.text_mask_prob, action_mask_prob=config.action_mask_prob
    )


# --------------------------------------------------------------------------------------------------------------------
# the step
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepBatch:
    """The samples one step trains on: few-shot rows and, for kinemic, one cropped prior motion and caption each."""

    target_idx: np.ndarray
    labels: Tensor
    prior_idx: np.ndarray | None
    prior_motions: list[np.ndarray] | None  # the crops: prior motion prior_idx[i], frames [crop_start, + length)
    prior_captions: np.ndarray | None
    prior_starts: np.ndarray | None = None  # (B,) each crop's first frame in its prior motion
    prompt_rows: np.ndarray | None = None  # (B,) rows of data.step_prompt_embeddings; None: the class prompts


def draw_prompt_rows(labels: np.ndarray, num_classes: int, templates: int, seed: int, step: int) -> np.ndarray:
    """(B,) the prompt each sample is conditioned on at `step` (0 first): one of its class's `templates` prompts,
    uniformly, as the row `template * num_classes + label` of the prompt table (TrainingData.step_prompts).

    A stream of its own, a function of (seed, step) alone: the batch's other draws do not move, every rank draws the
    whole batch's prompts as one process does, and a resumed run draws the same without a saved state.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, step, PROMPT_STREAM]))
    return rng.integers(0, templates, size=len(labels)) * num_classes + np.asarray(labels, dtype=np.int64)


def draw_batch(data: TrainingData, config: TrainConfig, rng: np.random.Generator, device: torch.device,
               prior_frames: int, step: int = 0) -> StepBatch:
    """The samples of step `step` (0 first): few-shot rows, and for kinemic one crop and caption of a soft pair each,
    from `rng`; with drawn prompts (train.extra_templates), each sample's prompt from the prompts' own stream."""
    n = len(data.target_features)
    if config.target_batch and config.target_batch < n:
        target_idx = np.sort(rng.choice(n, size=config.target_batch, replace=False))
    else:
        target_idx = np.arange(n)
    labels = data.target_labels[target_idx]
    prompt_rows = None
    if data.step_prompts:
        prompt_rows = draw_prompt_rows(labels, len(data.class_names), data.prompt_templates, config.seed, step)
    if not config.uses_prior:
        return StepBatch(target_idx, torch.from_numpy(labels).to(device), None, None, None, prompt_rows=prompt_rows)
    prior_idx = np.array([rng.choice(data.pairs_by_class[c]) for c in labels], dtype=np.int64)
    motions, captions, starts = [], [], []
    for i in prior_idx:
        full = data.prior.motion(int(i))
        m = crop_length(len(full), 4, prior_frames, rng) if len(full) >= 4 else len(full)
        start = rng.integers(0, len(full) - m + 1)
        motions.append(np.asarray(full[start : start + m]))
        captions.append(rng.choice(data.prior_caption_rows[int(i)]))
        starts.append(start)
    return StepBatch(target_idx, torch.from_numpy(labels).to(device), prior_idx, motions, np.array(captions),
                     np.array(starts, dtype=np.int64), prompt_rows)


@dataclass(frozen=True, kw_only=True)
class StepLosses:
    """The scalar losses of one step. Prior terms are None for the methods without the prior, `window_distill` also
    with `use_dist` off. The unweighted means are logged; `loss` is the weighted total that was back-propagated."""

    target_rec: float  # eq. (3)
    contrastive: float | None = None  # eq. (1)
    window_rec: float | None = None  # eq. (4), before the dww weights
    dww_mean: float | None = None  # eq. (6), 1.0 with use_dww off
    window_distill: float | None = None  # eq. (5), before the dww weights
    logit_scale: float | None = None  # log(1 / tau) of eq. (1), trained
    window_kept: float | None = None  # fraction of windows the kinematic filter keeps (kinemic.window_filter)
    loss: float
    windows: StepWindows | None = None  # eq. (2)'s windows of the whole batch: a record, not a loss (not in as_dict)

    def as_dict(self) -> dict[str, float]:
        """The terms present, in field order: the loss log's row (columns as in LOSS_COLUMNS when written)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "windows" and getattr(self, f.name) is not None}


@dataclass(frozen=True)
class StepWindows:
    """The windows one kinemic step cut from its prior crops (eq. 2), for the whole batch (under DDP: gathered from
    every rank, in batch order): `start` (B,) counts from each crop's first frame, `length` (B,) is the paired
    target's length inside the crop, `kept` (B,) bool the kinematic filter's verdict (None with the filter off)."""

    start: np.ndarray
    length: np.ndarray
    kept: np.ndarray | None = None


@dataclass(frozen=True, kw_only=True)
class StepInputs:
    """Everything one step reads, named: the modules (trained and frozen), the data and the drawn batch, and the
    run's memory bank and random stream (both advanced by the step)."""

    parts: StudentParts
    teacher: MDM  # frozen
    diffusion: GaussianDiffusion
    data: TrainingData
    batch: StepBatch
    stats: FeatureStats
    config: TrainConfig
    bank: MemoryBank
    generator: torch.Generator
    device: torch.device
    world: World = World()  # under DDP: this rank's place, which picks its slice of the batch


def _own_rows(world: World, batch_size: int) -> Callable[[Tensor], Tensor]:
    """Under DDP, this rank's rows (its `shard`) of a tensor of the whole batch; in one process, the tensor itself."""
    if not world.distributed:
        return lambda value: value
    local = shard(batch_size, world)
    return lambda value: value[local]


@contextmanager
def _conditions_dropped_by_caller(base: MDM, drop_action: Tensor) -> Iterator[None]:
    """The model's own condition dropout off, and the action embedding zeroed on `drop_action`'s rows, as that
    dropout zeroes it (`MDM.condition_token`); the caller zeroes the dropped rows of the text input itself."""
    config = base.config
    base.config = dataclasses.replace(config, cond_mask_prob=0.0, action_mask_prob=0.0)
    hook = base.embed_action.register_forward_hook(
        lambda _module, _args, out: torch.where(drop_action.unsqueeze(1), torch.zeros_like(out), out))
    try:
        yield
    finally:
        hook.remove()
        base.config = config


def _student_stream(inputs: StepInputs, x_t: Tensor, t: Tensor, text: Tensor, action: Tensor, mask: Tensor,
                    own: Callable[[Tensor], Tensor]) -> tuple[Tensor, Tensor]:
    """One student stream: x0 prediction and last-layer features, with guidance's training-time condition dropout.

    In one process the model draws the dropout from the step's generator: a (B,) uniform per condition with a nonzero
    probability, text first. Under DDP this rank holds a slice of B, so the same draws are made here for the whole
    batch (the generator stays in step with one process's) and the rank's rows of the masks are applied.
    """
    student, generator = inputs.parts.student, inputs.generator
    if not inputs.world.distributed:
        return student(x_t, t, text_emb=text, action=action, mask=mask, return_latent=True, generator=generator)
    base, batch_size, device = _base_model(student), len(inputs.batch.target_idx), x_t.device
    drop_text = own(_drop_mask(batch_size, base.config.cond_mask_prob, device, generator))
    drop_action = own(_drop_mask(batch_size, base.config.action_mask_prob, device, generator))
    text = torch.where(drop_text.unsqueeze(1), torch.zeros_like(text), text)  # the null text, as the model makes it
    with _conditions_dropped_by_caller(base, drop_action):
        return student(x_t, t, text_emb=text, action=action, mask=mask, return_latent=True)


def kinemic_step(inputs: StepInputs) -> tuple[Tensor, StepLosses]:
    """Loss of one step for any trainable method (prior terms only for kinemic).

    Under DDP (`inputs.world`) the batch, its padding and every random draw are the whole batch's, as in one process,
    and the networks run on this rank's slice. The returned loss is the slice's mean terms plus the whole batch's
    contrastive term (eq. 1 over every rank's embeddings), so the ranks' averaged gradient is one process's gradient;
    the returned StepLosses are this rank's, to be averaged over the ranks.
    """
    parts, teacher, diffusion, data, batch = inputs.parts, inputs.teacher, inputs.diffusion, inputs.data, inputs.batch
    stats, config, bank, generator, device = inputs.stats, inputs.config, inputs.bank, inputs.generator, inputs.device
    target = collate([data.target_features[i] for i in batch.target_idx], stats, device)
    if batch.prompt_rows is None:
        prompt = torch.from_numpy(data.prompt_embeddings).to(device)[batch.labels]
    else:  # train.extra_templates: each sample's drawn prompt of its class
        prompt = torch.from_numpy(data.step_prompt_embeddings[batch.prompt_rows]).to(device)
    frames = target.x0.shape[1]
    prior = None
    if config.uses_prior:
        prior = collate(batch.prior_motions, stats, device)
        frames = max(frames, prior.x0.shape[1])
    bsz = len(batch.target_idx)
    t = diffusion.sample_timesteps(bsz, generator).to(device)
    noise = torch.randn((bsz, frames, target.x0.shape[2]), generator=generator).to(device)  # shared by both streams
    own = _own_rows(inputs.world, bsz)
    labels, t, noise, prompt = own(batch.labels), own(t), own(noise), own(prompt)

    # Each stream runs at its own padded length; both read the same noise tensor from frame 0.
    x0_t, mask_t, lengths_t = own(target.x0), own(target.mask), own(target.lengths)
    with autocast(device, config.precision):
        pred_t, u_t = _student_stream(
            inputs, diffusion.q_sample(x0_t, t, noise[:, : x0_t.shape[1]]), t, prompt, labels, mask_t, own)
    rec_t = masked_mse(pred_t.float(), x0_t, mask_t).mean()  # eq. (3): target reconstruction
    total = config.lambda_rec * rec_t
    if not config.uses_prior:
        return total, StepLosses(target_rec=rec_t.item(), loss=total.item())

    x0_p, mask_p, lengths_p = own(prior.x0), own(prior.mask), own(prior.lengths)
    noise_p = noise[:, : x0_p.shape[1]]
    caption_emb = own(torch.from_numpy(data.caption_embeddings[batch.prior_captions]).to(device))
    with torch.no_grad(), autocast(device, config.precision):
        _, u_p = teacher(diffusion.q_sample(x0_p, t, noise_p), t, text_emb=caption_emb, mask=mask_p, return_latent=True)
    u_p, u_t = u_p.float(), u_t.float()

    out_t = parts.mic(u_t, lengths_t)
    out_p = parts.mic(u_p.detach(), lengths_p)
    # eq. (1) and the bank over the whole batch: under DDP every rank's embeddings in batch order, with gradients
    z_t, z_p = gather_batch(out_t.z, inputs.world), gather_batch(out_p.z, inputs.world)
    cand_z, cand_labels = bank.extend(z_p, batch.labels)
    contrastive = snn_loss(z_t, cand_z, batch.labels, cand_labels, parts.logit_scale)  # eq. (1): MIC contrastive

    windows = torch.minimum(prior.lengths, target.lengths)  # m: the paired target's length, inside the prior
    w_frames = int(windows.max())  # the whole batch's: a rank pads its slice as one process pads the batch
    window = own(windows)
    starts = best_window_starts(out_p.attention.detach(), lengths_p, window)  # eq. (2): most attended window
    mask_w = window_mask(window, w_frames)
    x0_w = align_to_window(x0_p, starts, window, w_frames) * mask_w[..., None]
    noise_w = align_to_window(noise_p, starts, window, w_frames)
    with autocast(device, config.precision):
        pred_w, u_w = _student_stream(inputs, diffusion.q_sample(x0_w, t, noise_w), t, prompt, labels, mask_w, own)
    u_w = u_w.float()
    rec_w = masked_mse(pred_w.float(), x0_w, mask_w)  # (B,) eq. (4): window reconstruction
    weight = torch.ones_like(rec_w)
    if config.use_dww:
        with torch.no_grad():  # eq. (6): dynamic window weighting; no gradient reaches MIC through the weight
            weight = window_weights(out_t.z.detach(), parts.mic(u_w.detach(), window).z)
    kept = None
    if config.window_speed_ratio:  # the kinematic quality filter: implausible windows leave eqs. (4) and (5)
        reference = class_speeds(data.target_features, data.target_labels, len(data.class_names))
        kept = plausible_windows(x0_w, mask_w, stats, labels, reference, config.window_speed_ratio)
        weight = weight * kept
    # eq. (1) plus eq. (4) weighted per window by eq. (6)
    total = total + config.lambda_contrastive * contrastive + config.lambda_window_rec * (weight * rec_w).mean()
    distill = None
    if config.use_dist:
        # eq. (5): window distillation, (B,), weighted by eq. (6) as eq. (4) is
        distill = feature_distillation(u_w, align_to_window(u_p, starts, window, w_frames).detach(), mask_w)
        total = total + config.lambda_window_distill * (weight * distill).mean()
    return total, StepLosses(
        target_rec=rec_t.item(),
        contrastive=contrastive.item(),
        window_rec=rec_w.mean().item(),
        dww_mean=weight.mean().item(),
        window_distill=None if distill is None else distill.mean().item(),
        logit_scale=parts.logit_scale.item(),
        window_kept=None if kept is None else kept.mean().item(),
        loss=total.item(),
        windows=_whole_batch_windows(starts, windows, kept, inputs.world),
    )


@torch.no_grad()
def _whole_batch_windows(starts: Tensor, windows: Tensor, kept: Tensor | None, world: World) -> StepWindows:
    """The step's record of eq. (2): this rank's starts and filter verdicts gathered into the whole batch's (every
    rank then holds what one process holds); the window lengths are the whole batch's already."""
    return StepWindows(
        start=gather_batch(starts, world).cpu().numpy(),
        length=windows.cpu().numpy(),
        kept=None if kept is None else gather_batch(kept, world).cpu().numpy() > 0.5,
    )


# --------------------------------------------------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------------------------------------------------


class _TrainedParts(nn.Module):
    """The trainable parts as one module, whose forward is one step's loss: what DistributedDataParallel wraps, so
    that it averages the gradients of student, MIC and logit scale alike. The frozen teacher stays outside."""

    def __init__(self, parts: StudentParts) -> None:
        super().__init__()
        self.student = parts.student
        self.mic = parts.mic
        self.logit_scale = parts.logit_scale

    def forward(self, inputs: StepInputs) -> tuple[Tensor, StepLosses]:
        return kinemic_step(inputs)


@dataclass
class TrainResult:
    checkpoint: StudentCheckpoint
    losses: list[dict[str, float]]
    resumed_from: int
    seconds: float
    parts: StudentParts | None
    windows: pd.DataFrame | None = None  # kinemic: every step's windows (`window_table`); None for the other methods


def _window_rows(step: int, batch: StepBatch, windows: StepWindows) -> Tensor:
    """(B, len(WINDOW_RECORD)) int64: one step's record, one row per prior sample (a tensor: resume files hold
    tensors and plain types only)."""
    kept = np.full(len(windows.start), -1) if windows.kept is None else windows.kept.astype(np.int64)
    columns = (np.full(len(windows.start), step), batch.labels.cpu().numpy(), batch.target_idx, batch.prior_idx,
               batch.prior_starts, [len(m) for m in batch.prior_motions], windows.start, windows.length, kept)
    return torch.from_numpy(np.stack([np.asarray(c, dtype=np.int64) for c in columns], axis=1))


def window_table(rows: Tensor, data: TrainingData) -> pd.DataFrame:
    """The recorded windows as a table (plots/train/windows.parquet): WINDOW_RECORD's columns, with each row's class
    name after class_id and prior motion_id after prior_index; `kept` only when the kinematic filter was on."""
    table = pd.DataFrame(rows.numpy(), columns=list(WINDOW_RECORD))
    table.insert(2, "class_name", [data.class_names[c] for c in table["class_id"]])
    table.insert(5, "motion_id", data.prior.motions["motion_id"].to_numpy()[table["prior_index"].to_numpy()])
    if (table["kept"] < 0).all():
        return table.drop(columns="kept")
    table["kept"] = table["kept"].astype(bool)
    return table


def run_fingerprint(config: TrainConfig, teacher: TeacherCheckpoint, data: TrainingData) -> str:
    """Identity of a training run: config, every byte of the data and of the teacher's weights, stats and schedule."""
    fields = dataclasses.asdict(config)
    del fields["nproc"]  # 1 or N processes train on the same global batches: the same run up to float order
    if not fields["extra_templates"]:
        del fields["extra_templates"]  # off: the identity runs had before the option existed
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode())
    digest.update(data.fingerprint().encode())
    for name, value in teacher.model.state_dict().items():
        digest.update(name.encode())
        update_with_tensor(digest, value)
    update_with_array(digest, teacher.stats.mean)
    update_with_array(digest, teacher.stats.std)
    digest.update(f"{teacher.diffusion_steps}{teacher.noise_schedule}".encode())
    return digest.hexdigest()[:16]


def train_student(
    teacher: TeacherCheckpoint,
    data: TrainingData,
    config: TrainConfig,
    resume_dir: Path | None = None,
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
    stop_after: int | None = None,
) -> TrainResult:
    """Train one method and return a checkpoint that `generate` can sample from.

    `progress(step, steps, row)` gets every logged row: the step, the mean of each loss term over the steps since
    the last row, and the learning rate the step was trained at (`lr`). `resume_dir` holds the resume checkpoint;
    `stop_after` ends early after that many steps (it simulates an interruption in tests).

    Under torchrun every process calls this: it joins the process group (created here unless the caller made one)
    and trains on its slice of each global batch. Every rank returns the same weights and rows; rank 0 alone reports
    `progress` and writes the resume checkpoint, which every rank reads on a resume.
    """
    start_time = time.perf_counter()
    device = rank_device(resolve_device(config.device), current_world())  # under torchrun on CUDA: this rank's GPU
    teacher.model.to(device).eval().requires_grad_(False)
    common = dict(
        method=config.method,
        class_names=data.class_names,
        class_prompts=data.class_prompts,
        prompt_embeddings=data.prompt_embeddings,
        stats=teacher.stats,
        diffusion_steps=teacher.diffusion_steps,
        noise_schedule=teacher.noise_schedule,
        max_frames=teacher.max_frames,
        text_encoder=teacher.text_encoder,
    )
    if config.method == "zeroshot":
        model = merged_model(teacher.model)
        return TrainResult(StudentCheckpoint(model=model.cpu(), extra={"steps": 0}, **common), [], 0, 0.0, None)
    if config.uses_prior and (data.prior is None or not data.pairs_by_class):
        raise ValueError("method 'kinemic' needs the prepared prior and the soft pairs")
    if data.prompt_templates != 1 + len(config.extra_templates):
        raise ValueError(f"the training data has {data.prompt_templates} prompts per class, train.extra_templates "
                         f"asks for {1 + len(config.extra_templates)}: build it with build_training_data(..., "
                         "config.extra_templates)")
    with process_group(device) as world:
        return _train(teacher, data, config, common, resume_dir, progress, stop_after, device, world, start_time)


def _train(
    teacher: TeacherCheckpoint,
    data: TrainingData,
    config: TrainConfig,
    common: dict[str, Any],
    resume_dir: Path | None,
    progress: Callable[[int, int, dict[str, float]], None] | None,
    stop_after: int | None,
    device: torch.device,
    world: World,
    start_time: float,
) -> TrainResult:
    torch.manual_seed(config.seed)
    parts = build_student(teacher.model, len(data.class_names), config)
    parts.student.train()
    diffusion = teacher.diffusion()
    lr = config.learning_rate
    clipped = [p for p in parts.student.parameters() if p.requires_grad]
    if parts.mic is not None:
        clipped += list(parts.mic.parameters())
    groups = [{"params": clipped}]
    if parts.logit_scale is not None:
        groups.append({"params": [parts.logit_scale]})  # trainable, outside the clipped set (as the authors)
    optimizer = torch.optim.AdamW(groups, lr=lr, weight_decay=config.weight_decay)
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator(device="cpu").manual_seed(config.seed)
    bank = MemoryBank(config.bank_size)
    history: list[dict[str, float]] = []
    step = 0
    window: list[dict[str, float]] = []  # step losses since the last log point: part of the resume state
    picked: list[Tensor] = []  # the windows of every step so far (`_window_rows`): part of the resume state

    resume_path = resume_file(resume_dir, lambda: run_fingerprint(config, teacher, data))
    state = load_resume(resume_path, rng, generator)
    if state is not None:
        parts.student.load_state_dict(state["student"])
        if parts.mic is not None:
            parts.mic.load_state_dict(state["mic"])
            parts.logit_scale.data.copy_(state["logit_scale"])
        optimizer.load_state_dict(state["optimizer"])
        bank.load_state_dict(state["bank"])
        history, step = list(state["history"]), int(state["step"])
        window = list(state["window"])
        if "windows" in state:
            picked = [state["windows"]]
        elif config.uses_prior and world.is_main:
            log.warning("the resume checkpoint has no window record: the windows table starts at step %d", step + 1)
        if world.is_main:
            log.info("resuming %s training from step %d", config.method, step)
    resumed_from = step
    step_loss: Callable[[StepInputs], tuple[Tensor, StepLosses]] = kinemic_step
    if world.distributed:
        check_agree(step, "the step to resume from", device)
        step_loss = DistributedDataParallel(
            _TrainedParts(parts),
            device_ids=[device.index] if device.type == "cuda" else None,
            forward_sync_buffers=False,  # the only buffers, the positional tables, are constants
        )

    prior_frames = config.prior_max_frames or teacher.max_frames  # crops as long as the teacher was trained on
    while step < config.steps:
        batch = draw_batch(data, config, rng, device, prior_frames, step)
        if world.distributed:
            torch.manual_seed(step_seed(config.seed, step, world.rank))  # this rank's transformer and LoRA dropout
        loss, losses = step_loss(StepInputs(
            parts=parts, teacher=teacher.model, diffusion=diffusion, data=data, batch=batch, stats=teacher.stats,
            config=config, bank=bank, generator=generator, device=device, world=world,
        ))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # under DDP: the gradients averaged over the ranks, i.e. the batch's gradient
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(clipped, config.grad_clip)
        optimizer.step()
        if parts.logit_scale is not None:
            with torch.no_grad():
                parts.logit_scale.clamp_(0.0, LOGIT_SCALE_MAX)
        step += 1
        if losses.windows is not None:
            picked.append(_window_rows(step, batch, losses.windows))
        window.append((_mean_over_ranks(losses, device) if world.distributed else losses).as_dict())
        if step % config.log_every == 0 or step == config.steps:
            row = {"step": step, **{k: float(np.mean([w[k] for w in window if k in w])) for k in window[-1]},
                   "lr": optimizer.param_groups[0]["lr"]}  # the rate this step was trained at
            history.append(row)
            window = []
            if progress is not None and world.is_main:
                progress(step, config.steps, row)
        if world.is_main and checkpoint_due(resume_path, step, config.checkpoint_every, config.steps):
            save_resume(resume_path, _resume_state(parts, optimizer, bank, history, window, picked, step), rng,
                        generator)
        if stop_after is not None and step >= stop_after:
            break

    parts.student.eval()
    model = merged_model(parts.student).cpu().eval().requires_grad_(False)
    extra: dict[str, Any] = {"steps": step, "lr": lr}
    checkpoint = StudentCheckpoint(model=model, extra=extra, **common)
    if world.is_main:
        discard_finished(resume_path, step, config.steps)
    windows = window_table(torch.cat(picked), data) if picked else None
    return TrainResult(checkpoint, history, resumed_from, time.perf_counter() - start_time, parts, windows)


def _mean_over_ranks(losses: StepLosses, device: torch.device) -> StepLosses:
    """The whole batch's terms from the ranks' own: each the mean of the equal slices' means, as one process logs it
    (the contrastive term and the logit scale, the same on every rank, stay what they are)."""
    terms = losses.as_dict()
    means = mean_over_ranks(torch.tensor(list(terms.values()), dtype=torch.float64, device=device))
    return dataclasses.replace(losses, **dict(zip(terms, means.tolist(), strict=True)))


def _resume_state(parts: StudentParts, optimizer, bank, history, window, picked, step) -> dict[str, Any]:
    """Everything the loop carries from one step to the next, the partial log window and the window record included
    (without them a resume between two log points would log a mean over fewer steps than an uninterrupted run, and
    the windows table would start at the resumed step); the random streams are added by `kinemic.resume.save_resume`.
    """
    state = {
        "student": parts.student.state_dict(),
        "optimizer": optimizer.state_dict(),
        "bank": bank.state_dict(),
        "history": history,
        "window": list(window),  # StepLosses.as_dict rows: plain dicts load with weights_only
        "step": step,
    }
    if picked:
        state["windows"] = torch.cat(picked)
    if parts.mic is not None:
        state["mic"] = parts.mic.state_dict()
        state["logit_scale"] = parts.logit_scale.detach().cpu()
    return state
