"""Parameter profiles: named sets of overrides for params.yaml (the embedded default vs the paper protocol).

    python -m kinemic.profiles list
    python -m kinemic.profiles show paper
    python -m kinemic.profiles apply paper [--params params.yaml]
    dvc exp run $(python -m kinemic.profiles args benchmark) -S prepare_target.seed=1

`apply` writes the overrides into params.yaml in place (comments and key order are kept, via ruamel.yaml), so the
switch is an ordinary params change: `dvc params diff` lists it, `dvc repro` / `dvc exp run` run what it affects, and
`git checkout params.yaml` undoes it. A key the profile names must already exist in params.yaml, so a typo fails.
`args` prints the same change as `dvc exp run -S key=value` options instead, for an experiment that leaves the
workspace's params.yaml alone (one option per changed value, JSON-written so DVC's override grammar reads it back).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from kinemic.params import flat_params, parse_params

PROFILES_DIR = Path(__file__).resolve().parents[1] / "profiles"


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap the user's lines
    return yaml


def profile_path(name: str, root: Path = PROFILES_DIR) -> Path:
    path = root / f"{name}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in root.glob("*.yaml"))
        raise FileNotFoundError(f"no profile {name!r} in {root}; available: {available}")
    return path


def overrides(name: str, root: Path = PROFILES_DIR) -> dict[str, Any]:
    return _yaml().load(profile_path(name, root).read_text()) or {}


def merge(params: dict, changes: dict, where: str = "") -> list[str]:
    """Apply `changes` to `params` in place; mappings merge key by key, anything else replaces. Returns changed keys."""
    changed = []
    for key, value in changes.items():
        dotted = f"{where}{key}"
        if key not in params:
            raise KeyError(f"profile sets '{dotted}', which params.yaml does not have")
        if isinstance(value, dict) and isinstance(params[key], dict) and key_is_section(dotted):
            changed += merge(params[key], value, f"{dotted}.")
        elif params[key] != value:
            params[key] = value
            changed.append(dotted)
    return changed


NESTED_SECTIONS = ("synthetic.prior", "synthetic.target", "synthetic.previews")  # the world's parts, merged too


def key_is_section(dotted: str) -> bool:
    """Top-level sections (and the embedded world's parts) merge; values that are themselves mappings
    (e.g. teacher.text) are replaced whole."""
    return "." not in dotted or dotted in NESTED_SECTIONS


def apply(name: str, params_path: Path, root: Path = PROFILES_DIR) -> list[str]:
    yaml = _yaml()
    params = yaml.load(params_path.read_text())
    changed = merge(params, overrides(name, root))
    with params_path.open("w") as fh:
        yaml.dump(params, fh)
    return changed


def profiled_params(name: str, params_path: Path, root: Path = PROFILES_DIR) -> dict[str, Any]:
    """The params `apply` would write, as plain data; the file is left alone."""
    return _with_profile(parse_params(params_path.read_text()), name, root)


def _with_profile(params: dict[str, Any], name: str, root: Path) -> dict[str, Any]:
    merged = json.loads(json.dumps(params))  # a deep copy: the caller's dict stays as read
    merge(merged, json.loads(json.dumps(overrides(name, root))))
    return merged


def override_text(value: Any) -> str:
    """A value as DVC's (hydra's) override grammar reads it back: JSON, with floats always written as floats (hydra
    reads `2e-05` as a string, `2.0e-05` as a number)."""
    if isinstance(value, float):
        text = repr(value)
        mantissa, _, exponent = text.partition("e")
        return f"{mantissa}.0e{exponent}" if exponent and "." not in mantissa else text
    return json.dumps(value, separators=(",", ":"))


def dvc_set_args(name: str, params_path: Path, root: Path = PROFILES_DIR) -> list[str]:
    """`-S key=value` options for `dvc exp run` that make the experiment's params what `apply` would write."""
    params = parse_params(params_path.read_text())
    old, new = flat_params(params), flat_params(_with_profile(params, name, root))
    dropped = sorted(old.keys() - new.keys())
    if dropped:
        raise ValueError(f"profile {name!r} replaces a mapping and drops {dropped}, which `-S` cannot express: "
                         f"use `python -m kinemic.profiles apply {name}` instead")
    options = []
    for key, value in new.items():
        if key in old and old[key] == value:
            continue
        text = override_text(value)
        if any(c.isspace() for c in text):
            raise ValueError(f"profile {name!r} sets {key} to {value!r}, whose spaces a shell's $(...) would split: "
                             f"use `python -m kinemic.profiles apply {name}` instead")
        options += ["-S", f"{'' if key in old else '+'}{key}={text}"]  # '+': a key params.yaml lacks (hydra)
    return options


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m kinemic.profiles", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("list", "show", "apply", "args"))
    parser.add_argument("name", nargs="?")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    if args.command == "list":
        print("\n".join(sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))))
        return
    if not args.name:
        parser.error(f"{args.command} needs a profile name")
    if args.command == "show":
        sys.stdout.write(profile_path(args.name).read_text())
        return
    if args.command == "args":
        print(" ".join(dvc_set_args(args.name, args.params)))
        return
    changed = apply(args.name, args.params)
    print(f"{args.params}: {len(changed)} value(s) changed by profile {args.name!r}:")
    print("\n".join(f"  {key}" for key in changed))


if __name__ == "__main__":
    main()
