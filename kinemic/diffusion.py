"""Gaussian diffusion with x0 prediction, as MDM trains and samples it (Ho et al. 2020; Nichol & Dhariwal 2021).

A small object that imports no model and no dataset: it holds the noise schedule, noises data (`q_sample`), takes one
ancestral step from a given x0 prediction (`p_sample`), and offers a sampling loop and classifier-free guidance for
callers that do not want to write their own. The caller owns the network and may own the loop.

Sampling is split the same way: a sampler object (`AncestralSampler` here, DDIM and DPM-Solver++ in
`kinemic.samplers`) picks the steps of the model's schedule to visit (`set_timesteps`, `timesteps`) and turns an x0
prediction into the next, less noisy sample (`step`); `run_sampler` is the one loop that drives any of them.

Faithful to the official MDM configuration (`create_gaussian_diffusion`): cosine schedule, predict x0 (START_X),
FIXED_SMALL variance (the posterior variance, log clipped at step 0), no timestep rescaling, and the official
`SpacedDiffusion` construction even without respacing (betas re-derived from the kept alphas_cumprod). The schedule is
float64 numpy, and, as in the official `_extract_into_tensor`, it is cast to float32 before it multiplies tensors.

Timesteps: `t` arguments index THIS object's schedule (0..num_timesteps-1). A respaced object keeps K of the base
schedule's steps; the model was trained on the base indices, so it must be called with `model_timesteps(t)` (the
`timestep_map`). `sample_loop` does this for you.

Shapes: motions are batch-first (B, T, J) in kinemic, but every operation here is elementwise with a per-sample step, so
any (B, ...) layout works.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np
import torch
from torch import Tensor

log = logging.getLogger(__name__)

SCHEDULES = ("cosine", "linear")

ModelFn = Callable[[Tensor, Tensor], Tensor]
"""`model_fn(x_t, model_t) -> x0 prediction`, both batch-first; model_t are base-schedule steps."""


def cosine_beta_schedule(steps: int, max_beta: float = 0.999) -> np.ndarray:
    """Betas whose alpha_bar follows cos^2 (Nichol & Dhariwal 2021, eq. 17, s = 0.008), capped at `max_beta`.

    Evaluated with scalar `math.cos` in the official order of operations: the first betas (~4e-5 for 1000 steps) come
    from 1 - a ratio close to 1, so a last-ulp difference would show at the 1e-12 relative level.
    """
    _require_steps(steps)

    def alpha_bar(fraction: float) -> float:
        return math.cos((fraction + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = [min(1 - alpha_bar((i + 1) / steps) / alpha_bar(i / steps), max_beta) for i in range(steps)]
    return np.array(betas, dtype=np.float64)


def linear_beta_schedule(steps: int) -> np.ndarray:
    """The DDPM linear schedule (1e-4 .. 0.02 for 1000 steps), scaled so that other step counts keep its shape."""
    _require_steps(steps)
    scale = 1000 / steps
    return np.linspace(scale * 0.0001, scale * 0.02, steps, dtype=np.float64)


def named_beta_schedule(name: str, steps: int) -> np.ndarray:
    if name == "cosine":
        return cosine_beta_schedule(steps)
    if name == "linear":
        return linear_beta_schedule(steps)
    raise ValueError(f"unknown noise schedule {name!r}; valid schedules are {SCHEDULES}")


def space_timesteps(steps: int, count: int) -> list[int]:
    """`count` evenly spaced steps out of `steps`, first and last included (official `space_timesteps(steps, [count])`).

    The stride is accumulated in floating point and rounded with Python's `round`, as the official code does, so the
    kept steps are the same ones.
    """
    _require_steps(steps)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= steps:
        raise ValueError(f"timestep_respacing must be an integer in [1, steps={steps}], got {count!r}")
    stride = (steps - 1) / (count - 1) if count > 1 else 1.0
    kept, position = [], 0.0
    for _ in range(count):
        kept.append(round(position))
        position += stride
    return kept


def trailing_timesteps(steps: int, count: int) -> list[int]:
    """`count` evenly spaced steps out of `steps` that end at the noisiest: round(k * steps / count) - 1, k = 1..count.

    The "trailing" spacing of Lin et al. 2024 (table 2): the last step is always kept and step 0 only when every step
    is, so a sampler's final jump to clean data starts from t ~ steps / count instead of spending a model call on
    step 0. The values are at least 1 apart, so rounding keeps them distinct.
    """
    _require_steps(steps)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= steps:
        raise ValueError(f"count must be an integer in [1, steps={steps}], got {count!r}")
    return [round(k * steps / count) - 1 for k in range(1, count + 1)]


def high_noise_timesteps(steps: int, count: int) -> list[int]:
    """`count` steps out of `steps` that crowd at high noise: round(steps * (1 - (1 - k / count)^2)) - 1, k = 1..count.

    Quadratic in k with zero slope at the noisiest step, so the gaps shrink toward high noise, the reverse of the
    DDIM paper's "quad" spacing (which crowds near the data). The model decides a motion's phase and timing in the
    high-noise band (README, "A fast sampler"), so few-step samplers spend their calls there: at 10 of 100 steps
    [18, 35, 50, 63, 74, 83, 90, 95, 98, 99] against trailing's [9, 19, ..., 99]. Like trailing, the last step is
    always kept and step 0 only when every step is. Where rounding would repeat a step (count close to steps), a step
    moves down to one below the next, so the steps are distinct for every count and all of them at count = steps.
    """
    _require_steps(steps)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= steps:
        raise ValueError(f"count must be an integer in [1, steps={steps}], got {count!r}")
    kept = [steps - 1]
    for k in range(count - 1, 0, -1):  # noisiest first; each value is >= k - 1, so the steps stay >= 0
        kept.append(min(round(steps * (1 - (1 - k / count) ** 2)) - 1, kept[-1] - 1))
    return kept[::-1]


def _require_steps(steps: int) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"diffusion steps must be an integer >= 1, got {steps!r}")


class PosteriorStep(NamedTuple):
    """p(x_{t-1} | x_t) given an x0 prediction: the posterior q(x_{t-1} | x_t, x0_hat) with FIXED_SMALL variance."""

    mean: Tensor
    variance: Tensor
    log_variance: Tensor
    pred_x0: Tensor


class GaussianDiffusion:
    """Cosine (or linear) Gaussian diffusion over `steps` steps, optionally respaced to a subset of them.

    Args:
        steps: length of the base schedule the model is trained on (1000 for the official 2022 model).
        schedule: 'cosine' (MDM) or 'linear'.
        timestep_respacing: None (all steps), an int K (K evenly spaced steps, official semantics), or an explicit
            sequence of base steps to keep.
    """

    def __init__(
        self, steps: int = 1000, schedule: str = "cosine", timestep_respacing: int | Sequence[int] | None = None
    ) -> None:
        base_betas = named_beta_schedule(schedule, steps)
        self.base_steps = steps
        self.schedule = schedule
        kept = _kept_steps(steps, timestep_respacing)
        self.timestep_map = np.array(kept, dtype=np.int64)

        # Official SpacedDiffusion: new betas from the alphas_cumprod of the kept steps (identity when nothing is
        # dropped, but re-derived all the same, which is what the official 1000-step object holds).
        base_alphas_cumprod = np.cumprod(1.0 - base_betas)
        betas, last = [], 1.0
        for step in kept:
            betas.append(1 - base_alphas_cumprod[step] / last)
            last = base_alphas_cumprod[step]
        self._set_schedule(np.array(betas, dtype=np.float64))
        self._device_tables: dict[torch.device, dict[str, Tensor]] = {}

    def _set_schedule(self, betas: np.ndarray) -> None:
        self.betas = betas
        self.num_timesteps = len(betas)
        alphas = 1.0 - betas
        self.alphas_cumprod = np.cumprod(alphas)
        self.alphas_cumprod_prev = np.append(1.0, self.alphas_cumprod[:-1])
        self.sqrt_alphas_cumprod = np.sqrt(self.alphas_cumprod)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - self.alphas_cumprod)
        # Posterior q(x_{t-1} | x_t, x0) (Ho et al. 2020, eqs. 6-7).
        self.posterior_variance = betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        # The variance is 0 at t=0, so the log is clipped to the value at t=1 (only used where t > 0). A one-step
        # schedule has no t=1: its only step draws no noise, and its log variance stays the true log 0 = -inf.
        if self.num_timesteps > 1:
            clipped = np.append(self.posterior_variance[1], self.posterior_variance[1:])
            self.posterior_log_variance_clipped = np.log(clipped)
        else:
            self.posterior_log_variance_clipped = np.full(1, -np.inf)
        self.posterior_mean_coef1 = betas * np.sqrt(self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_mean_coef2 = (1.0 - self.alphas_cumprod_prev) * np.sqrt(alphas) / (1.0 - self.alphas_cumprod)

    def __repr__(self) -> str:
        respaced = "" if self.num_timesteps == self.base_steps else f", respaced to {self.num_timesteps}"
        return f"GaussianDiffusion(steps={self.base_steps}, schedule={self.schedule!r}{respaced})"

    def respaced(self, timesteps: int | Sequence[int]) -> GaussianDiffusion:
        """The same base schedule keeping K evenly spaced steps (int) or the given base steps (sequence)."""
        return GaussianDiffusion(self.base_steps, self.schedule, timesteps)

    # -- tensors ---------------------------------------------------------------------------------------------------

    def _tables(self, device: torch.device) -> dict[str, Tensor]:
        """float32 copies of the schedule on `device`, made once per device (official: float64 -> float32 cast)."""
        device = torch.device(device)
        if device not in self._device_tables:
            names = (
                "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod", "posterior_variance",
                "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
            )
            tables = {name: torch.from_numpy(getattr(self, name)).to(device, torch.float32) for name in names}
            tables["timestep_map"] = torch.from_numpy(self.timestep_map).to(device)
            self._device_tables[device] = tables
        return self._device_tables[device]

    def _extract(self, name: str, t: Tensor, like: Tensor) -> Tensor:
        """Schedule value per sample, shaped (B, 1, ..., 1) to broadcast against `like`."""
        if t.dim() != 1 or t.shape[0] != like.shape[0]:
            raise ValueError(f"t must be a ({like.shape[0]},) tensor of steps, got shape {tuple(t.shape)}")
        values = self._tables(t.device)[name][t]  # (B,)
        return values.view(-1, *([1] * (like.dim() - 1)))  # (B, 1, ..., 1)

    def model_timesteps(self, t: Tensor) -> Tensor:
        """Steps of this schedule -> the base-schedule steps the model was trained on (identity without respacing)."""
        return self._tables(t.device)["timestep_map"][t]

    def sample_timesteps(
        self, batch: int, generator: torch.Generator | None = None, device: torch.device | str | None = None
    ) -> Tensor:
        """(B,) long training steps, uniform over this schedule (official UniformSampler)."""
        draw_device = generator.device if generator is not None else device
        t = torch.randint(0, self.num_timesteps, (batch,), generator=generator, device=draw_device)
        return t.to(device) if device is not None else t

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise (Ho et al. 2020, eq. 4)."""
        if noise.shape != x0.shape:
            raise ValueError(f"noise shape {tuple(noise.shape)} differs from x0 shape {tuple(x0.shape)}")
        return (
            self._extract("sqrt_alphas_cumprod", t, x0) * x0
            + self._extract("sqrt_one_minus_alphas_cumprod", t, x0) * noise
        )

    def p_mean_variance(self, model_x0: Tensor, x_t: Tensor, t: Tensor) -> PosteriorStep:
        """Mean and FIXED_SMALL variance of p(x_{t-1} | x_t) for a given x0 prediction (no clipping, as MDM)."""
        if model_x0.shape != x_t.shape:
            raise ValueError(f"model_x0 shape {tuple(model_x0.shape)} differs from x_t shape {tuple(x_t.shape)}")
        mean = (
            self._extract("posterior_mean_coef1", t, x_t) * model_x0
            + self._extract("posterior_mean_coef2", t, x_t) * x_t
        )
        variance = self._extract("posterior_variance", t, x_t).expand_as(x_t)
        log_variance = self._extract("posterior_log_variance_clipped", t, x_t).expand_as(x_t)
        return PosteriorStep(mean=mean, variance=variance, log_variance=log_variance, pred_x0=model_x0)

    def p_sample(
        self,
        model_x0: Tensor,
        x_t: Tensor,
        t: Tensor,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """One ancestral step x_t -> x_{t-1} from an x0 prediction; samples with t == 0 get no noise.

        `noise` (same shape as x_t) is drawn from `generator` when not given.
        """
        step = self.p_mean_variance(model_x0, x_t, t)
        if noise is None:
            noise = standard_normal(x_t.shape, generator, x_t.device, x_t.dtype)
        nonzero = (t != 0).to(x_t.dtype).view(-1, *([1] * (x_t.dim() - 1)))  # (B, 1, ..., 1)
        return step.mean + nonzero * torch.exp(0.5 * step.log_variance) * noise

    def sample_loop(
        self,
        model_fn: ModelFn,
        shape: Sequence[int],
        generator: torch.Generator | None = None,
        noise: Tensor | None = None,
        device: torch.device | str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Tensor:
        """Ancestral sampling over all steps of this schedule (all base steps, or the respaced subset).

        `run_sampler(AncestralSampler(self), ...)`; see `run_sampler` for the arguments.
        """
        return run_sampler(AncestralSampler(self), model_fn, shape, generator, noise, device, progress)


def _kept_steps(steps: int, respacing: int | Sequence[int] | None) -> list[int]:
    if respacing is None:
        return list(range(steps))
    if isinstance(respacing, int) and not isinstance(respacing, bool):
        return space_timesteps(steps, respacing)
    kept = sorted({int(step) for step in respacing})
    if not kept or len(kept) != len(respacing) or kept[0] < 0 or kept[-1] >= steps:
        raise ValueError(
            f"timestep_respacing must be distinct steps in [0, {steps - 1}], got {list(respacing)}"
        )
    return kept


def standard_normal(shape: Sequence[int], generator: torch.Generator | None, device, dtype: torch.dtype) -> Tensor:
    """Standard normal noise from `generator` (drawn on its device, then moved), or the global RNG."""
    draw_device = generator.device if generator is not None else device
    return torch.randn(tuple(shape), generator=generator, device=draw_device, dtype=dtype).to(device)


# -- samplers -------------------------------------------------------------------------------------------------------


SPACINGS = ("official", "trailing", "high_noise")
_SPACED_STEPS = {"official": space_timesteps, "trailing": trailing_timesteps, "high_noise": high_noise_timesteps}


def sampling_schedule(diffusion: GaussianDiffusion, steps: int | None, spacing: str = "official") -> GaussianDiffusion:
    """The schedule a sampler steps on: `diffusion` itself (`steps=None`), or `steps` steps of its base schedule.

    `steps` counts steps of the schedule the model was trained on (`diffusion.base_steps`), whether or not `diffusion`
    is itself respaced. `spacing` picks them:
    - 'official': `space_timesteps` (first and last included), so `steps=K` visits exactly the steps of
      `GaussianDiffusion(base, schedule, K)`; except that one step keeps the LAST base step, since
      `space_timesteps(base, 1)` keeps step 0, which would read pure noise as an almost clean motion.
    - 'trailing': `trailing_timesteps` (last included, step 0 only when all are kept).
    - 'high_noise': `high_noise_timesteps` (last included, crowded at high noise; the few-step default).
    """
    if spacing not in SPACINGS:
        raise ValueError(f"unknown timestep spacing {spacing!r}; valid spacings are {SPACINGS}")
    if steps is None:
        return diffusion
    base = diffusion.base_steps
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= base:
        raise ValueError(
            f"sampling steps must be an integer in [1, {base}] (steps of the model's {base}-step schedule), "
            f"or None for every step of {diffusion!r}; got {steps!r}"
        )
    if spacing == "official" and steps == 1:
        spacing = "trailing"
    return diffusion.respaced(_SPACED_STEPS[spacing](base, steps))


class ScheduleSampler:
    """Base of the samplers: which steps of the model's schedule a sampling run visits, and one step between them.

    A sampler imports no model: the caller's loop (`run_sampler`, or its own) calls the model at `timesteps[i]` (base
    steps, noisiest first, what the model was trained on) and hands its x0 prediction to `step(x0_pred, i, x_t)`,
    which returns the sample at the next, less noisy step; the step after the last timestep is the clean data.

    Args:
        diffusion: the model's diffusion (any respacing: its base schedule is what counts).
        steps: see `set_timesteps`.
        spacing: how K steps are picked (`SPACINGS`, see `sampling_schedule`); None: the sampler's own default.
    """

    name = "base"
    spacing = "official"  # the default: how `set_timesteps(K)` picks K steps of the base schedule

    def __init__(self, diffusion: GaussianDiffusion, steps: int | None = None, spacing: str | None = None) -> None:
        if spacing is not None:
            if spacing not in SPACINGS:
                raise ValueError(f"unknown timestep spacing {spacing!r}; valid spacings are {SPACINGS}")
            self.spacing = spacing
        self.diffusion = diffusion
        self.set_timesteps(steps)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.diffusion!r}, steps={len(self.timesteps)}, spacing={self.spacing!r})"

    def set_timesteps(self, steps: int | None) -> None:
        """Visit `steps` steps of the base schedule picked by `self.spacing`, or every step of `diffusion`."""
        self.schedule = sampling_schedule(self.diffusion, steps, self.spacing)
        self.timesteps = self.schedule.timestep_map[::-1].copy()  # (K,) base steps, noisiest first

    def _schedule_index(self, t_index: int) -> int:
        """Position in `timesteps` -> index into `self.schedule`'s tables (they run from clean to noisy)."""
        count = len(self.timesteps)
        if isinstance(t_index, bool) or not isinstance(t_index, int | np.integer) or not 0 <= t_index < count:
            raise ValueError(f"t_index must be an integer in [0, {count - 1}] (a position in timesteps), "
                             f"got {t_index!r}")
        return count - 1 - int(t_index)

    def step(
        self,
        x0_pred: Tensor,
        t_index: int,
        x_t: Tensor,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """x at `timesteps[t_index]` and the model's x0 prediction there -> x at the next step (or the clean data).

        `noise` (shape of x_t) is used by stochastic samplers, drawn from `generator` when not given.
        """
        raise NotImplementedError


class AncestralSampler(ScheduleSampler):
    """DDPM ancestral sampling (Ho et al. 2020), as MDM samples: `p_sample` on the visited steps' schedule.

    Draws one noise tensor per step, the last included (where it is multiplied by 0), as the official loop does: the
    generator's stream, and so every result, is the same as before samplers existed.
    """

    name = "ancestral"

    def step(self, x0_pred, t_index, x_t, noise=None, generator=None) -> Tensor:
        index = self._schedule_index(t_index)
        t = torch.full((x_t.shape[0],), index, dtype=torch.long, device=x_t.device)  # (B,)
        if noise is None:
            noise = standard_normal(x_t.shape, generator, x_t.device, x_t.dtype)
        return self.schedule.p_sample(x0_pred, x_t, t, noise=noise)


def run_sampler(
    sampler: ScheduleSampler,
    model_fn: ModelFn,
    shape: Sequence[int],
    generator: torch.Generator | None = None,
    noise: Tensor | None = None,
    device: torch.device | str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Tensor:
    """Sample with any sampler: one `model_fn` call per visited step, then `sampler.step`.

    Args:
        sampler: an `AncestralSampler`, `kinemic.samplers.DDIMSampler`, `DPMSolverPP2M`, ...
        model_fn: `(x_t, model_t) -> x0`, called with base-schedule steps (see `classifier_free_guidance`).
        shape: output shape, e.g. (B, T, J).
        generator: draws the initial noise (unless `noise` is given) and the noise of every stochastic step.
        noise: optional x_T.
        device: where to sample; defaults to the device of `noise`, else of `generator`, else CPU.
        progress: called as `progress(done, total)` after each step.

    Runs under `torch.inference_mode()` and returns a normal tensor (a clone), so the result can feed training.
    """
    if device is None:
        device = noise.device if noise is not None else (generator.device if generator is not None else "cpu")
    shape = tuple(shape)
    total = len(sampler.timesteps)
    with torch.inference_mode():
        if noise is None:
            x = standard_normal(shape, generator, device, torch.float32)
        elif tuple(noise.shape) != shape:
            raise ValueError(f"noise shape {tuple(noise.shape)} differs from the requested shape {shape}")
        else:
            x = noise.to(device)
        for t_index, step in enumerate(sampler.timesteps.tolist()):
            t = torch.full((shape[0],), step, dtype=torch.long, device=x.device)  # (B,) base steps
            x = sampler.step(model_fn(x, t), t_index, x, generator=generator)
            if progress is not None:
                progress(t_index + 1, total)
    return x.clone()


def masked_mse(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """(B,) per-sample MSE over valid frames: sum over valid frames of (pred - target)^2 / (valid_frames * J).

    The official `masked_l2`. `pred`/`target` are (B, T, J), `mask` is (B, T) bool (True = valid) or None for no
    padding. Padded frames are excluded with `where`, so NaN or garbage there cannot leak in. A sample without valid
    frames gives 0 (the official code would divide by zero).
    """
    if pred.shape != target.shape or pred.dim() != 3:
        raise ValueError(f"pred and target must both be (B, T, J), got {tuple(pred.shape)} and {tuple(target.shape)}")
    squared = (pred - target).square()  # (B, T, J)
    if mask is None:
        return squared.mean(dim=(1, 2))
    if mask.shape != pred.shape[:2] or mask.dtype != torch.bool:
        raise ValueError(f"mask must be a {tuple(pred.shape[:2])} bool tensor, got {mask.dtype} {tuple(mask.shape)}")
    total = torch.where(mask.unsqueeze(-1), squared, torch.zeros_like(squared)).sum(dim=(1, 2))  # (B,)
    count = mask.sum(dim=1).to(squared.dtype) * pred.shape[-1]  # (B,)
    return total / count.clamp_min(1)


def masked_velocity_mse(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """(B,) `masked_mse` of the frame-to-frame differences: MDM's velocity term (`lambda_vel`), on the features.

    A difference counts where both of its frames are valid. Against the plain MSE it weighs what a per-frame error
    hides: jitter between neighbouring frames and a motion predicted as a still mean pose.
    """
    return masked_difference_mse(pred, target, mask, order=1)


def masked_acceleration_mse(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """(B,) `masked_mse` of the second differences, on the features: weighs acceleration the real motion does not
    have at the same speed (a high-frequency residue, a pose snapped into instead of eased into), which the velocity
    term weighs less."""
    return masked_difference_mse(pred, target, mask, order=2)


def masked_difference_mse(pred: Tensor, target: Tensor, mask: Tensor | None, order: int) -> Tensor:
    """(B,) `masked_mse` of the `order`-th frame differences; a difference counts where all its frames are valid."""
    if pred.shape != target.shape or pred.dim() != 3:
        raise ValueError(f"pred and target must both be (B, T, J), got {tuple(pred.shape)} and {tuple(target.shape)}")
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    valid = mask
    if valid is not None:
        for _ in range(order):  # a difference of order n spans n + 1 frames
            valid = valid[:, 1:] & valid[:, :-1]
    return masked_mse(pred.diff(n=order, dim=1), target.diff(n=order, dim=1), valid)


class ConditionalDenoiser(Protocol):
    """What `classifier_free_guidance` needs: `kinemic.models.mdm.MDM` satisfies it."""

    training: bool

    def __call__(self, x_t: Tensor, t: Tensor, *, text_emb=None, action=None, uncond=False, mask=None) -> Tensor: ...


@dataclass(frozen=True)
class Autoguidance:
    """Guidance by a weaker version of the same denoiser: autoguidance (Karras et al. 2024, "Guiding a Diffusion
    Model with a Bad Version of Itself").

    The guided x0 prediction gains `(weight - 1) * (cond - guide_cond)`: away from what a less-trained model of the same
    conditioning predicts, where classifier-free guidance pushes away from the unconditional prediction (and towards
    the conditional mean, the held pose of a periodic motion whose phase is not yet chosen). `from_step` applies it
    only at base-schedule steps t >= from_step, the top of the schedule where a sample's phase is picked; below it
    the strong model alone carries the motion (a guidance interval, Kynkaanniemi et al. 2024).
    """

    guide: ConditionalDenoiser
    weight: float = 2.0  # 1 = no autoguidance
    from_step: int = 0

    def __post_init__(self) -> None:
        if self.weight < 1.0:
            raise ValueError(f"autoguidance weight must be >= 1 (1 = off), got {self.weight}")
        if self.from_step < 0:
            raise ValueError(f"autoguidance from_step must be >= 0, got {self.from_step}")


def classifier_free_guidance(
    model: ConditionalDenoiser,
    scale: float | Tensor,
    text_emb: Tensor | None = None,
    action: Tensor | None = None,
    mask: Tensor | None = None,
    autoguidance: Autoguidance | None = None,
    guidance_from_step: int = 0,
) -> ModelFn:
    """Wrap a conditional denoiser into `model_fn(x_t, t)` returning uncond + scale * (cond - uncond).

    Guidance acts on the x0 prediction, as MDM's `ClassifierFreeSampleModel`. Both passes run as ONE forward of batch
    2B (the condition duplicated, `uncond` set per sample on the second half), which halves the number of kernel
    launches and keeps matrix products large. `scale` is a float or a (B,) tensor. `scale == 1` (a float) is the
    conditional prediction alone, computed without the unconditional half. `autoguidance` adds
    `(weight - 1) * (cond - guide's cond)` where it applies (`Autoguidance`; the guide runs only at those steps).

    `guidance_from_step` applies `scale` only at base-schedule steps t >= it; below, the conditional prediction alone
    (the lower end of a guidance interval, Kynkaanniemi et al. 2024). Near t = 0 the two predictions differ mostly by
    each one's own error, which `scale` would amplify into the sample; those steps also skip the unconditional pass.
    """
    if guidance_from_step < 0:
        raise ValueError(f"guidance_from_step must be >= 0, got {guidance_from_step}")
    if getattr(model, "training", False) or getattr(getattr(autoguidance, "guide", None), "training", False):
        log.warning("classifier_free_guidance: a model is in train mode; condition dropout will corrupt sampling")
    if not isinstance(scale, Tensor) and scale == 1.0:
        def cond_and_guided(x_t: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
            cond = model(x_t, t, text_emb=text_emb, action=action, mask=mask)
            return cond, cond
    else:
        def doubled(value: Tensor | None) -> Tensor | None:
            return None if value is None else torch.cat([value, value], dim=0)  # (2B, ...)

        text2, action2, mask2 = doubled(text_emb), doubled(action), doubled(mask)

        def cond_and_guided(x_t: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
            batch = x_t.shape[0]
            on = t >= guidance_from_step  # (B,)
            if not bool(on.any()):  # below the interval: the conditional pass alone
                cond = model(x_t, t, text_emb=text_emb, action=action, mask=mask)
                return cond, cond
            uncond = torch.arange(2 * batch, device=x_t.device) >= batch  # (2B,): second half is the null condition
            out = model(doubled(x_t), doubled(t), text_emb=text2, action=action2, uncond=uncond, mask=mask2)
            cond, null = out[:batch], out[batch:]
            weight = scale.to(x_t.device).view(-1, *([1] * (x_t.dim() - 1))) if isinstance(scale, Tensor) else scale
            if not bool(on.all()):  # a batch straddling the interval's edge: scale 1 where it is off
                weight = torch.where(on.view(-1, *([1] * (x_t.dim() - 1))), torch.as_tensor(weight), 1.0)
            return cond, null + weight * (cond - null)

    if autoguidance is None or autoguidance.weight == 1.0:
        return lambda x_t, t: cond_and_guided(x_t, t)[1]
    guide, extra, from_step = autoguidance.guide, autoguidance.weight - 1.0, autoguidance.from_step

    def autoguided(x_t: Tensor, t: Tensor) -> Tensor:
        cond, out = cond_and_guided(x_t, t)  # the strong model's conditional half, reused: one strong pass per step
        on = t >= from_step  # (B,)
        if not bool(on.any()):
            return out
        weak = guide(x_t, t, text_emb=text_emb, action=action, mask=mask)
        return out + extra * on.to(out.dtype).view(-1, *([1] * (x_t.dim() - 1))) * (cond - weak)

    return autoguided
