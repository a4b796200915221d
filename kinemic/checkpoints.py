"""The pieces every kinemic checkpoint file shares: a format tag, an MDM rebuilt from its own config, normalisation
statistics, and atomic writes. Files hold tensors and plain types only, so they load with `weights_only=True`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from kinemic.io import atomic_file
from kinemic.models.mdm import MDM, MDMConfig
from kinemic.motion import FeatureStats
from kinemic.stage_files import TORCH_READ_ERRORS, read_stage_file


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save to a temporary sibling, then rename: an interrupted write never leaves a truncated file."""
    with atomic_file(path) as tmp:
        torch.save(obj, tmp)


def load_torch_file(path: Path) -> Any:
    """torch.load as every kinemic file is read: onto the CPU, tensors and plain types only (no code runs)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def read_checkpoint(path: Path, fmt: str, missing_hint: str = "", stage: str | None = None) -> dict[str, Any]:
    """Load a checkpoint dict and check its format tag; errors name the file and what to do.

    `stage`, the pipeline stage that writes the file: a missing, truncated or corrupt file then fails as every stage
    output does (`kinemic.stage_files.read_stage_file`), naming the stage and the command that rebuilds it. A file no
    stage writes says `missing_hint` when it is missing.
    """
    path = Path(path)
    if stage is not None:
        data = read_stage_file(path, stage, load_torch_file, TORCH_READ_ERRORS)
    elif not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found; {missing_hint}")
    else:
        data = load_torch_file(path)
    if not isinstance(data, dict) or data.get("format") != fmt:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{path}: not a {fmt} checkpoint (format {found!r})")
    return data


def mdm_to_dict(model: MDM) -> dict[str, Any]:
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    return {"mdm_config": model.config.to_dict(), "state_dict": state}


def mdm_from_dict(data: dict[str, Any], device: str | torch.device = "cpu") -> MDM:
    """The frozen MDM a checkpoint describes, rebuilt from its stored config (never from the caller's params)."""
    model = MDM.from_config(MDMConfig.from_dict(data["mdm_config"]))
    model.load_state_dict(data["state_dict"], strict=True)
    return model.to(device).eval().requires_grad_(False)


def stats_to_dict(stats: FeatureStats) -> dict[str, torch.Tensor]:
    return {"mean": torch.as_tensor(stats.mean), "std": torch.as_tensor(stats.std)}


def stats_from_dict(data: dict[str, torch.Tensor]) -> FeatureStats:
    return FeatureStats(mean=data["mean"].numpy(), std=data["std"].numpy())
