"""The teacher report card: does "kicks sideways" produce a side kick, at the speed of a real one?

KineMIC assumes the frozen teacher already knows the target actions; the card measures how far that holds on the
embedded prior, whose `primitives.parquet` says what every motion contains. For each primitive, prompts are written
from the same caption templates the prior's captions come from, the teacher samples one motion per prompt, and a
recogniser trained on real prior segments (`kinemic.recogniser`) judges the samples, as HumanML3D's evaluator judges
text-to-motion models:

* recognition: the fraction of samples recognised as their prompt's primitive; top-3 (the counterpart of HumanML3D's
  R-precision for a labelled prior); the recogniser's own held-out accuracy beside them is the ceiling;
* dynamics: mean joint speed and acceleration (`kinemic.metrics.motion_dynamics`) of each primitive's samples over
  those of its real segments; a static teacher has speed ratios far below 1, a jittery one acceleration ratios far
  above; `primitives_within` counts the primitives whose two ratios both lie within the tolerance (default +-30 %),
  with a bootstrap range over the samples and real segments (`dynamics_spread`: ten samples per primitive make a
  verdict near the edge a coin toss); and the share of samples frozen (under a quarter of the real speed): a
  primitive can fail by freezing most samples, as the released teacher's arm circles do, or by moving every one
  too slowly, as its torso twists do;
* FID and diversity in the recogniser's embedding, against a class-balanced set of held-out real segments.

`TeacherCard.to_metrics` gives flat keys (`card.recognition`, `card.speed_ratio.side_kick`, ...) so `dvc metrics diff`
compares teachers. A prior without labels (real HumanML3D) raises `kinemic.recogniser.UnlabelledPrior` in
`prepare_card`, whose message says why the card is skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from kinemic import metrics  # noqa: E402
from kinemic.corpus import PreparedPrior  # noqa: E402
from kinemic.diffusion import SPACINGS, Autoguidance  # noqa: E402
from kinemic.frozen import frozen_share, per_motion_dynamics  # noqa: E402
from kinemic.motion import features_to_joints  # noqa: E402
from kinemic.recogniser import (  # noqa: E402
    LabelledSegments,
    Recogniser,
    RecogniserConfig,
    labelled_segments,
    read_primitives,
    train_recogniser,
)
from kinemic.samplers import SAMPLERS  # noqa: E402
from kinemic.sampling import SampleRequest, sample_motions  # noqa: E402
from kinemic.synthetic import captions as cap  # noqa: E402
from kinemic.synthetic.primitives import sample as sample_params  # noqa: E402
from kinemic.teacher import TeacherCheckpoint  # noqa: E402

log = logging.getLogger(__name__)

PREFIX = "card"
TextEmbedder = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class CardConfig:
    """How a teacher is scored. The defaults take ~40 s of sampling for the embedded teacher on 2 cores."""

    samples_per_primitive: int = 10  # one prompt (and one sample) each
    sampling_steps: int = 50  # reverse steps; 0 = all of the teacher's diffusion steps
    sampler: str = "ancestral"  # ancestral | ddim | dpmpp_2m (kinemic.samplers): the card of a fast sampler
    spacing: str = "default"  # which sampling_steps steps: official | trailing | high_noise; default: the sampler's
    guidance: float = 2.5
    guidance_from_step: int = 0  # classifier-free guidance only at base steps t >= this; below, the cond. alone
    guide_weight: float = 1.0  # autoguidance by a weaker teacher (teacher_card's `guide`); 1 = off
    guide_from_step: int = 0  # autoguidance only at base steps t >= this (the top of the schedule)
    real_per_primitive: int = 30  # held-out real segments per primitive: the FID and dynamics reference
    min_frames: int = 16  # shortest sample requested (lengths follow the primitive's real segments)
    length: int = 0  # N > 0: every sample N frames (overrides min_frames), the same prompts (freezing grows with N)
    tolerance: float = 0.3  # dynamics within +-30 % of the real segments count as right
    batch_size: int = 64
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("samples_per_primitive", "real_per_primitive", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"card.{name} must be >= 1, got {getattr(self, name)}")
        if self.sampling_steps < 0:
            raise ValueError(f"card.sampling_steps must be >= 0 (0 = all steps), got {self.sampling_steps}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"card.sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if self.spacing not in ("default", *SPACINGS):
            raise ValueError(f"card.spacing must be 'default' or one of {SPACINGS}, got {self.spacing!r}")
        if self.length and self.length < 3:
            raise ValueError(f"card.length must be 0 (the real segments' lengths) or >= 3, got {self.length}")
        if self.min_frames < 3:
            raise ValueError(f"card.min_frames must be >= 3 (acceleration needs 3 frames), got {self.min_frames}")
        if self.guide_weight < 1.0 or self.guide_from_step < 0:
            raise ValueError(f"card.guide_weight must be >= 1 and card.guide_from_step >= 0, got "
                             f"{self.guide_weight} and {self.guide_from_step}")
        if self.guidance_from_step < 0:
            raise ValueError(f"card.guidance_from_step must be >= 0 (0 = guidance at every step), got "
                             f"{self.guidance_from_step}")
        if not 0.0 < self.tolerance < 1.0:
            raise ValueError(f"card.tolerance must lie in (0, 1), got {self.tolerance}")


@dataclass(frozen=True)
class PrimitiveScore:
    """One primitive's row of the card."""

    primitive: str
    samples: int
    recognition: float
    top3: float
    speed: float
    speed_real: float
    acceleration: float
    acceleration_real: float
    frozen_share: float = float("nan")  # of the samples, those frozen (kinemic.frozen)
    within_share: float = float("nan")  # of the bootstrap resamples (`dynamics_spread`), those within the tolerance
    speed_ratio_range: tuple[float, float] = (float("nan"), float("nan"))  # 95 % bootstrap range
    acceleration_ratio_range: tuple[float, float] = (float("nan"), float("nan"))

    @property
    def speed_ratio(self) -> float:
        return self.speed / self.speed_real

    @property
    def acceleration_ratio(self) -> float:
        return self.acceleration / self.acceleration_real

    def within(self, tolerance: float) -> bool:
        return abs(self.speed_ratio - 1) <= tolerance and abs(self.acceleration_ratio - 1) <= tolerance


@dataclass(frozen=True)
class TeacherCard:
    primitives: tuple[PrimitiveScore, ...]
    recognition: float
    top3: float
    fid: float
    diversity: float
    diversity_real: float
    recogniser_heldout: float
    tolerance: float
    within_interval: tuple[float, float] = (float("nan"), float("nan"))  # 95 % bootstrap range of primitives_within
    frozen_share: float = float("nan")  # of all samples, those frozen (PrimitiveScore.frozen_share)
    seconds: float = float("nan")

    @property
    def primitives_within(self) -> int:
        return sum(p.within(self.tolerance) for p in self.primitives)

    def to_metrics(self) -> dict[str, float | int]:
        """Flat keys for a `metrics:` JSON; per-primitive keys end in the primitive's name."""
        pct = int(round(100 * self.tolerance))
        out: dict[str, float | int] = {
            f"{PREFIX}.recognition": self.recognition,
            f"{PREFIX}.top3": self.top3,
            f"{PREFIX}.recogniser_heldout": self.recogniser_heldout,
            f"{PREFIX}.primitives_within_{pct}pct": self.primitives_within,
            f"{PREFIX}.primitives_within_{pct}pct_ci_low": self.within_interval[0],
            f"{PREFIX}.primitives_within_{pct}pct_ci_high": self.within_interval[1],
            f"{PREFIX}.primitives": len(self.primitives),
            f"{PREFIX}.frozen_share": self.frozen_share,
            f"{PREFIX}.fid": self.fid,
            f"{PREFIX}.diversity": self.diversity,
            f"{PREFIX}.diversity_real": self.diversity_real,
            f"{PREFIX}.speed": float(np.mean([p.speed for p in self.primitives])),
            f"{PREFIX}.speed_real": float(np.mean([p.speed_real for p in self.primitives])),
            f"{PREFIX}.acceleration": float(np.mean([p.acceleration for p in self.primitives])),
            f"{PREFIX}.acceleration_real": float(np.mean([p.acceleration_real for p in self.primitives])),
        }
        for p in self.primitives:
            out[f"{PREFIX}.recognised.{p.primitive}"] = p.recognition
            out[f"{PREFIX}.speed_ratio.{p.primitive}"] = p.speed_ratio
            out[f"{PREFIX}.acceleration_ratio.{p.primitive}"] = p.acceleration_ratio
            out[f"{PREFIX}.within_share.{p.primitive}"] = p.within_share
            out[f"{PREFIX}.frozen_share.{p.primitive}"] = p.frozen_share
        return out

    def table(self) -> str:
        """The card as a Markdown table, one row per primitive, the overall numbers below."""
        lines = ["| primitive | recognised | top-3 | speed m/s (real) | acceleration m/s2 (real) | frozen | within "
                 "(share of resamples) |", "|---|---|---|---|---|---|---|"]
        for p in self.primitives:
            lines.append(f"| {p.primitive} | {100 * p.recognition:.0f}% | {100 * p.top3:.0f}% | {p.speed:.2f} "
                         f"({p.speed_real:.2f}) | {p.acceleration:.1f} ({p.acceleration_real:.1f}) | "
                         f"{100 * p.frozen_share:.0f}% | "
                         f"{'yes' if p.within(self.tolerance) else 'no'} ({100 * p.within_share:.0f}%) |")
        low, high = self.within_interval
        lines.append("")
        lines.append(f"recognition {100 * self.recognition:.1f}% (top-3 {100 * self.top3:.1f}%; recogniser held-out "
                     f"{100 * self.recogniser_heldout:.1f}%), dynamics within +-{100 * self.tolerance:.0f}% for "
                     f"{self.primitives_within}/{len(self.primitives)} primitives (95% bootstrap range {low:.0f}-"
                     f"{high:.0f}), {100 * self.frozen_share:.0f}% of samples frozen, FID {self.fid:.2f}, diversity "
                     f"{self.diversity:.2f} (real {self.diversity_real:.2f})")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------------------
# inputs: the recogniser and the real reference
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CardInputs:
    """What a card needs besides the teacher: the trained recogniser and held-out real segments it never saw."""

    recogniser: Recogniser
    reference: LabelledSegments


def prepare_card(prior: PreparedPrior, primitives_path: str | Path, config: RecogniserConfig | None = None,
                 recogniser: Recogniser | None = None) -> CardInputs:
    """Cut the labelled segments, split them by motion, train the recogniser (~10 s at the embedded size).

    A saved `recogniser` is reused instead of training one when its config and classes match (the held-out split is
    rebuilt from the config's seed and fraction). Raises `UnlabelledPrior` when `primitives_path` does not exist (a
    real HumanML3D prior): catch it and skip the card.
    """
    config = config or RecogniserConfig()
    segments = labelled_segments(prior, read_primitives(primitives_path), config.min_frames)
    train, heldout = segments.split_by_motion(config.heldout_fraction, config.seed)
    if recogniser is not None:
        if recogniser.config != config or recogniser.classes != segments.classes:
            raise ValueError("the saved recogniser was trained with another config or class list: train a new one")
        return CardInputs(recogniser, heldout)
    return CardInputs(train_recogniser(train, heldout, prior.stats, config), heldout)


def balanced_reference(reference: LabelledSegments, per_class: int, seed: int) -> LabelledSegments:
    """At most `per_class` segments of every class, drawn without replacement (seeded), so that FID compares
    class-balanced sets (the samples are balanced; the prior has six times more idle segments than kicks)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 3]))
    keep = np.zeros(len(reference), dtype=bool)
    for label in np.unique(reference.labels):
        members = np.flatnonzero(reference.labels == label)
        keep[rng.choice(members, size=min(per_class, len(members)), replace=False)] = True
    return reference.select(keep)


# --------------------------------------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------------------------------------


def score_samples(recogniser: Recogniser, samples: Sequence[np.ndarray], labels: np.ndarray,
                  reference: LabelledSegments, tolerance: float = 0.3, seed: int = 0) -> TeacherCard:
    """The card of generated feature motions `samples` (T_i, 263) prompted as `labels` (class ids of the recogniser).

    `reference` holds the real segments to compare with (every prompted class needs at least one). Pure: no model but
    the recogniser, so it can be checked on real motions used as samples (recognition = the recogniser's accuracy on
    them, FID ~ 0 on the reference itself).
    """
    labels = np.asarray(labels, dtype=np.int64)
    if len(samples) != len(labels) or len(samples) < 2:
        raise ValueError(f"need >= 2 samples with one label each, got {len(samples)} samples, {len(labels)} labels")
    if reference.classes != recogniser.classes:
        raise ValueError("the reference segments and the recogniser have different class lists")
    missing = sorted(set(labels.tolist()) - set(reference.labels.tolist()))
    if missing:
        raise ValueError(f"no real reference segment for prompted classes {[recogniser.classes[i] for i in missing]}")
    probabilities = recogniser.probabilities(samples)  # (N, C)
    top3 = np.argsort(-probabilities, axis=1)[:, :3]
    hit1 = top3[:, 0] == labels
    hit3 = (top3 == labels[:, None]).any(axis=1)
    joints = [features_to_joints(np.asarray(s, dtype=np.float32)) for s in samples]
    real_joints = [features_to_joints(f) for f in reference.features]
    rows, dynamics = [], []
    for label in np.unique(labels):
        mine = labels == label
        generated = per_motion_dynamics([joints[i] for i in np.flatnonzero(mine)])
        real = per_motion_dynamics([real_joints[i] for i in np.flatnonzero(reference.labels == label)])
        dynamics.append((generated, real))
        rows.append(PrimitiveScore(
            primitive=recogniser.classes[label], samples=int(mine.sum()), recognition=float(hit1[mine].mean()),
            top3=float(hit3[mine].mean()), speed=float(generated[:, 0].mean()), speed_real=float(real[:, 0].mean()),
            acceleration=float(generated[:, 1].mean()), acceleration_real=float(real[:, 1].mean()),
            frozen_share=frozen_share(generated[:, 0], real[:, 0]),
        ))
    spread = dynamics_spread(dynamics, tolerance, seed)
    rows = [replace(row, within_share=share, speed_ratio_range=speed, acceleration_ratio_range=acceleration)
            for row, share, speed, acceleration in zip(rows, spread.within_shares, spread.speed_ratio_ranges,
                                                       spread.acceleration_ratio_ranges, strict=True)]
    fake_emb, real_emb = recogniser.embed(samples), recogniser.embed(reference.features)
    return TeacherCard(
        primitives=tuple(rows),
        within_interval=spread.count_range,
        frozen_share=float(sum(row.frozen_share * row.samples for row in rows) / len(labels)),
        recognition=float(hit1.mean()),
        top3=float(hit3.mean()),
        fid=max(metrics.fid(real_emb, fake_emb), 0.0),  # round-off makes identical sets come out at -1e-12
        diversity=metrics.diversity(fake_emb, rng=seed),
        diversity_real=metrics.diversity(real_emb, rng=seed),
        recogniser_heldout=recogniser.heldout_accuracy,
        tolerance=tolerance,
    )


@dataclass(frozen=True)
class DynamicsSpread:
    """What `dynamics_spread` finds: per primitive, the share of resamples within and the ratios' ranges; overall,
    the range of the count within."""

    within_shares: tuple[float, ...]
    speed_ratio_ranges: tuple[tuple[float, float], ...]
    acceleration_ratio_ranges: tuple[tuple[float, float], ...]
    count_range: tuple[float, float]


def dynamics_spread(dynamics: Sequence[tuple[np.ndarray, np.ndarray]], tolerance: float, seed: int = 0,
                    resamples: int = 2000, confidence: float = 0.95) -> DynamicsSpread:
    """How sure the dynamics verdicts are, by the bootstrap.

    `dynamics[p]` is primitive p's (generated, real) per-motion (speed, acceleration) arrays (`per_motion_dynamics`).
    One resample redraws, with replacement, the generated samples and the real segments of every primitive, and
    recomputes the ratios of their means. Ten samples per primitive make a verdict near the +-tolerance edge a coin
    toss; this says which ones are (the card's count moved by 4 between card seeds of one teacher).
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    tail = 100 * (1 - confidence) / 2
    within = np.zeros((resamples, len(dynamics)), dtype=bool)
    ranges = []
    for p, (generated, real) in enumerate(dynamics):
        picked = generated[rng.integers(0, len(generated), size=(resamples, len(generated)))].mean(axis=1)
        reference = real[rng.integers(0, len(real), size=(resamples, len(real)))].mean(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = picked / reference  # (R, 2): speed and acceleration ratios
        within[:, p] = (np.abs(ratio - 1) <= tolerance).all(axis=1)
        ranges.append(np.percentile(ratio, [tail, 100 - tail], axis=0).T)  # (2, 2): per ratio, (low, high)
    counts = within.sum(axis=1)
    low, high = np.percentile(counts, tail, method="lower"), np.percentile(counts, 100 - tail, method="higher")
    return DynamicsSpread(
        within_shares=tuple(within.mean(axis=0).tolist()),
        speed_ratio_ranges=tuple((float(r[0, 0]), float(r[0, 1])) for r in ranges),
        acceleration_ratio_ranges=tuple((float(r[1, 0]), float(r[1, 1])) for r in ranges),
        count_range=(float(low), float(high)),
    )


def primitive_prompts(primitive: str, count: int, rng: np.random.Generator) -> list[str]:
    """`count` captions of one instance of `primitive` each, from the templates the prior's captions come from."""
    prompts = []
    for _ in range(count):
        phrase = cap.phrase(primitive, sample_params(primitive, rng), rng)
        prompts.append(cap.sequence_caption(cap.pick(rng, cap.SUBJECTS), [phrase], rng))
    return prompts


@dataclass(frozen=True)
class CardRequest:
    """What a card asks the teacher: one prompt, recogniser class and length per sample."""

    prompts: list[str]
    labels: np.ndarray
    lengths: np.ndarray


def card_request(inputs: CardInputs, config: CardConfig, max_frames: int) -> CardRequest:
    """`config.samples_per_primitive` prompts per primitive with a held-out real segment; lengths follow that
    primitive's segments, clipped to [min_frames, max_frames], or are all `config.length` (which overrides min_frames).
    The prompts depend on the seed alone, so a fixed-length card asks the same prompts as the default one."""
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 1]))
    prompts, labels, lengths = [], [], []
    for label, primitive in enumerate(inputs.recogniser.classes):
        real_lengths = [len(f) for f, y in zip(inputs.reference.features, inputs.reference.labels, strict=True)
                        if y == label]
        if not real_lengths:
            log.warning("teacher card: no held-out real segment of %s; it is left out", primitive)
            continue
        prompts += primitive_prompts(primitive, config.samples_per_primitive, rng)
        labels += [label] * config.samples_per_primitive
        lengths += rng.choice(real_lengths, size=config.samples_per_primitive).tolist()
    lengths_arr = np.clip(np.array(lengths), config.min_frames, max(config.min_frames, max_frames))
    if config.length:
        if config.length > max_frames:
            raise ValueError(f"card.length {config.length} is longer than the teacher's {max_frames} frames")
        lengths_arr = np.full(len(lengths_arr), config.length)
    return CardRequest(prompts, np.array(labels, dtype=np.int64), lengths_arr)


def check_guide(teacher: TeacherCheckpoint, guide: TeacherCheckpoint) -> None:
    """Refuse a guide that does not denoise the teacher's own space: autoguidance subtracts the two models' x0
    predictions, which only means something for the same features, statistics, schedule and text condition."""
    problems = []
    if guide.text_encoder != teacher.text_encoder:
        problems.append(f"text encoder {guide.text_encoder} against the teacher's {teacher.text_encoder}")
    if (guide.diffusion_steps, guide.noise_schedule) != (teacher.diffusion_steps, teacher.noise_schedule):
        problems.append(f"schedule {guide.diffusion_steps} x {guide.noise_schedule} against the teacher's "
                        f"{teacher.diffusion_steps} x {teacher.noise_schedule}")
    for name in ("njoints", "text_dim", "num_actions", "mask_frames"):
        if getattr(guide.model.config, name) != getattr(teacher.model.config, name):
            problems.append(f"model.{name} {getattr(guide.model.config, name)} against the teacher's "
                            f"{getattr(teacher.model.config, name)}")
    if not (np.allclose(guide.stats.mean, teacher.stats.mean, rtol=1e-5, atol=1e-6)
            and np.allclose(guide.stats.std, teacher.stats.std, rtol=1e-5, atol=1e-6)):
        problems.append("feature statistics differ (trained on another prior)")
    if problems:
        raise ValueError("the autoguidance guide is not a weaker version of this teacher: " + "; ".join(problems)
                         + ". Guide with an earlier snapshot of the same lineage, e.g. the first release: "
                         "git show 92147cb:releases/teacher/teacher.pt > guide.pt")


def teacher_card(teacher: TeacherCheckpoint, embed: TextEmbedder, inputs: CardInputs,
                 config: CardConfig | None = None,
                 progress: Callable[[float, int], None] | None = None,
                 guide: TeacherCheckpoint | None = None) -> TeacherCard:
    """Prompt the teacher for every primitive the recogniser knows (`card_request`), sample, and score (see the
    module docstring). The same teacher, inputs and config give the same card. `guide`, a weaker teacher of the
    same lineage, autoguides the sampling with `config.guide_weight` from `config.guide_from_step` up.
    """
    config = config or CardConfig()
    if (guide is None) != (config.guide_weight == 1.0):
        raise ValueError("card.guide_weight != 1 needs a guide checkpoint, and a guide needs card.guide_weight != 1")
    autoguidance = None
    if guide is not None:
        check_guide(teacher, guide)
        guide.model.to(config.device).eval()
        autoguidance = Autoguidance(guide.model, config.guide_weight, config.guide_from_step)
    start = time.perf_counter()
    recogniser = inputs.recogniser
    reference = balanced_reference(inputs.reference, config.real_per_primitive, config.seed)
    asked = card_request(inputs, config, teacher.max_frames)
    request = SampleRequest(lengths=asked.lengths, text_emb=np.asarray(embed(asked.prompts), dtype=np.float32))
    steps = config.sampling_steps or None
    spacing = None if config.spacing == "default" else config.spacing
    if config.sampler == "ancestral" and spacing in (None, "official"):  # the official respacing, as ever scored
        diffusion, sampler_steps, spacing = teacher.diffusion(steps), None, None
    else:  # the sampler picks its steps on the training schedule
        diffusion, sampler_steps = teacher.diffusion(), steps
    with torch.inference_mode():
        samples = sample_motions(teacher.model, diffusion, teacher.stats, request, guidance=config.guidance,
                                 batch_size=config.batch_size, pad_to=teacher.max_frames, seed=config.seed,
                                 device=config.device, progress=progress, sampler=config.sampler,
                                 steps=sampler_steps, spacing=spacing, autoguidance=autoguidance,
                                 guidance_from_step=config.guidance_from_step)
    card = score_samples(recogniser, samples.features, asked.labels, reference, config.tolerance, config.seed)
    card = replace(card, seconds=time.perf_counter() - start)
    log.info("teacher card: recognition %.3f, top-3 %.3f, %d/%d primitives within tolerance, %.1f s",
             card.recognition, card.top3, card.primitives_within, len(card.primitives), card.seconds)
    return card


# --------------------------------------------------------------------------------------------------------------------
# plot
# --------------------------------------------------------------------------------------------------------------------

TSV_COLUMNS = ("primitive", "recognition", "top3", "speed", "speed_real", "acceleration", "acceleration_real",
               "speed_ratio", "acceleration_ratio", "within_share", "frozen_share", "speed_ratio_low",
               "speed_ratio_high", "acceleration_ratio_low", "acceleration_ratio_high")


def write_card_plot(card: TeacherCard, tsv: Path, png: Path, title: str = "teacher report card") -> None:
    """Per-primitive bars: recognition and top-3 (%), then speed and acceleration over the real segments' values with
    their bootstrap ranges."""
    tsv, png = Path(tsv), Path(png)
    tsv.parent.mkdir(parents=True, exist_ok=True)
    png.parent.mkdir(parents=True, exist_ok=True)
    rows = ["\t".join(TSV_COLUMNS)]
    for p in card.primitives:
        values = (p.recognition, p.top3, p.speed, p.speed_real, p.acceleration, p.acceleration_real, p.speed_ratio,
                  p.acceleration_ratio, p.within_share, p.frozen_share, *p.speed_ratio_range,
                  *p.acceleration_ratio_range)
        rows.append(p.primitive + "".join(f"\t{v:.6f}" for v in values))
    tsv.write_text("\n".join(rows) + "\n")

    names = [p.primitive for p in card.primitives]
    x = np.arange(len(names))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(6.0, 0.45 * len(names) + 2), 6), dpi=100, sharex=True)
    top.bar(x - 0.2, [100 * p.recognition for p in card.primitives], 0.4, label="recognised", color="#4c72b0")
    top.bar(x + 0.2, [100 * p.top3 for p in card.primitives], 0.4, label="top-3", color="#a1c9f4")
    top.axhline(100 * card.recogniser_heldout, color="#55a868", linestyle="--", linewidth=1,
                label=f"recogniser held-out {100 * card.recogniser_heldout:.0f}%")
    top.set_ylim(0, 125)  # headroom for the legend
    top.set_yticks([0, 20, 40, 60, 80, 100])
    top.set_ylabel("samples (%)")
    low, high = card.within_interval
    top.set_title(f"{title}: recognition {100 * card.recognition:.0f}%, {card.primitives_within}/{len(names)} "
                  f"primitives within +-{100 * card.tolerance:.0f}% (95% range {low:.0f}-{high:.0f})", fontsize=9)
    top.legend(fontsize=7, loc="upper right", ncol=3)
    bottom.axhspan(1 - card.tolerance, 1 + card.tolerance, color="#dddddd", zorder=0)
    clip = (1e-2, 1e2)  # a static teacher's ratio can be ~0: keep every bar on the log axis
    for offset, name, label, color in ((-0.2, "speed", "speed / real", "#dd8452"),
                                       (0.2, "acceleration", "acceleration / real", "#c44e52")):
        ratio = np.clip([getattr(p, f"{name}_ratio") for p in card.primitives], *clip)
        ranges = np.clip([getattr(p, f"{name}_ratio_range") for p in card.primitives], *clip)  # (P, 2)
        errors = np.clip([ratio - ranges[:, 0], ranges[:, 1] - ratio], 0, None)  # the bootstrap range (NaN: none)
        bottom.bar(x + offset, ratio, 0.4, yerr=errors, label=label, color=color,
                   error_kw={"elinewidth": 0.8, "capsize": 1.5})
    bottom.axhline(1.0, color="black", linewidth=0.8)
    bottom.set_yscale("log")
    bottom.set_ylabel("generated / real")
    bottom.legend(fontsize=7, loc="upper right", ncol=2)
    bottom.set_xticks(x, names, rotation=60, ha="right", fontsize=8)
    fig.tight_layout()
    fig.savefig(png, metadata={"Software": None})
    plt.close(fig)
