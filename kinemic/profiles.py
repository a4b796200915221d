"""Parameter profiles: named sets of overrides for params.yaml (the embedded default vs the paper protocol).

    python -m kinemic.profiles list
    python -m kinemic.profiles show paper
    python -m kinemic.profiles apply paper [--params params.yaml]

`apply` writes the overrides into params.yaml in place (comments and key order are kept, via ruamel.yaml), so the
switch is an ordinary params change: `dvc params diff` lists it, `dvc repro` / `dvc exp run` run what it affects, and
`git checkout params.yaml` undoes it. A key the profile names must already exist in params.yaml, so a typo fails.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

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


def key_is_section(dotted: str) -> bool:
    """Top-level sections merge; values that are themselves mappings (e.g. teacher.text) are replaced whole."""
    return "." not in dotted


def apply(name: str, params_path: Path, root: Path = PROFILES_DIR) -> list[str]:
    yaml = _yaml()
    params = yaml.load(params_path.read_text())
    changed = merge(params, overrides(name, root))
    with params_path.open("w") as fh:
        yaml.dump(params, fh)
    return changed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m kinemic.profiles", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("list", "show", "apply"))
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
    changed = apply(args.name, args.params)
    print(f"{args.params}: {len(changed)} value(s) changed by profile {args.name!r}:")
    print("\n".join(f"  {key}" for key in changed))


if __name__ == "__main__":
    main()
