"""Thin DVC stage entry points. dvc.yaml runs them as `python -m stages.<name>` from the checkout root, so a stage
imports the `kinemic` of the checkout it runs in (a queued experiment its own copy), never the editable install's.

Process settings every stage shares, made before a stage imports anything heavy; none changes a result:
- OpenMP threads sleep instead of spinning while they wait: on a shared 2-core machine spinning threads made a stage
  several times slower beside one busy process (benchmarks/bench_threads.py). An OMP_WAIT_POLICY set by the user wins.
- Third-party libraries log warnings only: their INFO lines (matplotlib's category units, sentence-transformers'
  model loading) buried the stages' own output.
"""

import logging
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
for _name in ("matplotlib", "sentence_transformers", "transformers", "peft", "PIL"):
    logging.getLogger(_name).setLevel(logging.WARNING)
