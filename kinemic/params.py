"""Reading `params.yaml` sections into frozen dataclass configs.

Stages read their own section and build configs with `config_from_params`, so a misspelt key fails loudly with the
section and the valid keys named, instead of being silently ignored.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

DEFAULT_PARAMS = Path("params.yaml")


def load_params(path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: params file not found; run stages from the repository root")
    with path.open() as fh:
        params = yaml.safe_load(fh) or {}
    if not isinstance(params, dict):
        raise ValueError(f"{path}: expected a mapping of sections, got {type(params).__name__}")
    return params


def load_section(section: str, path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    """One top-level section of the params file (a dotted name like 'train.lora' walks into nested mappings)."""
    node: Any = load_params(path)
    walked = []
    for key in section.split("."):
        walked.append(key)
        if not isinstance(node, dict) or key not in node:
            raise KeyError(f"{path}: section '{'.'.join(walked)}' is missing")
        node = node[key]
    if not isinstance(node, dict):
        raise ValueError(f"{path}: section '{section}' must be a mapping, got {node!r}")
    return node


def config_from_params(cls: type[T], values: dict[str, Any] | None, section: str) -> T:
    """Build a dataclass config from a params mapping, rejecting keys the config does not know.

    Lists become tuples so frozen configs stay hashable and compare equal to their defaults.
    """
    values = dict(values or {})
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(f"params section '{section}': unknown keys {unknown}; valid keys are {sorted(fields)}")
    converted = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return cls(**converted)


def setup_logging(level: int = logging.INFO) -> None:
    """Logging format for stage scripts (the library only logs; stages decide what is shown)."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
