"""kinemic's classifier protocol trained by mmaction2: the `evaluate.backend: mmaction2` side of issue 18.

Why: a second, independently written training stack (mmaction2's STGCN, data pipeline and loss; mmengine's runner,
SGD and cosine scheduler) run on the same data with the same protocol. If both backends give the same accuracy
within seed noise, the reported numbers do not hinge on a bug in kinemic's own training loop.

What is shared and what is not:
- same: training samples, labels, pelvis centring, clip sampling functions, epochs, batch size, SGD (lr, momentum,
  nesterov, weight decay), per-iteration cosine to 0, the config's seed, and evaluation (`kinemic.classifier.evaluate`,
  after converting the weights; `tests/test_mmaction2_oracle.py` shows both nets give the same logits);
- mmaction2's own: weight initialisation, data order and clip draws (numpy's global generator, seeded by mmengine),
  the loss code, the optimiser loop;
- BatchNorm recalibration (`ClassifierConfig.recalibrate_bn`, on by default) is kinemic's addition, which mmaction2
  lacks; the exported config runs it after the last epoch (`kinemic.mmaction.hooks`) with kinemic's function, clips
  and order, so the option means the same on both backends.

The run goes through the exported config (`kinemic.mmaction.export`) in a temporary directory, so the backend also
exercises what users of the exports get. mmengine trains on CUDA whenever it is available.
"""

from __future__ import annotations

import logging
import random
import tempfile
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch

from kinemic import evaluation
from kinemic.classifier import (
    ClassifierConfig,
    EpochStats,
    TrainedClassifier,
    prepare_joints,
)
from kinemic.devices import resolve_device
from kinemic.evaluation import EvaluateConfig, SeedResult
from kinemic.formats.pyskl import SkeletonSample, write_pyskl
from kinemic.mmaction import require_mm
from kinemic.mmaction.checkpoint import classifier_from_mmaction
from kinemic.mmaction.export import write_mmaction_config
from kinemic.synthetic_set import SyntheticSet
from kinemic.target_set import PreparedTarget

logger = logging.getLogger(__name__)

TRAIN_SPLIT = "train"


def _epoch_stats(**values) -> EpochStats:
    """EpochStats from the values it has fields for (its wall-time field is optional across kinemic versions)."""
    names = {f.name for f in fields(EpochStats)}
    return EpochStats(**{k: v for k, v in values.items() if k in names})


def _check_inputs(
    train_joints: Sequence[np.ndarray], train_labels, num_classes: int, config: ClassifierConfig
) -> tuple[list[np.ndarray], np.ndarray]:
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if config.precision != "fp32":
        raise ValueError(f"ClassifierConfig.precision={config.precision!r}: the mmaction2 backend trains in fp32 only")
    samples = prepare_joints(train_joints, recenter=False, name="train_joints")  # centring is the pipeline's job
    if not samples:
        raise ValueError("the training set is empty: train_classifier needs at least one (joints, label) sample")
    labels = np.asarray(train_labels)
    if labels.shape != (len(samples),) or (len(labels) and not np.issubdtype(labels.dtype, np.integer)):
        raise ValueError(f"train_labels must be {len(samples)} integers (one per sample), got {labels.shape}")
    if ((labels < 0) | (labels >= num_classes)).any():
        raise ValueError(f"train_labels must be in [0, {num_classes}), got {sorted(set(labels.tolist()))[:10]}")
    return samples, labels.astype(np.int64)


def _check_device(config: ClassifierConfig) -> None:
    from mmengine.device import get_device

    wanted, used = resolve_device(config.device).type, get_device()
    if wanted != used:
        raise ValueError(
            f"ClassifierConfig.device={config.device!r}, but mmengine trains on {used!r} here (it always takes CUDA "
            "when present); use device 'auto', or hide the GPU with CUDA_VISIBLE_DEVICES='' to train on the CPU"
        )


def _history_hook(num_samples: int, progress: Callable[[EpochStats], None] | None):
    """An mmengine hook collecting kinemic's per-epoch statistics from the loss outputs of every iteration."""
    from mmengine.hooks import Hook

    class History(Hook):
        priority = "NORMAL"  # before ParamSchedulerHook (LOW) steps the lr: the lr read is the one just used

        def __init__(self) -> None:
            self.stats: list[EpochStats] = []
            self._loss = self._correct = self._lr = 0.0

        def before_train_epoch(self, runner) -> None:
            self._loss = self._correct = 0.0

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
            size = len(data_batch["inputs"])
            self._loss += float(torch.as_tensor(outputs["loss"]).detach()) * size
            self._correct += float(torch.as_tensor(outputs["top1_acc"]).detach()) * size
            self._lr = runner.optim_wrapper.get_lr()["lr"][0]

        def after_train_epoch(self, runner) -> None:
            stats = _epoch_stats(epoch=runner.epoch + 1, loss=self._loss / num_samples,
                                 train_accuracy=self._correct / num_samples, lr=self._lr, seconds=0.0)
            self.stats.append(stats)
            if progress is not None:
                progress(stats)

    return History()


def _close_log_files(runner) -> None:
    for handler in list(runner.logger.handlers):
        if isinstance(handler, logging.FileHandler):
            handler.close()
            runner.logger.removeHandler(handler)


def train_classifier(
    train_joints: Sequence[np.ndarray],
    train_labels: Sequence[int] | np.ndarray,
    num_classes: int,
    config: ClassifierConfig | None = None,
    seed: int = 0,
    progress: Callable[[EpochStats], None] | None = None,
) -> TrainedClassifier:
    """`kinemic.classifier.train_classifier`'s contract, trained by mmengine's runner on mmaction2's STGCN.

    Returns a kinemic classifier (eval mode) holding the trained weights, so evaluation, features and checkpoints
    are the same code as for the kinemic backend. The caller's global torch / numpy / random states are restored.
    """
    config = config or ClassifierConfig()
    samples, labels = _check_inputs(train_joints, train_labels, num_classes, config)
    require_mm()
    _check_device(config)
    from mmengine.config import Config
    from mmengine.runner import Runner

    logger.info("training mmaction2 ST-GCN (base %d, %d classes) on %d samples for %d epochs",
                config.base_channels, num_classes, len(samples), config.epochs)
    numpy_state, python_state = np.random.get_state(), random.getstate()
    with tempfile.TemporaryDirectory(prefix="kinemic-mmaction2-") as tmp, torch.random.fork_rng(devices=[]):
        tmp = Path(tmp)
        ids = [f"sample_{i:06d}" for i in range(len(samples))]
        write_pyskl(tmp / "train.pkl", [SkeletonSample(i, int(c), j) for i, c, j in zip(ids, labels, samples,
                                                                                         strict=True)],
                    {TRAIN_SPLIT: ids})
        config_path = write_mmaction_config(tmp / "train.pkl", num_classes, config, TRAIN_SPLIT, seed=seed,
                                            num_workers=0)
        cfg = Config.fromfile(str(config_path))
        cfg.work_dir = str(tmp / "work")
        cfg.experiment_name = f"kinemic_seed{seed}_{uuid.uuid4().hex[:8]}"  # mmengine's global instances are by name
        cfg.log_level = "WARNING"
        cfg.default_hooks.checkpoint = None  # the weights are taken from memory
        with warnings.catch_warnings():  # mmcv-lite has no compiled ops; the skeleton models never use them
            warnings.filterwarnings("ignore", message="Fail to import ``MultiScaleDeformableAttention``")
            runner = Runner.from_cfg(cfg)
        history = _history_hook(len(samples), progress)
        runner.register_hook(history)
        try:
            model = runner.train()
        finally:
            _close_log_files(runner)
        state_dict = {key: value.detach().cpu() for key, value in model.state_dict().items()}
        classifier = classifier_from_mmaction(state_dict, config, seed=seed, device=config.device)  # draws init
    np.random.set_state(numpy_state)
    random.setstate(python_state)

    classifier.model.eval()
    if history.stats:
        logger.info("trained: final loss %.4f, train accuracy %.3f", history.stats[-1].loss,
                    history.stats[-1].train_accuracy)
    return TrainedClassifier(model=classifier.model, config=config, num_classes=num_classes, seed=seed,
                             history=tuple(history.stats))


def run_seed(
    target: PreparedTarget,
    synthetic: SyntheticSet | None,
    config: EvaluateConfig,
    seed: int,
    progress: Callable[[EpochStats], None] | None = None,
) -> SeedResult:
    """`kinemic.evaluation.run_seed` with the mmaction2 backend: same training set, same test set and metrics."""
    return evaluation.run_seed(target, synthetic, config, seed, progress, train=train_classifier)
