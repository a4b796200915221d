"""Process settings every stage makes on import (stages/__init__.py), checked in a fresh interpreter: they act only
when made before numpy loads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from stages import NUMPY_PORTABLE_MATH

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import os, stages
from numpy.lib.introspect import opt_func_info
print(repr(os.environ.get("NPY_DISABLE_CPU_FEATURES")))
print(opt_func_info(func_name="^arctan2$")["arctan2"]["ddd"]["current"])
"""


def _probe(**env: str) -> tuple[str, str]:
    base = {k: v for k, v in os.environ.items() if k != "NPY_DISABLE_CPU_FEATURES"}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env={**base, **env}, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    return out[0], out[1]


def test_stages_keep_numpy_math_below_avx512():
    """On an AVX-512 machine arctan2 would otherwise run its X86_V4 kernel, which rounds differently."""
    disabled, arctan2 = _probe()
    assert disabled == repr(NUMPY_PORTABLE_MATH)
    assert "X86_V4" not in arctan2 and "AVX512" not in arctan2


def test_the_pinned_numpy_knows_the_levels_the_pin_names():
    """Before numpy 2.4 the AVX-512 level is not called X86_V4: the pin would name nothing and AVX-512 kernels would
    stay on (numpy only warns about an unknown name), so pyproject.toml requires numpy >= 2.4."""
    import numpy as np

    major, minor = (int(part) for part in np.__version__.split(".")[:2])
    assert (major, minor) >= (2, 4)
    requirement = next(line for line in (ROOT / "pyproject.toml").read_text().splitlines() if '"numpy' in line)
    assert ">=2.4" in requirement


def test_a_users_own_numpy_setting_wins():
    assert _probe(NPY_DISABLE_CPU_FEATURES="")[0] == repr("")
