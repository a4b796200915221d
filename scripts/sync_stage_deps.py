"""Rewrite the code deps of every stage in dvc.yaml from its imports (kinemic.stage_deps); `--check` only reports.

    python scripts/sync_stage_deps.py [--check]

Run it after moving or adding a module; the pipeline tests fail until dvc.yaml matches.
"""

from __future__ import annotations

import stage_pins  # noqa: F401  (the stages' kernel pins, before numpy and torch load)

# isort: split
import argparse
import difflib
import sys
from pathlib import Path

from kinemic.stage_deps import synced_dvc_yaml

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="print the difference and exit 1 if there is one")
    args = parser.parse_args(argv)
    path = ROOT / "dvc.yaml"
    text = path.read_text()
    synced = synced_dvc_yaml(ROOT, text)
    if synced == text:
        print("dvc.yaml: code deps match the imports")
        return 0
    if args.check:
        sys.stdout.writelines(difflib.unified_diff(text.splitlines(True), synced.splitlines(True), "dvc.yaml",
                                                   "dvc.yaml (synced)"))
        return 1
    path.write_text(synced)
    print("dvc.yaml: code deps rewritten from the imports")
    return 0


if __name__ == "__main__":
    sys.exit(main())
