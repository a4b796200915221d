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

A benchmark with several few-shot draws (which 10 real clips per class the method sees) adds a third level above
the generator: every method runs on the same draws, so draws are paired too. One resample then draws the few-shot
draws with replacement, shared by every table, and inside each drawn draw resamples as above; a table's mean is the
mean over draws of its draw means. The spread between draws is often the largest: one split decides a 3-class result.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

# generator seed -> classifier seed -> top-1. A run with one generator is {generator_seed: per_seed}.
Table = Mapping[int, Mapping[int, float]]
# few-shot draw -> Table: a benchmark over several draws. Every function below takes either; a Table is one draw.
DrawTable = Mapping[int, Table]

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


def as_draws(table: Table | DrawTable) -> DrawTable:
    """A DrawTable as it is, a Table as the one draw 0 (told apart by depth: a Table's values hold numbers)."""
    if not table:
        raise ValueError("an accuracy table needs at least one generator seed")
    inner = next(iter(table.values()))
    if isinstance(inner, Mapping) and inner and isinstance(next(iter(inner.values())), Mapping):
        return table  # type: ignore[return-value]
    return {0: table}  # type: ignore[dict-item]


def draw_means(table: Table | DrawTable) -> np.ndarray:
    """Each few-shot draw's mean top-1, in draw order."""
    draws = as_draws(table)
    return np.array([as_grid(draws[d])[0].mean() for d in sorted(draws)])


def bootstrap(tables: Sequence[Table | DrawTable], statistic: Callable[[np.ndarray], float],
              confidence: float = CONFIDENCE, resamples: int = RESAMPLES, seed: int = 0) -> Interval:
    """Percentile interval of `statistic(means)`, where `means[i]` is table i's mean accuracy over draws (see module
    docstring for what one resample draws). The estimate is the statistic of the observed means."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    benchmark = [as_draws(table) for table in tables]
    draws = sorted(benchmark[0])
    for other in benchmark[1:]:
        if sorted(other) != draws:
            raise ValueError(f"paired comparison needs the same few-shot draws everywhere: {draws} vs {sorted(other)}")
    arrays = {}
    for draw in draws:
        grids = [as_grid(table[draw]) for table in benchmark]
        seeds = grids[0][1]
        for _, other in grids[1:]:
            if other != seeds:
                raise ValueError(f"paired comparison needs the same classifier seeds everywhere: {seeds} vs {other}")
        arrays[draw] = [grid for grid, _ in grids]
    estimate = float(statistic(np.array([np.mean([arrays[d][i].mean() for d in draws])
                                         for i in range(len(benchmark))])))
    rng = np.random.default_rng(seed)
    # (R, D): which draw fills each of the D places; shared by all tables. One draw consumes no random numbers,
    # so a single-draw table gets exactly the two-level bootstrap.
    picks = rng.integers(0, len(draws), size=(resamples, len(draws))) if len(draws) > 1 else \
        np.zeros((resamples, 1), dtype=np.int64)
    means = np.zeros((resamples, len(benchmark)))
    for place in range(len(draws)):
        for index, draw in enumerate(draws):
            chosen = picks[:, place] == index
            seeds = arrays[draw][0].shape[1]
            cols = rng.integers(0, seeds, size=(resamples, seeds))  # (R, S): shared by all tables
            for i, array in enumerate(arrays[draw]):
                rows = rng.integers(0, array.shape[0], size=(resamples, array.shape[0]))  # (R, G)
                means[:, i] += np.where(chosen, array[rows[:, :, None], cols[:, None, :]].mean(axis=(1, 2)), 0.0)
    means /= len(draws)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.array([statistic(m) for m in means])
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return Interval(estimate, float("nan"), float("nan"))
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return Interval(estimate, float(low), float(high))


def mean_interval(table: Table | DrawTable, **options) -> Interval:
    """Mean top-1 with its interval."""
    return bootstrap([table], lambda m: m[0], **options)


def paired_difference(method: Table | DrawTable, baseline: Table | DrawTable, **options) -> Interval:
    """Mean top-1 of `method` minus `baseline`'s, paired on the classifier seed (and the few-shot draw)."""
    return bootstrap([method, baseline], lambda m: m[0] - m[1], **options)


def gap_closure(method: Table | DrawTable, real_only: Table | DrawTable, all_real: Table | DrawTable,
                **options) -> Interval:
    """(method - real only) / (all real - real only): the share of the gap to full supervision that the method
    closes, comparable across benchmarks (the paper's KineMIC row: (87.2 - 63.1) / (97.1 - 63.1) = 0.71)."""
    real, full = draw_means(real_only).mean(), draw_means(all_real).mean()
    if not full > real:
        raise ValueError(f"gap closure needs all-real accuracy above real-only, got {full:.4f} <= {real:.4f}")
    return bootstrap([method, real_only, all_real], lambda m: (m[0] - m[1]) / (m[2] - m[1]), **options)


@dataclass(frozen=True)
class SpreadSources:
    """Standard deviations of one method's accuracy from the generator seed, the classifier seed and the few-shot draw.

    Two-way ANOVA without replication over the (generator, classifier seed) grid, the seeds crossed: the generator
    part is what moves every classifier seed's accuracy together (0 when it cannot be told from noise, NaN with one
    generator); the classifier part is the seed effect plus the residual, what one more classifier seed would vary.
    With several few-shot draws both are pooled over draws (root mean variance, unweighted, over the draws that can
    estimate them: a draw with one generator has no generator part), `generators` is the most any draw has, and the
    draw part is the standard deviation of the draw means (NaN with one draw), which still holds the other two's noise.
    """

    generator_std: float
    classifier_std: float
    generators: int
    classifier_seeds: int
    draw_std: float = float("nan")
    draws: int = 1


def _grid_sources(grid: np.ndarray) -> SpreadSources:
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


def spread_sources(table: Table | DrawTable) -> SpreadSources:
    draws = as_draws(table)
    per_draw = [_grid_sources(as_grid(draws[d])[0]) for d in sorted(draws)]
    if len(per_draw) == 1:
        return per_draw[0]

    def pooled(values: list[float]) -> float:
        """Root mean square over the draws that can estimate it (a draw with one generator has no generator spread)."""
        known = [v for v in values if np.isfinite(v)]
        return float(np.sqrt(np.mean(np.square(known)))) if known else float("nan")

    return SpreadSources(pooled([s.generator_std for s in per_draw]), pooled([s.classifier_std for s in per_draw]),
                         max(s.generators for s in per_draw), per_draw[0].classifier_seeds,
                         draw_std=float(draw_means(draws).std(ddof=1)), draws=len(per_draw))


def compare_with_baselines(per_seed: Mapping[int, float], baselines: Mapping[str, float]) -> dict[str, float]:
    """The 95 % bootstrap interval of the mean top-1, the paired difference to real data only, and the gap closure
    (method - real only) / (all real - real only), all paired on the classifier seeds (kinemic.statistics)."""
    seeds = sorted(per_seed)
    reference = {}
    for name in ("real_only", "all_real"):
        missing = [s for s in seeds if f"{name}.seed_{s}" not in baselines]
        if missing:
            raise ValueError(f"the baselines have no {name} accuracy for seeds {missing}: re-run stage "
                             f"`baseline_{name}` with the same evaluate.seeds")
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
