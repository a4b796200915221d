"""kinemic <-> mmaction2 ST-GCN weights: state-dict conversion and checkpoint files, torch only (no mm import).

Why a conversion at all: the two recognizers hold the same 181 tensors under the same names (module names mirror
PYSKL's) except the classifier head, which kinemic calls `cls_head.fc_cls` (PYSKL's name) and mmaction2 1.x
`cls_head.fc`. Everything else, the graph buffers `A` included, is copied as is, so a converted state dict loads with
`strict=True` on either side.

Conversion is strict too: a key that belongs to neither layout (another backbone, a wrapped `module.` prefix, input
normalisation buffers) is an error naming the keys, not a silently dropped tensor.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path

import torch

from kinemic.classifier import ClassifierConfig, TrainedClassifier
from kinemic.devices import resolve_device
from kinemic.models.stgcn import STGCN

KINEMIC_HEAD = "cls_head.fc_cls."
MMACTION_HEAD = "cls_head.fc."
BACKBONE = "backbone."
MMACTION_FORMAT = "kinemic.stgcn_classifier.mmaction2/1"  # `meta.kinemic_format` of files written here


def _check_keys(state_dict: Mapping[str, torch.Tensor], head: str, other_head: str, expected: str) -> None:
    keys = list(state_dict)
    if any(key.startswith(other_head) for key in keys) and not any(key.startswith(head) for key in keys):
        raise ValueError(
            f"this state dict has the head `{other_head}*`: it is not a {expected} state dict (already converted?)"
        )
    unexpected = [key for key in keys if not key.startswith((BACKBONE, head))]
    if unexpected:
        raise ValueError(
            f"not a {expected} ST-GCN state dict: {len(unexpected)} key(s) outside `{BACKBONE}*` and `{head}*`, "
            f"e.g. {unexpected[:5]}"
        )
    missing = [f"{head}{name}" for name in ("weight", "bias") if f"{head}{name}" not in state_dict]
    if missing:
        raise ValueError(f"not a {expected} ST-GCN state dict: the head tensors {missing} are missing")


def _renamed(state_dict: Mapping[str, torch.Tensor], old: str, new: str) -> dict[str, torch.Tensor]:
    return {(new + key[len(old):] if key.startswith(old) else key): value for key, value in state_dict.items()}


def to_mmaction_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """kinemic `STGCN.state_dict()` -> mmaction2 `RecognizerGCN` state dict (a new dict; tensors are shared)."""
    _check_keys(state_dict, KINEMIC_HEAD, MMACTION_HEAD, "kinemic")
    return _renamed(state_dict, KINEMIC_HEAD, MMACTION_HEAD)


def from_mmaction_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """mmaction2 `RecognizerGCN` state dict (or an mmengine checkpoint dict holding one under `state_dict`) ->
    kinemic `STGCN` state dict (a new dict; tensors are shared)."""
    if "state_dict" in state_dict and isinstance(state_dict["state_dict"], Mapping):
        state_dict = state_dict["state_dict"]
    _check_keys(state_dict, MMACTION_HEAD, KINEMIC_HEAD, "mmaction2")
    return _renamed(state_dict, MMACTION_HEAD, KINEMIC_HEAD)


def classifier_from_mmaction(
    state_dict: Mapping[str, torch.Tensor], config: ClassifierConfig, seed: int = 0, device: str = "auto"
) -> TrainedClassifier:
    """A kinemic classifier (eval mode) holding mmaction2-trained weights; `config` gives width and graph centre.

    The number of classes is read from the head. The graph buffers must equal the ones `config` builds: same shapes
    with another centre would load without complaint and compute something else, so that is checked here.
    """
    converted = from_mmaction_state_dict(state_dict)
    num_classes = int(converted[KINEMIC_HEAD + "weight"].shape[0])
    model = STGCN(config.model_config(num_classes))
    for key, value in model.state_dict().items():
        if key.endswith(".A") and key in converted and converted[key].shape == value.shape:
            if not torch.allclose(converted[key].float().cpu(), value, atol=1e-6):
                raise ValueError(
                    f"{key}: the checkpoint's graph differs from the SMPL-22 graph with centre {config.center}; "
                    "it was trained with another layout or centre (set ClassifierConfig.center to match)"
                )
    model.load_state_dict(converted)  # strict: shapes and names must match exactly
    model.to(resolve_device(device)).eval()
    return TrainedClassifier(model=model, config=config, num_classes=num_classes, seed=seed)


def save_mmaction_checkpoint(classifier: TrainedClassifier, path: str | Path) -> Path:
    """Write the classifier as an mmengine checkpoint (`{meta, state_dict}`), for mmaction2's `load_from=` or
    `mmaction2 tools/test.py <config> <checkpoint>`. `meta` carries the kinemic config to come back with."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state_dict = {key: value.detach().cpu() for key, value in classifier.model.state_dict().items()}
    meta = {
        "kinemic_format": MMACTION_FORMAT,
        "kinemic_config": asdict(classifier.config),
        "num_classes": classifier.num_classes,
        "seed": classifier.seed,
    }
    torch.save({"meta": meta, "state_dict": to_mmaction_state_dict(state_dict)}, path)
    return path


def load_mmaction_checkpoint(
    path: str | Path, config: ClassifierConfig | None = None, device: str = "auto", trusted: bool = False
) -> TrainedClassifier:
    """Read an mmaction2 ST-GCN checkpoint into a kinemic classifier.

    `config` defaults to the one stored by `save_mmaction_checkpoint`; checkpoints written by mmaction2 itself need it
    given. Files are read with `weights_only=True`; mmengine's training checkpoints also pickle Python objects (its
    message hub), which loads only with `trusted=True` (full pickle: only for files you produced or trust).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mmaction2 checkpoint {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=not trusted)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{path} holds Python objects besides tensors (an mmengine training checkpoint?); if you trust the file, "
            f"load it with trusted=True ({err})"
        ) from err
    if not isinstance(checkpoint, Mapping) or not isinstance(checkpoint.get("state_dict"), Mapping):
        raise ValueError(f"{path}: expected an mmengine checkpoint dict with a `state_dict`, got {type(checkpoint)}")
    meta = checkpoint.get("meta") or {}
    seed = int(meta.get("seed", 0)) if isinstance(meta, Mapping) else 0
    if config is None:
        stored = meta.get("kinemic_config") if isinstance(meta, Mapping) else None
        if stored is None:
            raise ValueError(
                f"{path} carries no kinemic config (not written by save_mmaction_checkpoint): pass the "
                "ClassifierConfig it was trained with (base_channels and center matter)"
            )
        config = ClassifierConfig(**stored)
    return classifier_from_mmaction(checkpoint["state_dict"], config, seed=seed, device=device)
