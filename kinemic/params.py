"""Reading `params.yaml` sections into frozen dataclass configs.

Stages read their own section and build configs with `config_from_params`, so a misspelt key fails loudly with the
section and the valid keys named, instead of being silently ignored, and a value of the wrong type (`lr: '1e-4'`,
`use_dist: 'no'`) fails there too, instead of deep inside the optimizer or as a silently true flag.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import numbers
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

DEFAULT_PARAMS = Path("params.yaml")


class ParamsLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading floats as YAML 1.2 (DVC's writer) does: `dvc exp run -S train.lr=2.0e-05` writes
    `lr: 2e-05`, which YAML 1.1 would read as text. Quoted values stay text."""


ParamsLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def parse_params(text: str) -> Any:
    """A params file's text as data (see ParamsLoader)."""
    return yaml.load(text, Loader=ParamsLoader)  # noqa: S506 - a SafeLoader subclass


def load_params(path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: params file not found; run stages from the repository root")
    params = parse_params(path.read_text()) or {}
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


def flat_params(params: Mapping, prefix: str = "") -> dict[str, Any]:
    """{'train.seed': 42, ...}: nested params as dotted keys."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flat_params(value, name + "."))
        else:
            out[name] = value
    return out


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
    check_scalar_types(cls, converted, section)
    return cls(**converted)


# What a params value of a field annotated `int`, `float` or `bool` must be (annotations are strings under
# `from __future__ import annotations`). An int is a valid float; a bool is neither, although Python says it is an int.
_SCALAR_KINDS = {
    "int": ("a whole number", lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool)),
    "float": ("a number", lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool)),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
}


def check_scalar_types(cls: type, values: dict[str, Any], section: str) -> None:
    """Reject a value whose dataclass field is annotated int, float or bool but that is not one: `lr: '1e-4'` would
    otherwise pass the config and fail deep inside the optimizer, and `use_dist: 'false'` would count as true."""
    for f in dataclasses.fields(cls):
        annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
        if f.name not in values or annotation not in _SCALAR_KINDS:
            continue
        value = values[f.name]
        kind, valid = _SCALAR_KINDS[annotation]
        if not valid(value):
            raise ValueError(f"{section}.{f.name} must be {kind}, got {value!r}{_string_hint(value)}")


def _string_hint(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    try:
        float(value)
    except ValueError:
        return ""
    return " (text: a number in quotes is a string; write it unquoted, like 1e-4)"


def check_range(section: str, config: object, *, positive: tuple[str, ...] = (),
                non_negative: tuple[str, ...] = ()) -> None:
    """The range checks configs share in `__post_init__`: each field in `positive` > 0, in `non_negative` >= 0."""
    for name in positive + non_negative:
        value = getattr(config, name)
        strict = name in positive
        number = isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isnan(value)
        if not number or value < 0 or (strict and value == 0):
            raise ValueError(f"{section}.{name} must be {'> 0' if strict else '>= 0'}, got {value!r}")


def setup_logging(level: int = logging.INFO) -> None:
    """Logging format for stage scripts (the library only logs; stages decide what is shown)."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")


def stage_parser(doc: str | None) -> argparse.ArgumentParser:
    """A stage's argument parser: its docstring's first paragraph as the description, and `--params` (the params
    file every stage reads). The stage adds its own paths, so they stay visible in the stage file."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    return parser


def parse_stage_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse a stage's arguments and set up its logging: the opening of every stage's main()."""
    args = parser.parse_args(argv)
    setup_logging()
    return args
