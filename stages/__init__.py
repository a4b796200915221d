"""Thin DVC stage entry points. dvc.yaml runs them as `python -m stages.<name>` from the checkout root, so a stage
imports the `kinemic` of the checkout it runs in (a queued experiment its own copy), never the editable install's.

Process settings every stage shares, made before a stage imports anything heavy; none changes a result:
- OpenMP threads sleep instead of spinning while they wait. Measured by benchmarks/bench_threads.py on 2 cores
  (embedded teacher step): beside one busy process 537 ms instead of 890, at the price of 298 ms instead of 262 on an
  idle machine. A user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins (`GOMP_SPINCOUNT=300000` restores libgomp's
  spinning default on a dedicated machine).
- Third-party libraries log warnings only: their INFO lines (matplotlib's category units, sentence-transformers'
  model loading) buried the stages' own output.

One setting that does change results, on purpose: numpy's vector math stays at the AVX2 level (x86-64-v3) on every
CPU (`NUMPY_PORTABLE_MATH`). numpy ships AVX-512 (X86_V4) versions of arctan2, arccos, power, exp2 and
other transcendental functions that round differently in the last digit; with them an AVX-512 machine wrote another
synthetic world than an AVX2 one (same params, same packages), and the released teacher's prior check refused it.
Set NPY_DISABLE_CPU_FEATURES yourself to choose otherwise (an empty value: every level the CPU has).
"""

import logging
import os

# numpy 2.4's names of the dispatch levels above AVX2; unknown to a CPU, they are ignored
NUMPY_PORTABLE_MATH = "X86_V4 AVX512_ICL AVX512_SPR"
os.environ.setdefault("NPY_DISABLE_CPU_FEATURES", NUMPY_PORTABLE_MATH)

if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
for _name in ("matplotlib", "sentence_transformers", "transformers", "peft", "PIL"):
    logging.getLogger(_name).setLevel(logging.WARNING)
