"""The kernel fingerprint: stable for one kernel choice, and moved by a change of any library's kernels."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from stages import AVX2_KERNELS

ROOT = Path(__file__).resolve().parents[1]


def _fingerprint(**env: str) -> list[str]:
    base = {k: v for k, v in os.environ.items() if k not in (*AVX2_KERNELS, "KINEMIC_CPU_KERNELS")}
    done = subprocess.run([sys.executable, "scripts/kernel_fingerprint.py", "--threads", "1"], cwd=ROOT,
                          env={**base, **env}, capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


def test_the_fingerprint_is_stable_and_names_the_kernels():
    first, second = _fingerprint(), _fingerprint()
    assert first[0] == second[0] and len(first[0]) == 64
    assert any(line.strip().startswith("torch_cpu_capability:") for line in first)
    assert any(line.strip().startswith("kernel_settings:") for line in first)


def test_other_torch_kernels_give_another_fingerprint():
    """torch's generic (non-vectorised) kernels round its elementwise math otherwise: the fingerprint must see it (on
    a CPU whose torch already runs the generic kernels, the two runs are the same run and must agree)."""
    pinned, generic = _fingerprint(), _fingerprint(ATEN_CPU_CAPABILITY="default")
    capability = next(line.split(":", 1)[1].strip() for line in pinned if "torch_cpu_capability:" in line)
    assert (pinned[0] == generic[0]) == (capability == "DEFAULT")
