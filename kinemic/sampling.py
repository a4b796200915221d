"""Drawing motions from a trained denoiser: batched ancestral sampling with classifier-free guidance.

Used for the teacher's previews, the zero-shot baseline and the student's synthetic dataset alike. The denoiser sees
normalised features; results are de-normalised features plus joints recovered from them.

MDM's length caveat (reference/mdm_kinemic.md section 5): a model trained without a frame mask always saw padded
inputs of its training length, so it is sampled at that padded length and the result cropped; a model with
`mask_frames` is sampled at each motion's own length (padding hidden by the mask).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from kinemic.diffusion import GaussianDiffusion, classifier_free_guidance
from kinemic.models.mdm import MDM
from kinemic.motion import FeatureStats, features_to_joints


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
) -> Samples:
    """Generate `len(request.lengths)` motions, `batch_size` at a time, reproducibly from `seed`.

    `pad_to` is the padded length for models trained without a frame mask (the teacher's training length); it is
    ignored for masked models. Guidance is applied when `guidance != 1`.
    """
    device = torch.device(device)
    lengths = np.asarray(request.lengths, dtype=np.int64)
    masked = model.config.mask_frames
    if not masked and pad_to is None:
        pad_to = int(lengths.max())
    if not masked and lengths.max() > pad_to:
        raise ValueError(f"requested length {lengths.max()} exceeds the model's padded length {pad_to}")
    generator = torch.Generator(device="cpu").manual_seed(seed)
    was_training = model.training
    model.eval()
    features: list[np.ndarray] = []
    total = len(lengths)
    for start in range(0, total, batch_size):
        sl = slice(start, min(start + batch_size, total))
        batch_len = lengths[sl]
        frames = int(batch_len.max()) if masked else int(pad_to)
        mask = torch.arange(frames, device=device)[None, :] < torch.from_numpy(batch_len).to(device)[:, None]
        text = None if request.text_emb is None else torch.as_tensor(request.text_emb[sl], dtype=torch.float32)
        action = None if request.action is None else torch.as_tensor(request.action[sl], dtype=torch.long)
        model_fn = classifier_free_guidance(
            model,
            guidance,
            text_emb=None if text is None else text.to(device),
            action=None if action is None else action.to(device),
            mask=mask,
        )
        step_progress = None
        if progress is not None:  # fractional samples after every denoising step: a batch takes minutes on a CPU
            def step_progress(done: int, steps: int, start: int = start, size: int = len(batch_len)) -> None:
                progress(start + size * done / steps, total)
        x = diffusion.sample_loop(model_fn, (len(batch_len), frames, model.config.njoints), generator, device=device,
                                  progress=step_progress)
        x = stats.denormalize(x.float().cpu().numpy())
        features += [x[i, :n].astype(np.float32) for i, n in enumerate(batch_len)]
    model.train(was_training)
    return Samples(features=features, joints=[features_to_joints(f) for f in features])


def lengths_like(reference: Sequence[int], count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` lengths drawn (with replacement) from a reference length distribution, e.g. the few-shot set's."""
    reference = np.asarray(reference, dtype=np.int64)
    if len(reference) == 0:
        raise ValueError("cannot draw lengths from an empty reference set")
    return rng.choice(reference, size=count, replace=True)
