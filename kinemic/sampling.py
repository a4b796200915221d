"""Drawing motions from a trained denoiser: batched sampling with classifier-free guidance, ancestral by default.

Used for the teacher's previews, the zero-shot baseline and the student's synthetic dataset alike. The denoiser sees
normalised features; results are de-normalised features plus joints recovered from them.

MDM's length caveat (reference/mdm_kinemic.md section 5): a model trained without a frame mask always saw padded
inputs of its training length, so it is sampled at that padded length and the result cropped; a model with
`mask_frames` is sampled at each motion's own length (padding hidden by the mask).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from kinemic.diffusion import (
    Autoguidance,
    GaussianDiffusion,
    ScheduleSampler,
    classifier_free_guidance,
    run_sampler,
    standard_normal,
)
from kinemic.models.mdm import MDM
from kinemic.motion import FeatureStats, features_to_joints
from kinemic.samplers import make_sampler


@dataclass(frozen=True)
class SampleRequest:
    """What to generate: one entry per motion. `text_emb` rows and `action` ids are optional conditions."""

    lengths: np.ndarray
    text_emb: np.ndarray | None = None
    action: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.lengths)
        if n == 0:
            raise ValueError("nothing to sample: empty lengths")
        if (np.asarray(self.lengths) < 2).any():
            raise ValueError(f"every motion needs at least 2 frames, got lengths {np.unique(self.lengths)[:5]}")
        for name in ("text_emb", "action"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"{name} has {len(value)} rows for {n} requested motions")


@dataclass
class Samples:
    features: list[np.ndarray]  # de-normalised (T_i, 263)
    joints: list[np.ndarray]  # (T_i, 22, 3)


def sample_motions(
    model: MDM,
    diffusion: GaussianDiffusion,
    stats: FeatureStats,
    request: SampleRequest,
    guidance: float = 2.5,
    batch_size: int = 64,
    pad_to: int | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: Callable[[float, int], None] | None = None,
    sampler: str | ScheduleSampler = "ancestral",
    steps: int | None = None,
    batches: Sequence[int] | None = None,
    spacing: str | None = None,
    autoguidance: Autoguidance | None = None,
    guidance_from_step: int = 0,
) -> Samples:
    """Generate `len(request.lengths)` motions, `batch_size` at a time, reproducibly from `seed`.

    `pad_to` is the padded length for models trained without a frame mask (the teacher's training length); it is
    ignored for masked models. Guidance is applied when `guidance != 1`, to the x0 prediction, in one batched pass
    per step whatever the sampler.

    `sampler` is a name ('ancestral' | 'ddim' | 'dpmpp_2m', see `kinemic.samplers.make_sampler`) built on `diffusion`
    with `steps` steps of the model's base schedule (None: every step of `diffusion`, respaced or not), or a sampler
    object already built on the model's schedule (then `steps` must be None: the object carries its own).
    `spacing` (`kinemic.diffusion.SPACINGS`; None: the named sampler's default) picks which `steps` steps.
    `autoguidance` adds guidance by a weaker version of the model (`kinemic.diffusion.Autoguidance`) to the CFG;
    `guidance_from_step` keeps the CFG to base steps t >= it (`kinemic.diffusion.classifier_free_guidance`).

    `batches` (indices of the `batch_size` batches, see `batch_count`) samples only those batches, each exactly as the
    whole request samples it: the generator makes the random draws of the batches left out before them, and nothing
    else (no network, no sampler arithmetic: no sampler's draws depend on the network's output, see `_noise_steps`).
    Processes that each take a share of the batches (kinemic.generation) so give, put together in batch order, the
    bytes of one process doing all of them.
    """
    sampler = _resolve_sampler(sampler, diffusion, steps, spacing)
    device = torch.device(device)
    lengths = np.asarray(request.lengths, dtype=np.int64)
    masked = model.config.mask_frames
    if not masked and pad_to is None:
        pad_to = int(lengths.max())
    if not masked and lengths.max() > pad_to:
        raise ValueError(f"requested length {lengths.max()} exceeds the model's padded length {pad_to}")
    generator = torch.Generator(device="cpu").manual_seed(seed)
    starts = range(0, len(lengths), batch_size)
    wanted = _check_batches(batches, len(starts))
    was_training = model.training
    model.eval()
    features: list[np.ndarray] = []
    total = sum(min(batch_size, len(lengths) - starts[i]) for i in wanted)  # the motions this call samples
    noise_steps = None  # which sampler steps draw noise: found once, if a batch is skipped
    for index, start in enumerate(starts[: max(wanted, default=-1) + 1]):
        sl = slice(start, start + batch_size)
        batch_len = lengths[sl]
        frames = int(batch_len.max()) if masked else int(pad_to)
        if index not in wanted:  # another process samples it: only run through its random draws
            noise_steps = _noise_steps(sampler) if noise_steps is None else noise_steps
            _skip_draws(noise_steps, (len(batch_len), frames, model.config.njoints), generator)
            continue
        mask = torch.arange(frames, device=device)[None, :] < torch.from_numpy(batch_len).to(device)[:, None]
        text = None if request.text_emb is None else torch.as_tensor(request.text_emb[sl], dtype=torch.float32)
        action = None if request.action is None else torch.as_tensor(request.action[sl], dtype=torch.long)
        model_fn = classifier_free_guidance(
            model,
            guidance,
            text_emb=None if text is None else text.to(device),
            action=None if action is None else action.to(device),
            mask=mask,
            autoguidance=autoguidance,
            guidance_from_step=guidance_from_step,
        )
        step_progress = None
        if progress is not None:  # fractional samples after every denoising step: a batch takes minutes on a CPU
            def step_progress(done: int, of: int, start: int = len(features), size: int = len(batch_len)) -> None:
                progress(start + size * done / of, total)
        x = run_sampler(sampler, model_fn, (len(batch_len), frames, model.config.njoints), generator, device=device,
                        progress=step_progress)
        x = stats.denormalize(x.float().cpu().numpy())
        features += [x[i, :n].astype(np.float32) for i, n in enumerate(batch_len)]
    model.train(was_training)
    return Samples(features=features, joints=[features_to_joints(f) for f in features])


def batch_count(motions: int, batch_size: int) -> int:
    """How many batches `sample_motions` splits `motions` motions into (the last one may be smaller)."""
    return -(-motions // batch_size)


def _check_batches(batches: Sequence[int] | None, count: int) -> list[int]:
    """The batch indices to sample: all of them by default; else the given ones, which must be increasing and exist."""
    if batches is None:
        return list(range(count))
    wanted = [int(i) for i in batches]
    if any(b <= a for a, b in zip(wanted, wanted[1:], strict=False)) or any(not 0 <= i < count for i in wanted):
        raise ValueError(f"batches must be increasing indices below the number of batches ({count}), got {wanted}")
    return wanted


def _noise_steps(sampler: ScheduleSampler) -> list[bool]:
    """Whether each step of a `run_sampler` run draws noise from the generator.

    A sampler step draws nothing or one standard normal tensor of x's shape, whatever the network predicted (the
    samplers' contract: ancestral always, DDIM when eta > 0, DPM-Solver++ never). Each step of a copy of `sampler`
    (a sampler may keep state between steps) runs on a 1-element x with a generator of its own, which is then
    compared with one standard normal draw: a step that draws anything else breaks the contract and raises.
    """
    probe = copy.deepcopy(sampler)
    generator = torch.Generator(device="cpu").manual_seed(0)
    x = torch.zeros(1, 1, 1)
    draws = []
    for t_index in range(len(probe.timesteps)):
        before = generator.get_state()
        x = probe.step(torch.zeros_like(x), t_index, x, generator=generator)
        drew = not torch.equal(generator.get_state(), before)
        if drew:
            one_draw = torch.Generator(device="cpu")
            one_draw.set_state(before)
            standard_normal(x.shape, one_draw, "cpu", torch.float32)
            if not torch.equal(one_draw.get_state(), generator.get_state()):
                raise RuntimeError(f"{sampler!r} step {t_index} draws other than one standard normal tensor of x's "
                                   "shape: skipping batches (sample_motions' batches) cannot reproduce its draws")
        draws.append(drew)
    return draws


def _skip_draws(noise_steps: Sequence[bool], shape: tuple[int, ...], generator: torch.Generator) -> None:
    """Advance `generator` past one batch's draws, as `run_sampler` makes them on CPU: the initial noise, then one
    standard normal tensor of `shape` per step that draws noise. Only the draws: no network, no sampler arithmetic."""
    noise = torch.empty(shape, dtype=torch.float32)
    for _ in range(1 + sum(noise_steps)):
        noise.normal_(generator=generator)  # what torch.randn(shape, generator=generator) draws


def _resolve_sampler(
    sampler: str | ScheduleSampler, diffusion: GaussianDiffusion, steps: int | None, spacing: str | None = None
) -> ScheduleSampler:
    if isinstance(sampler, str):
        return make_sampler(sampler, diffusion, steps, spacing=spacing)
    if not isinstance(sampler, ScheduleSampler):
        raise ValueError(f"sampler must be a sampler name or a ScheduleSampler, got {type(sampler).__name__}")
    if steps is not None or spacing is not None:
        raise ValueError(f"steps={steps!r} / spacing={spacing!r} given with a sampler object; it carries its own "
                         f"(call its set_timesteps, or pass a sampler name)")
    own = sampler.diffusion
    if (own.base_steps, own.schedule) != (diffusion.base_steps, diffusion.schedule):
        raise ValueError(f"sampler {sampler!r} is built on another schedule than the model's {diffusion!r}")
    return sampler


def lengths_like(reference: Sequence[int], count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` lengths drawn (with replacement) from a reference length distribution, e.g. the few-shot set's."""
    reference = np.asarray(reference, dtype=np.int64)
    if len(reference) == 0:
        raise ValueError("cannot draw lengths from an empty reference set")
    return rng.choice(reference, size=count, replace=True)
