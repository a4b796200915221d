"""KineMIC's objectives and window mining (paper sections 4.2-4.5), as small pure functions on tensors.

- `snn_loss`: the Soft Nearest Neighbours contrastive loss of eq. (1) between target and prior context vectors, with the
  pairing's pseudo-labels (a prior motion carries the class of the target sample it was paired with);
- `best_window_starts`: eq. (2), the start of the contiguous window of length m with the largest summed attention,
  for every sample at once through a cumulative sum (no loop over windows);
- `align_to_window`: gathers a window to the start of a same-size tensor (padding repeats its last frame), used on the
  clean prior motion, the shared noise and the teacher's features alike;
- `feature_distillation`: eq. (5), squared error between student features on the window and the teacher's features of
  the same frames, averaged over the window;
- `window_weights`: eq. (6), dww = (cos(z_T, z_P*) + 1) / 2, computed without gradient;
- `MemoryBank`: a FIFO of recent detached prior embeddings with their labels, extra negatives/positives for eq. (1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

LOGIT_SCALE_MAX = 4.6052  # ln(100): the clamp CLIP and the authors use for the learnable temperature


def snn_loss(
    z_target: Tensor, z_prior: Tensor, target_labels: Tensor, prior_labels: Tensor, logit_scale: Tensor
) -> Tensor:
    """Eq. (1), averaged over target samples: -log(sum_{same class} exp(s cos) / sum_all exp(s cos)), s = 1/tau.

    z_target (B, D), z_prior (N, D), labels (B,) and (N,) int, logit_scale a scalar log(1/tau). Every target sample must
    have at least one prior sample of its class.
    """
    sims = F.normalize(z_target, dim=-1) @ F.normalize(z_prior, dim=-1).T * logit_scale.exp()  # (B, N)
    positive = target_labels[:, None] == prior_labels[None, :]  # (B, N)
    if not positive.any(dim=1).all():
        raise ValueError("snn_loss: a target sample has no prior sample of its class among the candidates")
    log_all = torch.logsumexp(sims, dim=1)
    log_pos = torch.logsumexp(sims.masked_fill(~positive, float("-inf")), dim=1)
    return (log_all - log_pos).mean()


def best_window_starts(attention: Tensor, lengths: Tensor, window: Tensor) -> Tensor:
    """Eq. (2): per sample, the start i maximising sum(attention[i : i + m]) with the window inside the valid frames.

    attention (B, T) (padding ignored), lengths (B,) valid frames, window (B,) lengths m with 1 <= m <= lengths.
    Ties go to the earliest start.
    """
    batch, frames = attention.shape
    if (window < 1).any() or (window > lengths).any():
        raise ValueError(f"window lengths must lie in [1, length]; got {window.tolist()} for {lengths.tolist()}")
    csum = torch.cat([attention.new_zeros(batch, 1), attention.cumsum(dim=1)], dim=1)  # (B, T+1)
    starts = torch.arange(frames, device=attention.device)  # (T,)
    ends = (starts[None, :] + window[:, None]).clamp(max=frames)  # (B, T)
    sums = csum.gather(1, ends) - csum[:, :frames]  # (B, T): sum over [i, i+m)
    fits = starts[None, :] + window[:, None] <= lengths[:, None]
    return sums.masked_fill(~fits, float("-inf")).argmax(dim=1)


def align_to_window(x: Tensor, starts: Tensor, window: Tensor, frames: int | None = None) -> Tensor:
    """Move the window [start, start + m) of each sample to frame 0 of a (B, frames, C) tensor; later frames repeat the
    window's last frame (the authors' `_align_tensor_to_window`). `frames` defaults to x's length."""
    batch, total, _ = x.shape
    frames = total if frames is None else frames
    offsets = torch.arange(frames, device=x.device)[None, :]  # (1, F)
    index = starts[:, None] + torch.minimum(offsets, (window - 1)[:, None])  # (B, F)
    index = index.clamp(max=total - 1)
    return x.gather(1, index[:, :, None].expand(-1, -1, x.shape[-1]))


def window_mask(window: Tensor, frames: int) -> Tensor:
    """(B, frames) bool, True on the first m frames."""
    return torch.arange(frames, device=window.device)[None, :] < window[:, None]


def feature_distillation(student: Tensor, teacher: Tensor, mask: Tensor) -> Tensor:
    """Eq. (5) per sample: mean over the window's frames of the squared distance, divided by the feature size.

    student/teacher (B, T, D) (teacher already aligned to the window and detached), mask (B, T). Returns (B,).
    """
    sq = (student - teacher).square().mean(dim=-1)  # (B, T)
    sq = torch.where(mask, sq, torch.zeros_like(sq))
    return sq.sum(dim=1) / mask.sum(dim=1).clamp_min(1)


@torch.no_grad()
def window_weights(z_target: Tensor, z_window: Tensor) -> Tensor:
    """Eq. (6): (cos(z_T, z_P*) + 1) / 2 in [0, 1], detached so the MIC module cannot game it."""
    return ((F.cosine_similarity(z_target, z_window, dim=-1) + 1.0) / 2.0).detach()


class MemoryBank:
    """FIFO of the last `size` detached prior embeddings and their pseudo-labels (the authors use 60)."""

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError(f"memory bank size must be >= 0, got {size}")
        self.size = size
        self.z: Tensor | None = None
        self.labels: Tensor | None = None

    def extend(self, z: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """Candidates for this step (current batch first, then the bank), then push the batch into the bank."""
        if self.z is None or self.size == 0:
            candidates = (z, labels)
        else:
            candidates = (torch.cat([z, self.z.to(z.device)]), torch.cat([labels, self.labels.to(labels.device)]))
        if self.size > 0:
            new_z = z.detach() if self.z is None else torch.cat([z.detach(), self.z.to(z.device)])
            new_labels = labels if self.labels is None else torch.cat([labels, self.labels.to(labels.device)])
            self.z, self.labels = new_z[: self.size], new_labels[: self.size]
        return candidates

    def state_dict(self) -> dict[str, Tensor | None]:
        return {"z": self.z, "labels": self.labels}

    def load_state_dict(self, state: dict[str, Tensor | None]) -> None:
        self.z, self.labels = state.get("z"), state.get("labels")
