"""Which implementation trains the downstream classifier (`evaluate.backend`), for stages evaluate and baselines.

Both take the same inputs and return the same `SeedResult`, so metrics files do not depend on the backend's code
path. mmaction2 is imported only when asked for: the core install does not have it (`pip install -e ".[mm]"`).
"""

from __future__ import annotations

from collections.abc import Callable

from kinemic.classifier import EpochStats
from kinemic.evaluation import EvaluateConfig, SeedResult, run_seed
from kinemic.synthetic_set import SyntheticSet
from kinemic.target_set import PreparedTarget


def run_seed_on_backend(target: PreparedTarget, synthetic: SyntheticSet | None, config: EvaluateConfig, seed: int,
                        progress: Callable[[EpochStats], None] | None = None) -> SeedResult:
    """`kinemic.evaluation.run_seed`, or its mmaction2 counterpart when `config.backend` says so."""
    if config.backend == "mmaction2":
        from kinemic.mmaction.backend import run_seed as run_seed_mmaction2

        return run_seed_mmaction2(target, synthetic, config, seed, progress)
    return run_seed(target, synthetic, config, seed, progress)
