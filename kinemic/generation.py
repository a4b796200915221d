"""Stage logic of `generate`: sample a synthetic training set from a student checkpoint.

N motions per class with classifier-free guidance; each motion's length is drawn from the few-shot samples of its class
(the only lengths the target domain has shown us). The condition is the student's: action + class prompt for trained
students, the class prompt alone for the zero-shot teacher. An optional composition request (paper Fig. 5) samples one
class's action with a different text prompt ("stretch oneself" + "a person is jumping").

Output (`SyntheticSet.save`): one `.npz` with concatenated features and joints, lengths, labels and class names.

Under torchrun (`generate.nproc` > 1) each rank samples a contiguous share of the batches, each batch with the random
draws it gets in one process (`kinemic.sampling.sample_motions(batches=...)`), and rank 0 puts the shares together in
rank order: the same bytes for any number of processes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from kinemic.devices import resolve_device
from kinemic.diffusion import SPACINGS
from kinemic.distributed import World, batch_share, gather_in_rank_order
from kinemic.frozen import class_mean_speeds, frozen_against
from kinemic.params import check_range
from kinemic.samplers import SAMPLERS
from kinemic.sampling import SampleRequest, Samples, batch_count, lengths_like, sample_motions
from kinemic.student import StudentCheckpoint
from kinemic.synthetic_set import SyntheticSet  # re-exported: stages and backends import it from here
from kinemic.target_set import PreparedTarget

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerateConfig:
    """Params section `generate`."""

    samples_per_class: int = 383
    guidance: float = 2.5
    sampling_steps: int = 0  # 0: every step of the schedule; K: K steps of the model's training schedule
    sampler: str = "ancestral"  # ancestral | ddim | dpmpp_2m (kinemic.samplers)
    spacing: str = "default"  # which sampling_steps steps: official | trailing | high_noise; default: the sampler's
    batch_size: int = 128
    seed: int = 10
    device: str = "auto"
    nproc: int = 1  # > 1: the stage runs under torchrun, each process sampling a share of the batches
    previews_per_class: int = 3
    composition_class: str = ""  # e.g. "stretch oneself"; empty: no composition samples
    composition_text: str = "a person is jumping"
    composition_samples: int = 4
    travel_margin: float = 0.0  # > 0: drop samples travelling this many metres beyond the class's few-shot clips
    frozen_retries: int = 0  # > 0: re-sample frozen samples (kinemic.frozen) up to this many times

    def __post_init__(self) -> None:
        if self.samples_per_class < 1 or self.batch_size < 1:
            raise ValueError("generate.samples_per_class and generate.batch_size must be >= 1")
        if self.sampling_steps < 0:
            raise ValueError(f"generate.sampling_steps must be >= 0, got {self.sampling_steps}")
        if self.guidance < 0:
            raise ValueError(f"generate.guidance must be >= 0, got {self.guidance}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"generate.sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if self.spacing not in ("default", *SPACINGS):
            raise ValueError(f"generate.spacing must be 'default' or one of {SPACINGS}, got {self.spacing!r}")
        check_range("generate", self, positive=("nproc",), non_negative=("previews_per_class", "composition_samples",
                                                                       "travel_margin", "frozen_retries"))


def generate_synthetic(
    student: StudentCheckpoint,
    fewshot: PreparedTarget,
    config: GenerateConfig,
    progress: Callable[[float, int], None] | None = None,
    world: World | None = None,
) -> SyntheticSet | None:
    """`samples_per_class` motions per class, lengths from that class's few-shot samples.

    With a distributed `world` (inside a process group) this rank samples its share of the batches; rank 0 returns
    the whole set and the other ranks None. `progress` then counts this rank's share."""
    if fewshot.class_names != student.class_names:
        raise ValueError(f"student classes {student.class_names} differ from the few-shot set's {fewshot.class_names}")
    rng = np.random.default_rng(config.seed)
    labels, lengths = [], []
    for c in range(len(student.class_names)):
        reference = fewshot.samples.loc[fewshot.samples["class_index"] == c, "length"].to_numpy()
        lengths.append(lengths_like(reference, config.samples_per_class, rng))
        labels.append(np.full(config.samples_per_class, c, dtype=np.int64))
    labels_all, lengths_all = np.concatenate(labels), np.concatenate(lengths)
    samples = _sample(student, labels_all, lengths_all, config, None, progress, world or World())
    if samples is None:
        return None  # another rank than 0: its share went to rank 0
    return SyntheticSet(samples.features, samples.joints, labels_all, list(student.class_names))


def generate_composition(
    student: StudentCheckpoint, text_emb: np.ndarray, fewshot: PreparedTarget, config: GenerateConfig
) -> SyntheticSet:
    """The paper's Fig. 5: one class's action with another text prompt (needs an action-conditioned student)."""
    if not student.uses_action:
        raise ValueError(f"composition needs an action-conditioned student; method {student.method!r} has none")
    if config.composition_class not in student.class_names:
        raise ValueError(f"generate.composition_class {config.composition_class!r} is not one of {student.class_names}")
    c = student.class_names.index(config.composition_class)
    rng = np.random.default_rng(config.seed + 1)
    reference = fewshot.samples.loc[fewshot.samples["class_index"] == c, "length"].to_numpy()
    lengths = lengths_like(reference, config.composition_samples, rng)
    labels = np.full(config.composition_samples, c, dtype=np.int64)
    text = np.repeat(np.asarray(text_emb, np.float32)[None], len(labels), axis=0)
    samples = _sample(student, labels, lengths, config, text, None, World())
    return SyntheticSet(samples.features, samples.joints, labels, list(student.class_names))


@dataclass(frozen=True)
class FrozenResampling:
    """What `resample_frozen` did: samples frozen in the first draw, still frozen after the last retry, rounds run."""

    frozen_first: int
    frozen_left: int
    rounds: int


def retry_seed(seed: int, round_: int) -> int:
    """The sampling seed of retry round `round_` (>= 1): its own stream, fixed by generate.seed."""
    return int(np.random.SeedSequence([seed, round_]).generate_state(1)[0])


def resample_frozen(student: StudentCheckpoint, synthetic: SyntheticSet, fewshot: PreparedTarget,
                    config: GenerateConfig) -> tuple[SyntheticSet, FrozenResampling]:
    """Draw again, at the same length and class, every sample that is frozen against its class's few-shot clips,
    up to `config.frozen_retries` rounds; a sample still frozen after the last round stays (classes keep their size).

    A student freezes what its teacher freezes (arm circles held as a still pose in most samples); a still pose teaches
    the classifier a class that real clips never show. Runs in one process, after the shares are gathered.
    """
    class_speeds = class_mean_speeds(fewshot.all_joints(), fewshot.labels, len(synthetic.class_names))
    frozen = frozen_against(synthetic.joints, synthetic.labels, class_speeds)
    first, rounds = int(frozen.sum()), 0
    if config.frozen_retries == 0 or first == 0:
        log.info("generate: %d samples frozen, not re-sampled", first)
        return synthetic, FrozenResampling(first, first, 0)
    features, joints = list(synthetic.features), list(synthetic.joints)
    lengths = np.array([len(f) for f in features])
    for round_ in range(1, config.frozen_retries + 1):
        again = np.flatnonzero(frozen)
        if again.size == 0:
            break
        rounds = round_
        retry = _sample(student, synthetic.labels[again], lengths[again],
                        replace(config, seed=retry_seed(config.seed, round_)), None, None, World())
        for k, i in enumerate(again):
            features[i], joints[i] = retry.features[k], retry.joints[k]
        frozen[again] = frozen_against(retry.joints, synthetic.labels[again], class_speeds)
    log.info("generate: %d samples frozen, %d after %d re-sampling rounds", first, int(frozen.sum()), rounds)
    resampled = SyntheticSet(features, joints, synthetic.labels, list(synthetic.class_names))
    return resampled, FrozenResampling(first, int(frozen.sum()), rounds)


def _sample(student: StudentCheckpoint, labels, lengths, config: GenerateConfig, text, progress,
            world: World) -> Samples | None:
    """Condition: the class prompt (or the given `text` rows), plus the action when the student has one; this rank's
    share of the batches, gathered in batch order on rank 0 (None on the others), when `world` is distributed."""
    text_emb = student.prompt_embeddings[labels] if text is None else text
    action = labels if student.uses_action else None
    device = resolve_device(config.device)
    student.model.to(device)
    diffusion = student.diffusion()  # the training schedule; the sampler picks its steps on it
    request = SampleRequest(lengths=lengths, text_emb=text_emb, action=action)
    share = batch_share(batch_count(len(lengths), config.batch_size), world) if world.distributed else None
    with torch.inference_mode():
        samples = sample_motions(
            student.model, diffusion, student.stats, request, guidance=config.guidance, batch_size=config.batch_size,
            pad_to=student.max_frames, seed=config.seed, device=device, progress=progress, sampler=config.sampler,
            steps=config.sampling_steps or None, batches=share,
            spacing=None if config.spacing == "default" else config.spacing,
        )
    if not world.distributed:
        return samples
    pairs = gather_in_rank_order(list(zip(samples.features, samples.joints, strict=True)), world)
    if pairs is None:
        return None
    return Samples(features=[f for f, _ in pairs], joints=[j for _, j in pairs])
