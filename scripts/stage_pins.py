"""The DVC stages' process settings for a script: every script imports this first, before numpy and torch load.

A script computes what the stages compute (the teacher's report card, a released checkpoint, the text embeddings the
stages cache), so it runs their kernels: without the pins of stages/__init__.py an AVX-512 machine scored the
released teacher with other last digits than the `teacher` stage, and its text embeddings went to another folder of
the cache (kinemic.runtime.kernel_identity), encoded a second time. `python scripts/NAME.py` puts scripts/ first on
sys.path, so `import stage_pins` finds this file, which puts the checkout on sys.path and imports `stages`: the same
settings, with the same overrides (a variable of your own wins; KINEMIC_CPU_KERNELS=native leaves the kernels to the
libraries). A process that has already loaded numpy gets the variables but not numpy's pin.
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import stages  # noqa: E402, F401
