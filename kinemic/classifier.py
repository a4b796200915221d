"""The downstream evaluation protocol: train an ST-GCN on (real + synthetic) skeletons, measure top-1 on real ones.

This follows the paper (section 5.2) and PYSKL's `stgcn_pyskl_ntu120_xsub_3dkp/j.py`: 80 epochs, batch 64, SGD (lr 0.1,
momentum 0.9, nesterov, weight decay 5e-4), cosine annealing to 0 per iteration with no warmup, 100-frame clips by
uniform segment sampling, and softmax averaging over test clips (1 clip = PYSKL's val pipeline, 10 = its test
pipeline). The paper keeps lr 0.1 at batch 64 rather than PYSKL's linear rule (0.1 per 128), and so do we.

Inputs are lists of SMPL-22 joint arrays (T_i, 22, 3), y-up metres, already canonicalised the HumanML3D way (frame 0
faces +Z with its root at the XZ origin), because both real and synthetic samples are recovered from 263-d features.
That canonical frame already does PYSKL's `PreNormalize3D` rotation, so the only extra step (`recenter`) is its
centring: every sample is shifted so its frame-0 pelvis sits at the origin. This removes the clip's floor height (the
lowest joint over the clip, which generated motions often get slightly wrong) and is applied identically to every
sample, real or synthetic, in training and evaluation.

One addition to PYSKL (`recalibrate_bn`, on by default): after training, every BatchNorm's running statistics are
recomputed as exact averages over the training samples' test clips ("precise BN"). BN's running averages
(momentum 0.1) start from mean 0 / variance 1 and keep 0.9^steps of that start; skeleton coordinates have variances of
1e-4..1e-2 m^2, so after the few dozen steps of a small training set (e.g. 30 few-shot clips at batch 64: one step per
epoch) eval-mode inputs are squashed ~20x and predictions collapse to one class. Measured on the embedded target
(30 real clips, 30 epochs, width 16): test top-1 0.34-0.36 without, 0.65-0.68 with. At the paper's ~1,500 steps
the two agree.

Skeleton clips enter the network as (N, T, V, C), i.e. one person (see `kinemic.models.stgcn`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from kinemic import metrics
from kinemic.devices import PRECISIONS, autocast, resolve_device
from kinemic.models.stgcn import DEFAULT_CENTER, STGCN, STGCNConfig
from kinemic.schedules import cosine_lr
from kinemic.skeleton import NUM_JOINTS
from kinemic.stage_files import TORCH_READ_ERRORS, read_stage_file

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "kinemic.stgcn_classifier/1"
RECALIBRATION_BATCH = 256  # clips per forward pass when recomputing BatchNorm statistics


@dataclass(frozen=True)
class ClassifierConfig:
    """Protocol hyperparameters; defaults are the paper's (section 5.2) and PYSKL's ST-GCN j.py."""

    epochs: int = 80
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    clip_len: int = 100
    num_test_clips: int = 1  # 1: PYSKL val pipeline; 10: its test pipeline (softmax averaged)
    base_channels: int = 64  # 64 is PYSKL's 3.1 M-parameter net; narrower nets suit CPU-only runs
    center: int = DEFAULT_CENTER  # graph centre joint of the stgcn_spatial partition
    recenter: bool = True  # shift each sample so its frame-0 pelvis is the origin (module docstring)
    recalibrate_bn: bool = True  # precise BN statistics after training (module docstring); False = exactly PYSKL
    precision: str = "fp32"  # "bf16": forward under bf16 autocast; faster on GPUs and bf16 CPUs (AMX), slower on others
    device: str = "auto"  # "auto" picks CUDA when present, else CPU

    def __post_init__(self) -> None:
        for name in ("lr", "momentum", "weight_decay"):  # a number, never text: as config_from_params has it
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"ClassifierConfig.{name} must be a number, got {value!r}")
            object.__setattr__(self, name, float(value))
        for name in ("epochs", "batch_size", "num_test_clips", "base_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"ClassifierConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.clip_len < 2:
            raise ValueError(f"ClassifierConfig.clip_len must be >= 2 frames, got {self.clip_len}")
        if self.lr <= 0:
            raise ValueError(f"ClassifierConfig.lr must be > 0, got {self.lr}")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"ClassifierConfig.momentum must be in [0, 1), got {self.momentum}")
        if self.nesterov and self.momentum == 0:
            raise ValueError("ClassifierConfig.nesterov=True needs momentum > 0; set nesterov=False or a momentum")
        if self.weight_decay < 0:
            raise ValueError(f"ClassifierConfig.weight_decay must be >= 0, got {self.weight_decay}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"ClassifierConfig.precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.device != "auto":
            try:
                torch.device(self.device)
            except RuntimeError as err:
                raise ValueError(
                    f"ClassifierConfig.device must be 'auto' or a torch device ('cpu', 'cuda', 'cuda:1'), "
                    f"got {self.device!r}"
                ) from err
        # the graph centre is validated by STGCNConfig, which owns it
        self.model_config(num_classes=1)

    def model_config(self, num_classes: int) -> STGCNConfig:
        """The ST-GCN this protocol trains: PYSKL defaults, at this width and graph centre."""
        return STGCNConfig(num_classes=num_classes, base_channels=self.base_channels, center=self.center)


@dataclass(frozen=True)
class EpochStats:
    """One training epoch: mean loss and accuracy over its (random) clips, lr of its last step. No wall time: the
    history is saved in the checkpoint, a hashed output, so it holds results only (timings go to runs/)."""

    epoch: int
    loss: float
    train_accuracy: float
    lr: float


@dataclass(frozen=True)
class TrainedClassifier:
    """A trained ST-GCN (in eval mode) with everything needed to use or save it."""

    model: STGCN
    config: ClassifierConfig
    num_classes: int
    seed: int
    history: tuple[EpochStats, ...] = ()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


@dataclass(frozen=True)
class EvalResult:
    """Classifier evaluation on labelled skeletons. `confusion[i, j]` counts true class i predicted as j."""

    top1: float
    confusion: np.ndarray  # (C, C) int64
    predictions: np.ndarray  # (N,) int64
    probabilities: np.ndarray  # (N, C) float32, softmax averaged over test clips
    per_class_accuracy: np.ndarray  # (C,) float64, NaN for classes absent from the labels

    def to_metrics(self) -> dict[str, float | None]:
        """Flat JSON-ready numbers (for `metrics:` files): top-1 and per-class accuracy, NaN written as None."""
        out: dict[str, float | None] = {"top1": self.top1}
        for cls, acc in enumerate(self.per_class_accuracy):
            out[f"acc_class_{cls}"] = None if np.isnan(acc) else float(acc)
        return out


# --------------------------------------------------------------------------------------------------------------------
# pure helpers
# --------------------------------------------------------------------------------------------------------------------


def sample_train_indices(num_frames: int, clip_len: int, rng: np.random.Generator) -> np.ndarray:
    """Training frame indices (clip_len,) as PYSKL `UniformSample`: one random frame in each of clip_len segments.

    Shorter sequences start at a random frame and loop (index mod num_frames), so every clip has clip_len frames.
    """
    if num_frames < clip_len:
        start = rng.integers(num_frames)
        return (start + np.arange(clip_len)) % num_frames
    bounds = np.arange(clip_len + 1) * num_frames // clip_len  # segment edges, sizes differ by at most one frame
    return bounds[:-1] + rng.integers(np.diff(bounds))


def sample_test_indices(num_frames: int, clip_len: int, num_clips: int = 1) -> np.ndarray:
    """Deterministic test frame indices (num_clips, clip_len): no RNG, so evaluation never depends on a seed.

    Long sequences: clip i takes position (i + 0.5) / num_clips inside every segment (one clip: the segment middles).
    Short ones loop as in training, clip i starting at frame i * num_frames // num_clips (PYSKL's test starts).
    """
    clips = []
    bounds = np.arange(clip_len + 1) * num_frames // clip_len
    for i in range(num_clips):
        if num_frames < clip_len:
            start = i * num_frames // num_clips
            clips.append((start + np.arange(clip_len)) % num_frames)
        else:
            clips.append(bounds[:-1] + (np.diff(bounds) * (2 * i + 1)) // (2 * num_clips))
    return np.stack(clips)


def prepare_joints(joints: Sequence[np.ndarray], recenter: bool = True, name: str = "joints") -> list[np.ndarray]:
    """Validated float32 copies of the samples, frame-0 pelvis moved to the origin when `recenter` (inputs untouched).

    Raises ValueError naming the first bad sample: wrong shape, fewer than 2 frames, or non-finite values.
    """
    prepared = []
    for i, sample in enumerate(joints):
        arr = np.array(sample, dtype=np.float32)  # always a copy
        if arr.ndim != 3 or arr.shape[1:] != (NUM_JOINTS, 3):
            raise ValueError(f"{name}[{i}]: expected SMPL-22 joints of shape (T, {NUM_JOINTS}, 3), got {arr.shape}")
        if arr.shape[0] < 2:
            raise ValueError(f"{name}[{i}]: a sequence needs at least 2 frames, got {arr.shape[0]}")
        if not np.isfinite(arr).all():
            bad_frames = np.unique(np.nonzero(~np.isfinite(arr))[0])
            raise ValueError(f"{name}[{i}]: contains NaN or inf values (frames {bad_frames[:10].tolist()})")
        if recenter:
            arr -= arr[0, 0]
        prepared.append(arr)
    return prepared


def _check_labels(labels: Sequence[int] | np.ndarray, num_samples: int, num_classes: int) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1 or len(arr) != num_samples:
        raise ValueError(
            f"labels must be a flat sequence of {num_samples} ints (one per sample), got shape {arr.shape}"
        )
    if num_samples and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {arr.dtype}")
    bad = np.nonzero((arr < 0) | (arr >= num_classes))[0]
    if len(bad):
        raise ValueError(
            f"labels must be in [0, {num_classes}) for num_classes={num_classes}; "
            f"sample {bad[0]} has label {arr[bad[0]]} ({len(bad)} out of range)"
        )
    return arr.astype(np.int64)


def _test_clips(samples: Sequence[np.ndarray], clip_len: int, num_clips: int) -> list[np.ndarray]:
    """Every deterministic test clip of every sample, sample-major: N*num_clips arrays (clip_len, V, C)."""
    return [sample[indices] for sample in samples for indices in sample_test_indices(len(sample), clip_len, num_clips)]


def recalibrate_batchnorm(model: torch.nn.Module, clips: Sequence[np.ndarray], batch_size: int) -> None:
    """Replace every BatchNorm's running mean/var by the average of per-batch statistics over `clips` (precise BN).

    In place. Only the BN layers run in training mode (dropout stays off); no gradients; momentum is restored. With
    one batch the statistics are exact; with several, batches should be large and unsorted (the mean is exact, the
    variance misses the spread of batch means).
    """
    norms = [
        m for m in model.modules() if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d))
    ]
    if not norms or not clips:
        return
    device = next(model.parameters()).device
    was_training = model.training
    momenta = [bn.momentum for bn in norms]
    model.eval()
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the batches below
        bn.train()
    with torch.no_grad():
        for start in range(0, len(clips), batch_size):
            model(torch.from_numpy(np.stack(clips[start : start + batch_size])).to(device))  # (B, T, V, C)
    for bn, momentum in zip(norms, momenta, strict=True):
        bn.momentum = momentum
    model.train(was_training)


# --------------------------------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------------------------------


def train_classifier(
    train_joints: Sequence[np.ndarray],
    train_labels: Sequence[int] | np.ndarray,
    num_classes: int,
    config: ClassifierConfig | None = None,
    seed: int = 0,
    progress: Callable[[EpochStats], None] | None = None,
) -> TrainedClassifier:
    """Train an ST-GCN from scratch on labelled SMPL-22 skeletons (T_i, 22, 3).

    Everything random (weight init, data order, clip sampling) derives from `seed`; the caller's global torch RNG state
    is left as it was. On CPU the same seed gives the same weights. `progress` is called after every epoch.
    """
    config = config or ClassifierConfig()
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    samples = prepare_joints(train_joints, config.recenter, name="train_joints")
    if not samples:
        raise ValueError("the training set is empty: train_classifier needs at least one (joints, label) sample")
    labels = _check_labels(train_labels, len(samples), num_classes)
    device = resolve_device(config.device)

    order_rng, clip_rng, recal_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    steps_per_epoch = math.ceil(len(samples) / config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    logger.info(
        "training ST-GCN (base %d, %d classes) on %d samples for %d epochs (%d steps) on %s",
        config.base_channels,
        num_classes,
        len(samples),
        config.epochs,
        total_steps,
        device,
    )

    # fork_rng: seed torch locally and give the caller's global RNG state back afterwards.
    fork_devices = []
    if device.type == "cuda":
        fork_devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(seed)
        model = STGCN(config.model_config(num_classes)).to(device)
        optimizer = torch.optim.SGD(
            model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            nesterov=config.nesterov,
        )
        history = []
        step = 0
        for epoch in range(config.epochs):
            model.train()
            loss_sum, correct = 0.0, 0
            order = order_rng.permutation(len(samples))
            for start in range(0, len(samples), config.batch_size):
                batch = order[start : start + config.batch_size]
                clips = np.stack(
                    [samples[i][sample_train_indices(len(samples[i]), config.clip_len, clip_rng)] for i in batch]
                )  # (B, clip_len, V, C)
                x = torch.from_numpy(clips).to(device)
                y = torch.from_numpy(labels[batch]).to(device)
                lr = cosine_lr(config.lr, step, total_steps)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                with autocast(device, config.precision):
                    logits = model(x)
                loss = F.cross_entropy(logits.float(), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                loss_sum += loss.item() * len(batch)
                correct += int((logits.argmax(dim=1) == y).sum())
            stats = EpochStats(
                epoch=epoch + 1,
                loss=loss_sum / len(samples),
                train_accuracy=correct / len(samples),
                lr=lr,
            )
            history.append(stats)
            logger.debug("epoch %d/%d: %s", epoch + 1, config.epochs, stats)
            if progress is not None:
                progress(stats)
    if config.recalibrate_bn:
        # Shuffled (training sets are often sorted by class) and in large batches, so that averaging per-batch
        # statistics approaches the statistics of the whole set.
        clips = _test_clips(samples, config.clip_len, 1)
        clips = [clips[i] for i in recal_rng.permutation(len(clips))]
        recalibrate_batchnorm(model, clips, max(config.batch_size, RECALIBRATION_BATCH))
    model.eval()
    logger.info("trained: final loss %.4f, train accuracy %.3f", history[-1].loss, history[-1].train_accuracy)
    return TrainedClassifier(model=model, config=config, num_classes=num_classes, seed=seed, history=tuple(history))


# --------------------------------------------------------------------------------------------------------------------
# inference
# --------------------------------------------------------------------------------------------------------------------


def _run_test_clips(classifier: TrainedClassifier, joints: Sequence[np.ndarray], features: bool) -> np.ndarray:
    """Run every deterministic test clip through the model; returns clip-averaged softmax (N, C) or features (N, D)."""
    config, model, device = classifier.config, classifier.model, classifier.device
    samples = prepare_joints(joints, config.recenter, name="joints")
    if not samples:
        raise ValueError("joints is empty: nothing to run the classifier on")
    num_clips = config.num_test_clips
    # Flatten (sample, clip) pairs so batches hold batch_size clips whatever num_test_clips is.
    clips = _test_clips(samples, config.clip_len, num_clips)
    outputs = []
    was_training = model.training
    model.eval()
    with torch.inference_mode(), autocast(device, config.precision):
        for start in range(0, len(clips), config.batch_size):
            x = torch.from_numpy(np.stack(clips[start : start + config.batch_size])).to(device)  # (B, clip_len, V, C)
            out = model.features(x).float() if features else model(x).float().softmax(dim=1)
            outputs.append(out.cpu().numpy())
    model.train(was_training)
    per_clip = np.concatenate(outputs)  # (N*num_clips, D)
    return per_clip.reshape(len(samples), num_clips, -1).mean(axis=1)  # (N, D)


def predict_proba(classifier: TrainedClassifier, joints: Sequence[np.ndarray]) -> np.ndarray:
    """Class probabilities (N, C), softmax averaged over `config.num_test_clips` deterministic clips."""
    return _run_test_clips(classifier, joints, features=False).astype(np.float32)


def extract_features(classifier: TrainedClassifier, joints: Sequence[np.ndarray]) -> np.ndarray:
    """Pooled penultimate ST-GCN features (N, feature_dim), averaged over test clips: the FID/diversity embedding."""
    return _run_test_clips(classifier, joints, features=True).astype(np.float32)


def evaluate(
    classifier: TrainedClassifier, joints: Sequence[np.ndarray], labels: Sequence[int] | np.ndarray
) -> EvalResult:
    """Top-1, confusion matrix and per-class accuracy of the classifier on labelled skeletons."""
    labels = _check_labels(labels, len(joints), classifier.num_classes)
    probabilities = predict_proba(classifier, joints)
    predictions = probabilities.argmax(axis=1).astype(np.int64)
    confusion = metrics.confusion_matrix(labels, predictions, classifier.num_classes)
    return EvalResult(
        top1=metrics.top1_accuracy(predictions, labels),
        confusion=confusion,
        predictions=predictions,
        probabilities=probabilities,
        per_class_accuracy=metrics.per_class_accuracy(confusion),
    )


# --------------------------------------------------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------------------------------------------------


def classifier_checkpoint(classifier: TrainedClassifier) -> dict:
    """A self-describing checkpoint dict: {format, config, model_config, num_classes, seed, state_dict, history}."""
    return {
        "format": CHECKPOINT_FORMAT,
        "config": asdict(classifier.config),
        "model_config": asdict(classifier.model.config),
        "num_classes": classifier.num_classes,
        "seed": classifier.seed,
        "state_dict": {key: value.detach().cpu() for key, value in classifier.model.state_dict().items()},
        "history": [asdict(stats) for stats in classifier.history],
    }


def classifier_from_checkpoint(checkpoint: dict, device: str = "auto") -> TrainedClassifier:
    """Rebuild a classifier from `classifier_checkpoint` output, on `device` ('auto' picks CUDA when present)."""
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"not a kinemic ST-GCN classifier checkpoint: format {checkpoint.get('format')!r}, "
            f"expected {CHECKPOINT_FORMAT!r}"
        )
    config = ClassifierConfig(**checkpoint["config"])
    model = STGCN(STGCNConfig(**checkpoint["model_config"]))
    model.load_state_dict(checkpoint["state_dict"])  # strict: a mismatch is an error, not a silent partial load
    model.to(resolve_device(device)).eval()
    history = tuple(EpochStats(**stats) for stats in checkpoint["history"])
    return TrainedClassifier(
        model=model, config=config, num_classes=checkpoint["num_classes"], seed=checkpoint["seed"], history=history
    )


def save_classifier(classifier: TrainedClassifier, path: str | Path) -> Path:
    """torch.save the checkpoint dict (tensors and plain types only, so it loads with weights_only=True)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(classifier_checkpoint(classifier), path)
    return path


def load_classifier(path: str | Path, device: str = "auto", stage: str | None = None) -> TrainedClassifier:
    """Load a `save_classifier` file (weights_only=True: no code runs from the file). `stage`, the pipeline stage that
    wrote it: a missing, truncated or corrupt file then names that stage and the command that rebuilds it."""
    path = Path(path)

    def read(file: Path) -> dict:
        return torch.load(file, map_location="cpu", weights_only=True)

    if stage is not None:
        return classifier_from_checkpoint(read_stage_file(path, stage, read, TORCH_READ_ERRORS), device=device)
    if not path.is_file():
        raise FileNotFoundError(f"classifier checkpoint {path} does not exist; train one with train_classifier first")
    return classifier_from_checkpoint(read(path), device=device)
