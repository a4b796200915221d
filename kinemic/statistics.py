"""Statistics that can tell methods apart: bootstrap intervals over seeds, paired differences, gap closure.

A result of the downstream protocol is a table of top-1 accuracies, one per (generator seed, classifier seed): the
generator (student training + sampling) is one source of spread, the classifier's seed another. Every method's
classifiers use the same seeds on the same test set, so results are *paired* on the classifier seed: a difference
between two methods is computed seed by seed, which removes the spread that both share (the same seed draws the same
clip order, crops and initialisation).

Intervals are percentile bootstraps. One resample draws the classifier seeds once, with replacement, shared by every
table in the comparison (the pairing), and each table's generator seeds independently (generators of two methods are
not paired). With one generator per method this is the ordinary paired bootstrap over classifier seeds. With five
seeds an interval is coarse, and that is the point: a difference whose interval contains zero is a tie.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

# generator seed -> classifier seed -> top-1. A run with one generator is {generator_seed: per_seed}.
Table = Mapping[int, Mapping[int, float]]

CONFIDENCE = 0.95
RESAMPLES = 10_000


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap interval."""

    estimate: float
    low: float
    high: float

    @property
    def contains_zero(self) -> bool:
        return self.low <= 0.0 <= self.high

    def to_metrics(self, key: str) -> dict[str, float]:
        """Flat keys for metrics JSON: `key`, `key.ci_low`, `key.ci_high`."""
        return {key: self.estimate, f"{key}.ci_low": self.low, f"{key}.ci_high": self.high}


def as_grid(table: Table) -> tuple[np.ndarray, list[int]]:
    """The table as an array (generators, classifier seeds) and its sorted classifier seeds; every generator must
    have been evaluated with the same seeds (the paired design)."""
    if not table:
        raise ValueError("an accuracy table needs at least one generator seed")
    seeds = sorted(next(iter(table.values())))
    for generator, per_seed in table.items():
        if sorted(per_seed) != seeds:
            raise ValueError(f"generator seed {generator} was evaluated with classifier seeds {sorted(per_seed)}, "
                             f"others with {seeds}: every run must use the same evaluate.seeds")
    if not seeds:
        raise ValueError("an accuracy table needs at least one classifier seed")
    return np.array([[table[g][s] for s in seeds] for g in sorted(table)], dtype=np.float64), seeds


def bootstrap(tables: Sequence[Table], statistic: Callable[[np.ndarray], float], confidence: float = CONFIDENCE,
              resamples: int = RESAMPLES, seed: int = 0) -> Interval:
    """Percentile interval of `statistic(means)`, where `means[i]` is table i's mean accuracy (see module docstring
    for what one resample draws). The estimate is the statistic of the observed means."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    grids = [as_grid(table) for table in tables]
    seeds = grids[0][1]
    for _, other in grids[1:]:
        if other != seeds:
            raise ValueError(f"paired comparison needs the same classifier seeds everywhere: {seeds} vs {other}")
    arrays = [grid for grid, _ in grids]
    estimate = float(statistic(np.array([a.mean() for a in arrays])))
    rng = np.random.default_rng(seed)
    cols = rng.integers(0, len(seeds), size=(resamples, len(seeds)))  # (R, S): shared by all tables
    means = np.empty((resamples, len(arrays)))
    for i, array in enumerate(arrays):
        rows = rng.integers(0, array.shape[0], size=(resamples, array.shape[0]))  # (R, G)
        means[:, i] = array[rows[:, :, None], cols[:, None, :]].mean(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.array([statistic(m) for m in means])
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return Interval(estimate, float("nan"), float("nan"))
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return Interval(estimate, float(low), float(high))


def mean_interval(table: Table, **options) -> Interval:
    """Mean top-1 with its interval."""
    return bootstrap([table], lambda m: m[0], **options)


def paired_difference(method: Table, baseline: Table, **options) -> Interval:
    """Mean top-1 of `method` minus `baseline`'s, paired on the classifier seed."""
    return bootstrap([method, baseline], lambda m: m[0] - m[1], **options)


def gap_closure(method: Table, real_only: Table, all_real: Table, **options) -> Interval:
    """(method - real only) / (all real - real only): the share of the gap to full supervision that the method
    closes, comparable across benchmarks (the paper's KineMIC row: (87.2 - 63.1) / (97.1 - 63.1) = 0.71)."""
    real, full = as_grid(real_only)[0].mean(), as_grid(all_real)[0].mean()
    if not full > real:
        raise ValueError(f"gap closure needs all-real accuracy above real-only, got {full:.4f} <= {real:.4f}")
    return bootstrap([method, real_only, all_real], lambda m: (m[0] - m[1]) / (m[2] - m[1]), **options)


@dataclass(frozen=True)
class SpreadSources:
    """Standard deviations of one method's accuracy from the generator seed and from the classifier seed.

    Two-way ANOVA without replication over the (generator, classifier seed) grid, the seeds crossed: the generator
    part is what moves every classifier seed's accuracy together (0 when it cannot be told from noise, NaN with one
    generator); the classifier part is the seed effect plus the residual, what one more classifier seed would vary.
    """

    generator_std: float
    classifier_std: float
    generators: int
    classifier_seeds: int


def spread_sources(table: Table) -> SpreadSources:
    grid, _ = as_grid(table)
    generators, seeds = grid.shape
    if generators < 2:
        std = float(grid[0].std(ddof=1)) if seeds > 1 else float("nan")
        return SpreadSources(float("nan"), std, generators, seeds)
    if seeds < 2:
        return SpreadSources(float(grid[:, 0].std(ddof=1)), float("nan"), generators, seeds)
    mean, rows, cols = grid.mean(), grid.mean(axis=1), grid.mean(axis=0)
    ms_generator = seeds * float(((rows - mean) ** 2).sum()) / (generators - 1)
    ms_seed = generators * float(((cols - mean) ** 2).sum()) / (seeds - 1)
    residual = grid - rows[:, None] - cols[None, :] + mean
    ms_residual = float((residual**2).sum()) / ((generators - 1) * (seeds - 1))
    var_generator = max((ms_generator - ms_residual) / seeds, 0.0)
    var_seed = max((ms_seed - ms_residual) / generators, 0.0)
    return SpreadSources(float(np.sqrt(var_generator)), float(np.sqrt(var_seed + ms_residual)), generators, seeds)


def compare_with_baselines(per_seed: Mapping[int, float], baselines: Mapping[str, float]) -> dict[str, float]:
    """The 95 % bootstrap interval of the mean top-1, the paired difference to real data only, and the gap closure
    (method - real only) / (all real - real only), all paired on the classifier seeds (kinemic.statistics)."""
    seeds = sorted(per_seed)
    reference = {}
    for name in ("real_only", "all_real"):
        missing = [s for s in seeds if f"{name}.seed_{s}" not in baselines]
        if missing:
            raise ValueError(f"the baselines have no {name} accuracy for seeds {missing}: re-run stage `baselines` "
                             "with the same evaluate.seeds")
        reference[name] = {0: {s: float(baselines[f"{name}.seed_{s}"]) for s in seeds}}
    method = {0: {s: float(per_seed[s]) for s in seeds}}
    out = mean_interval(method).to_metrics("top1.mean")
    out.update(paired_difference(method, reference["real_only"]).to_metrics("vs_real_only"))
    out.update({f"{name}.mean": float(np.mean(list(table[0].values()))) for name, table in reference.items()})
    try:
        out.update(gap_closure(method, reference["real_only"], reference["all_real"]).to_metrics("gap_closure"))
    except ValueError as err:  # all real no better than real only: the gap is undefined (keys left out), not zero
        logger.warning("no gap closure: %s", err)
    return out
