"""How a stage runs: device and precision, the thread count, and the run facts (wall time, platform) kept out of
hashed outputs. Devices and precision are `kinemic.devices`; the embedded default names `cpu` explicitly."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from kinemic.devices import resolve_device

# --------------------------------------------------------------------------------------------------------------------
# threads and run facts
# --------------------------------------------------------------------------------------------------------------------

RUNS_DIR = "runs"
_ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
# the variables that choose numpy's, torch's, MKL's, oneDNN's and OpenBLAS's kernels (stages/__init__.py pins them)
_KERNEL_SETTINGS = ("NPY_DISABLE_CPU_FEATURES", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR",
                    "ONEDNN_MAX_CPU_ISA", "OPENBLAS_CORETYPE", "KINEMIC_CPU_KERNELS")


@dataclass(frozen=True)
class RuntimeConfig:
    """The `runtime` params section. `threads` changes the numbers a training stage produces (reduction order), so
    it is a param that stages depend on, applied before any work, never left to whatever the machine offers."""

    threads: int = 2

    def __post_init__(self) -> None:
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise ValueError(f"runtime.threads must be a whole number >= 1, got {self.threads!r}")


def apply_threads(threads: int) -> None:
    """Use exactly `threads` threads in torch's intra-op pool and in every BLAS/OpenMP library numpy and torch loaded
    (threadpoolctl), and export the usual variables so child processes start with the same count."""
    from threadpoolctl import threadpool_limits

    RuntimeConfig(threads)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    threadpool_limits(threads)
    torch.set_num_threads(threads)


def _cpu_model_and_isa() -> tuple[str, list[str]]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), []
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "")
    flags_line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    flags = set(flags_line.split(":", 1)[1].split()) if ":" in flags_line else set()
    return model or platform.machine(), [flag for flag in _ISA_FLAGS if flag in flags]


def kernel_identity(device: str | torch.device = "cpu") -> str:
    """What, besides its inputs, decides the last digits a forward pass computes here: torch's version and, on a CPU,
    torch's vector level and the kernel variables of `_KERNEL_SETTINGS` (the pins of stages/__init__.py), or the GPU.

    Numbers cached across processes are keyed by it (kinemic.text.cache), so a process never reads another's rounding:
    on an AVX-512 machine, text embeddings cached by an unpinned script (AVX-512 kernels) made the AVX2-pinned `mine`
    stage, and every stage after it, differ from the committed dvc.lock (2026-12-02); encoded by the stage itself they
    matched. The thread count is left out: it does not change the text encoders' numbers (measured).
    """
    device = resolve_device(str(device))
    if device.type == "cuda":
        return f"torch{torch.__version__}-cuda-{torch.cuda.get_device_name(device)}"
    settings = json.dumps({name: os.environ[name] for name in _KERNEL_SETTINGS if name in os.environ}, sort_keys=True)
    pins = hashlib.sha256(settings.encode()).hexdigest()[:8]
    return f"torch{torch.__version__}-{device.type}-{torch.backends.cpu.get_cpu_capability()}-{pins}"


def platform_facts(device: str | torch.device = "cpu") -> dict[str, Any]:
    """What decides the last digits of a training stage's numbers: CPU and ISA, torch's CPU kernel level, the BLAS
    and its kernel, threads, device and versions. Two results are comparable bit for bit only when these agree."""
    import numpy as np
    from numpy.lib.introspect import opt_func_info
    from threadpoolctl import threadpool_info

    model, isa = _cpu_model_and_isa()
    blas = [{key: pool.get(key) for key in ("internal_api", "version", "architecture", "num_threads")}
            for pool in threadpool_info() if pool.get("user_api") == "blas"]
    return {
        "cpu": model,
        "isa": isa,
        "logical_cpus": os.cpu_count(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "blas": blas,
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "device": str(device),
        "cuda_device": torch.cuda.get_device_name(torch.device(device)) if str(device).startswith("cuda") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        # the level numpy's transcendental functions run at: X86_V4 (AVX-512) rounds otherwise (stages/__init__.py)
        "numpy_vector_math": opt_func_info(func_name="^arctan2$")["arctan2"]["ddd"]["current"],
        "kernel_settings": {name: os.environ[name] for name in _KERNEL_SETTINGS if name in os.environ},
    }


class StageRun:
    """The run facts of one stage execution: wall time, platform, and what the stage adds (per-epoch seconds...).

    They go to `runs/<stage>.json` beside the params file: not a DVC output and ignored by git, because a hashed
    output that holds a wall time changes on every run and two identical runs would no longer give the same dvc.lock.
    """

    def __init__(self, stage: str, params_path: str | Path = "params.yaml") -> None:
        from kinemic.params import config_from_params, load_params

        self.stage = stage
        self.path = Path(params_path).resolve().parent / RUNS_DIR / f"{stage}.json"
        self.config = config_from_params(RuntimeConfig, load_params(params_path).get("runtime"), "runtime")
        apply_threads(self.config.threads)
        self.facts: dict[str, Any] = {}
        self._started = time.perf_counter()

    def finish(self, device: str | torch.device = "cpu", **facts: Any) -> dict[str, Any]:
        """Write the record (call once the outputs are in place) and return it."""
        from kinemic.io import write_json

        device = resolve_device(device) if isinstance(device, str) else device
        record = {"stage": self.stage, "wall_seconds": round(time.perf_counter() - self._started, 2),
                  "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "platform": platform_facts(device),
                  **self.facts, **facts}
        write_json(self.path, record)
        return record
