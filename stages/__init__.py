"""Thin DVC stage entry points. dvc.yaml runs them as `python -m stages.<name>` from the checkout root, so a stage
imports the `kinemic` of the checkout it runs in (a queued experiment its own copy), never the editable install's.

Process settings every stage shares, made before a stage imports anything heavy; none changes a result:
- OpenMP threads sleep instead of spinning while they wait. Measured by benchmarks/bench_threads.py on 2 cores
  (embedded teacher step): beside one busy process 537 ms instead of 890, at the price of 298 ms instead of 262 on an
  idle machine. A user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins (`GOMP_SPINCOUNT=300000` restores libgomp's
  spinning default on a dedicated machine).
- Third-party libraries log warnings only: their INFO lines (matplotlib's category units, sentence-transformers'
  model loading) buried the stages' own output.
"""

import logging
import os

if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
for _name in ("matplotlib", "sentence_transformers", "transformers", "peft", "PIL"):
    logging.getLogger(_name).setLevel(logging.WARNING)
