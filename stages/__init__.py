"""Thin DVC stage entry points. dvc.yaml runs them as `python -m stages.<name>` from the checkout root, so a stage
imports the `kinemic` of the checkout it runs in (a queued experiment its own copy), never the editable install's.

OpenMP threads sleep instead of spinning while they wait (set before any stage imports torch): on a shared 2-core
machine spinning threads made a stage several times slower beside one busy process (benchmarks/bench_threads.py).
The policy changes timing only, never results; an OMP_WAIT_POLICY set by the user wins.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
