"""kinemic's BatchNorm recalibration ("precise BN") as an mmengine hook, registered in mmaction2's HOOKS registry.

Why: after few training steps BN's running averages still carry their start (mean 0, variance 1) while skeleton
coordinates vary by 1e-4..1e-2 m^2, so eval-mode predictions collapse to one class (`kinemic.classifier`, module
docstring). kinemic recomputes every BN's statistics over the training samples' test clips after training;
mmaction2 has no such step. This hook does it at the end of the last epoch, before the final validation and the last
checkpoint, with `kinemic.classifier.recalibrate_batchnorm` itself and the same clips in the same order as kinemic.

Importing this module needs the `mm` extra; exported configs import it through `custom_imports`.
"""

from __future__ import annotations

import numpy as np
import torch

from kinemic.classifier import RECALIBRATION_BATCH, recalibrate_batchnorm
from kinemic.mmaction import MM_EXTRA_HINT

try:
    from mmaction.registry import HOOKS
    from mmengine.dataset import Compose
    from mmengine.hooks import Hook
    from mmengine.registry import DefaultScope
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"kinemic.mmaction.hooks: {MM_EXTRA_HINT} ({err})") from err


class _Logits(torch.nn.Module):
    """mmaction2's recognizer called the way `recalibrate_batchnorm` calls a kinemic model: one tensor in."""

    def __init__(self, recognizer: torch.nn.Module) -> None:
        super().__init__()
        self.recognizer = recognizer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.recognizer(x, mode="tensor", stage="head")  # x: (B, num_clips, M, T, V, C)


@HOOKS.register_module()
class KinemicPreciseBN(Hook):
    """Recompute every BatchNorm's running statistics over one deterministic clip per training sample.

    `pipeline` must give those clips (the config's `val_pipeline`: centring, one test clip, one person); `seed` orders
    them as kinemic does (`np.random.SeedSequence(seed).spawn(3)[2]`), in batches of `batch_size` (one batch, exact
    statistics, whenever the training set fits).
    """

    priority = "NORMAL"  # before CheckpointHook (VERY_LOW) saves the last epoch

    def __init__(self, pipeline: list[dict], seed: int = 0, batch_size: int = RECALIBRATION_BATCH) -> None:
        if batch_size < 1:
            raise ValueError(f"KinemicPreciseBN: batch_size must be >= 1, got {batch_size}")
        self.pipeline_cfg = pipeline
        self.seed = seed
        self.batch_size = batch_size

    def after_train_epoch(self, runner) -> None:
        if runner.epoch + 1 < runner.max_epochs:  # the loop counts epochs after this hook
            return
        dataset = runner.train_dataloader.dataset
        with DefaultScope.overwrite_default_scope("mmaction"):
            pipeline = Compose(self.pipeline_cfg)
        clips = [pipeline(dataset.get_data_info(i))["inputs"].numpy() for i in range(len(dataset))]
        order = np.random.default_rng(np.random.SeedSequence(self.seed).spawn(3)[2]).permutation(len(clips))
        model = runner.model.module if hasattr(runner.model, "module") else runner.model
        recalibrate_batchnorm(_Logits(model), [clips[i] for i in order], self.batch_size)
        runner.logger.info("KinemicPreciseBN: BatchNorm statistics recomputed over %d training clips", len(clips))
