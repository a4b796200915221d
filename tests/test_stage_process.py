"""Process settings every stage makes on import (stages/__init__.py), checked in a fresh interpreter: they act only
when made before numpy loads."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

from stages import AVX2_KERNELS, NUMPY_PORTABLE_MATH, _has_avx2

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import os, stages
from numpy.lib.introspect import opt_func_info
print(repr(os.environ.get("NPY_DISABLE_CPU_FEATURES")))
print(opt_func_info(func_name="^arctan2$")["arctan2"]["ddd"]["current"])
"""
KERNEL_PROBE = """
import json, os, stages, torch
print(json.dumps({name: os.environ.get(name) for name in stages.AVX2_KERNELS}))
print(torch.backends.cpu.get_cpu_capability())
"""
OWN_SETTINGS = ("NPY_DISABLE_CPU_FEATURES", "KINEMIC_CPU_KERNELS", *AVX2_KERNELS)


def _run(probe: str, **env: str) -> list[str]:
    base = {k: v for k, v in os.environ.items() if k not in OWN_SETTINGS}
    return subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env={**base, **env}, capture_output=True,
                          text=True, check=True).stdout.splitlines()


def _probe(**env: str) -> tuple[str, str]:
    out = _run(PROBE, **env)
    return out[0], out[1]


def _kernel_probe(**env: str) -> tuple[dict[str, str | None], str]:
    out = _run(KERNEL_PROBE, **env)
    return json.loads(out[0]), out[1]


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


def test_stages_pin_torch_and_blas_to_their_avx2_kernels_where_the_cpu_has_them():
    """Without the pins an AVX-512 machine's torch, MKL, oneDNN and OpenBLAS run other kernels, so every trained
    weight differs in its last digits from an AVX2 machine's; where the CPU lacks AVX2 they would name kernels it
    cannot run, so nothing is set."""
    pins, capability = _kernel_probe()
    if _has_avx2():
        assert pins == AVX2_KERNELS
        assert capability == "AVX2"
    else:
        assert pins == dict.fromkeys(AVX2_KERNELS)


def test_a_users_own_kernel_setting_wins_and_native_turns_the_pins_off():
    pins, capability = _kernel_probe(ATEN_CPU_CAPABILITY="default")
    assert pins["ATEN_CPU_CAPABILITY"] == "default" and capability == "DEFAULT"
    native, _ = _kernel_probe(KINEMIC_CPU_KERNELS="native")
    assert native == dict.fromkeys(AVX2_KERNELS)


def test_avx2_is_read_from_the_cpu_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse4_2 avx avx2 fma bmi2\n")
    assert _has_avx2(cpuinfo)
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse4_2 avx\n")
    assert not _has_avx2(cpuinfo)
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2\n")  # AVX2 without FMA is not x86-64-v3
    assert not _has_avx2(cpuinfo)
    assert not _has_avx2(tmp_path / "missing")


SCRIPT_PROBE = """
import sys
sys.path.insert(0, {scripts!r})  # what `python scripts/NAME.py` does
import stage_pins, stages, torch
from kinemic.runtime import kernel_identity
print(stages.__file__)
print(torch.backends.cpu.get_cpu_capability())
print(kernel_identity())
"""
STAGE_PROBE = """
import stages, torch
from kinemic.runtime import kernel_identity
print(stages.__file__)
print(torch.backends.cpu.get_cpu_capability())
print(kernel_identity())
"""


def test_a_script_runs_the_stages_kernels_from_any_folder(tmp_path):
    """A script's report card and cached text embeddings are the stage's only under the same kernels: before
    scripts/stage_pins.py, an unpinned script on an AVX-512 machine cached embeddings the pinned `mine` then read."""
    base = {k: v for k, v in os.environ.items() if k not in OWN_SETTINGS}
    script = subprocess.run([sys.executable, "-c", SCRIPT_PROBE.format(scripts=str(ROOT / "scripts"))], cwd=tmp_path,
                            env=base, capture_output=True, text=True, check=True).stdout.splitlines()
    stage = _run(STAGE_PROBE)
    assert Path(script[0]) == ROOT / "stages" / "__init__.py"  # the checkout's stages, wherever the script runs
    assert script[1:] == stage[1:]
    if _has_avx2():
        assert script[1] == "AVX2"


def _imported_modules(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""]
    return []


def test_every_script_takes_the_stage_pins_before_anything_else_loads():
    """The pins act only when set before numpy and torch load, so `import stage_pins` is each script's first import
    (kernel_fingerprint.py imports `stages` itself, after reading --native)."""
    for path in sorted((ROOT / "scripts").glob("*.py")):
        if path.name in ("stage_pins.py", "kernel_fingerprint.py"):
            continue
        imports = [module for node in ast.parse(path.read_text()).body for module in _imported_modules(node)
                   if module != "__future__"]
        assert imports[:1] == ["stage_pins"], f"{path.name}: first import {imports[:1]}, not stage_pins"
