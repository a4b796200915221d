"""Learning-rate schedules as pure functions of the step, so a resumed run needs no scheduler state."""

from __future__ import annotations

import math

LR_SCHEDULES = ("constant", "cosine")


def cosine_lr(base_lr: float, step: int, total_steps: int) -> float:
    """Per-iteration cosine annealing to 0 with no warmup (mmcv CosineAnnealing, by_epoch=False): lr at `step`."""
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * step / total_steps))


def scheduled_lr(
    base_lr: float, step: int, total_steps: int, schedule: str = "constant", warmup_steps: int = 0
) -> float:
    """lr for `step` (0-based): a linear warmup over `warmup_steps`, then constant or cosine-annealed to 0 at the end.

    Pure in `step`, so resuming needs no scheduler state. (For the embedded teacher a cosine decay brought back the
    static samples that a constant rate avoids: see the README on how its learning rate was chosen.)
    """
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"lr schedule must be one of {LR_SCHEDULES}, got {schedule!r}")
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if schedule == "constant":
        return base_lr
    return cosine_lr(base_lr, step - warmup_steps, max(1, total_steps - warmup_steps))
