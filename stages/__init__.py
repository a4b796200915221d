"""Thin DVC stage entry points. dvc.yaml runs them as `python -m stages.<name>` from the checkout root, so a stage
imports the `kinemic` of the checkout it runs in (a queued experiment its own copy), never the editable install's.

Process settings every stage shares, made before a stage imports anything heavy; none changes a result:
- OpenMP threads sleep instead of spinning while they wait. Measured by benchmarks/bench_threads.py on 2 cores
  (embedded teacher step): beside one busy process 537 ms instead of 890, at the price of 298 ms instead of 262 on an
  idle machine. A user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins (`GOMP_SPINCOUNT=300000` restores libgomp's
  spinning default on a dedicated machine).
- Third-party libraries log warnings only: their INFO lines (matplotlib's category units, sentence-transformers'
  model loading) buried the stages' own output.

Settings that do change results, on purpose: every library that picks its kernels by CPU runs its AVX2 (x86-64-v3)
kernels on every CPU that has them, so an AVX-512 machine computes what an AVX2 one does (`AVX2_KERNELS`):
- numpy's vector math (`NPY_DISABLE_CPU_FEATURES`, set on every CPU): numpy ships AVX-512 (X86_V4) versions of
  arctan2, arccos, power, exp2 and other transcendental functions that round differently in the last digit; with them
  an AVX-512 machine wrote another synthetic world than an AVX2 one (same params, same packages), and the released
  teacher's prior check refused it;
- torch's vectorised kernels (`ATEN_CPU_CAPABILITY`), its BLAS (MKL: `MKL_ENABLE_INSTRUCTIONS`), its convolutions
  (oneDNN: `ONEDNN_MAX_CPU_ISA`) and numpy's and scipy's BLAS and LAPACK (OpenBLAS: `OPENBLAS_CORETYPE`, FID's
  sqrtm): set only on a CPU with AVX2 and FMA, where they name the kernels the CPU runs anyway unless it has AVX-512
  (measured on the AVX2 machine: every output of `dvc repro` byte-identical with and without them). Not MKL_CBWR:
  on a non-Intel CPU its AVX2 branch falls back to MKL's reproducibility mode for that CPU, which changed the teacher's
  previews on the AVX2 (AMD) machine and pins no ISA there.
A value of your own wins, name by name (an empty NPY_DISABLE_CPU_FEATURES: every level the CPU has);
KINEMIC_CPU_KERNELS=native leaves all but numpy's to the libraries, for speed on an AVX-512 machine at the price of
its own last digits.
"""

import logging
import os
from pathlib import Path

# numpy 2.4's names of the dispatch levels above AVX2; unknown to a CPU, they are ignored
NUMPY_PORTABLE_MATH = "X86_V4 AVX512_ICL AVX512_SPR"
# each library's name for its AVX2 kernels; they exist only where the CPU has AVX2 and FMA (`_has_avx2`)
AVX2_KERNELS = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "OPENBLAS_CORETYPE": "Haswell",
}


def _has_avx2(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU has AVX2 and FMA (Linux; elsewhere False, and the libraries choose for themselves)."""
    try:
        flags_line = next((line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        return False
    flags = set(flags_line.partition(":")[2].split())
    return {"avx2", "fma"} <= flags


os.environ.setdefault("NPY_DISABLE_CPU_FEATURES", NUMPY_PORTABLE_MATH)
if os.environ.get("KINEMIC_CPU_KERNELS") != "native" and _has_avx2():
    for _name, _value in AVX2_KERNELS.items():
        os.environ.setdefault(_name, _value)

if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
for _name in ("matplotlib", "sentence_transformers", "transformers", "peft", "PIL"):
    logging.getLogger(_name).setLevel(logging.WARNING)
