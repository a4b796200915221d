"""Load a file of scripts/ or benchmarks/ as a module, so tests can call its functions (neither folder is a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def load_module(relative: str) -> ModuleType:
    """The module of `REPO / relative` (e.g. "scripts/teacher_card.py"), executed afresh. Its folder goes on sys.path,
    as `python scripts/NAME.py` puts it, so a script's `import stage_pins` resolves."""
    path = REPO / relative
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
