"""Batches of prepared motions, as the teacher's pretraining and the student's training both draw them.

MDM's recipe (reference/mdm_kinemic.md sections 4-6): a random crop to a multiple of the unit length (sometimes one
unit shorter), z-normalisation, and zero padding (in normalised space) to the batch's longest crop with a mask of the
valid frames. `CaptionedMotionSampler` draws (cropped motion, caption) pairs from a prepared prior, reproducibly from
a numpy Generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from kinemic.corpus import PreparedPrior
from kinemic.motion import FeatureStats


def crop_length(length: int, unit: int, max_frames: int, rng: np.random.Generator) -> int:
    """MDM's crop: a multiple of `unit`, one unit shorter a third of the time, capped at max_frames."""
    if length < unit:
        raise ValueError(f"a motion of {length} frames is shorter than the crop unit {unit}")
    units = length // unit
    if units > 1 and rng.choice(("single", "single", "double")) == "double":
        units -= 1
    return min(units * unit, (max_frames // unit) * unit)


@dataclass
class MotionBatch:
    """Normalised, zero-padded motions (B, T, 263) with their valid-frame mask (B, T) and lengths (B,)."""

    x0: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor


def collate(motions: list[np.ndarray], stats: FeatureStats, device: torch.device) -> MotionBatch:
    """Normalise and zero-pad (in normalised space, as MDM) to the longest motion."""
    lengths = np.array([len(m) for m in motions])
    x0 = np.zeros((len(motions), lengths.max(), motions[0].shape[1]), dtype=np.float32)
    for i, m in enumerate(motions):
        x0[i, : len(m)] = stats.normalize(np.asarray(m, dtype=np.float32))
    lengths_t = torch.from_numpy(lengths).to(device)
    mask = torch.arange(x0.shape[1], device=device)[None, :] < lengths_t[:, None]  # (B, T)
    return MotionBatch(torch.from_numpy(x0).to(device), mask, lengths_t)


class CropSettings(Protocol):
    """What the sampler reads from its config (`kinemic.teacher.TeacherConfig` has these fields)."""

    @property
    def batch_size(self) -> int: ...

    @property
    def unit_length(self) -> int: ...

    @property
    def max_frames(self) -> int: ...


class CaptionedMotionSampler:
    """Draws (cropped motion, caption index) batches from a prepared prior, reproducibly from a numpy Generator."""

    def __init__(self, prior: PreparedPrior, caption_ids: np.ndarray, config: CropSettings) -> None:
        self.prior = prior
        self.config = config
        codes = prior.captions["motion_id"].map({m: i for i, m in enumerate(prior.motions["motion_id"])})
        order = np.argsort(codes.to_numpy(), kind="stable")
        counts = np.bincount(codes.to_numpy(), minlength=len(prior.motions))
        if (counts == 0).any():
            bad = prior.motions["motion_id"][counts == 0].tolist()[:5]
            raise ValueError(f"prepared prior: motions without captions: {bad}")
        self.caption_ids = caption_ids[order]  # caption rows grouped by motion
        self.starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.counts = counts

    def sample(self, rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray]:
        idx = rng.integers(0, len(self.prior), size=self.config.batch_size)
        motions, captions = [], np.empty(len(idx), dtype=np.int64)
        for k, i in enumerate(idx):
            captions[k] = self.caption_ids[self.starts[i] + rng.integers(self.counts[i])]
            full = self.prior.motion(int(i))
            m = crop_length(len(full), self.config.unit_length, self.config.max_frames, rng)
            start = rng.integers(0, len(full) - m + 1)
            motions.append(np.asarray(full[start : start + m]))
        return motions, captions
