"""Bootstrap intervals, paired differences, gap closure and spread sources on hand-built accuracy tables."""

from __future__ import annotations

import numpy as np
import pytest

from kinemic.statistics import (
    as_grid,
    gap_closure,
    mean_interval,
    paired_difference,
    spread_sources,
)

SEEDS = (1, 2, 3, 4, 5)
SHARED = dict(zip(SEEDS, (0.55, 0.70, 0.62, 0.48, 0.66), strict=True))  # a seed effect common to all methods


def _table(offset: float, generator: int = 0) -> dict[int, dict[int, float]]:
    return {generator: {s: v + offset for s, v in SHARED.items()}}


def test_pairing_removes_the_shared_seed_spread():
    """A method exactly 5 points above the baseline on every seed: the paired difference is 5 points with no width,
    although each method alone spreads over 22 points."""
    diff = paired_difference(_table(0.05), _table(0.0))
    assert diff.estimate == pytest.approx(0.05) and diff.low == pytest.approx(0.05) and diff.high == pytest.approx(0.05)
    assert not diff.contains_zero
    alone = mean_interval(_table(0.0))
    assert alone.low < alone.estimate < alone.high and alone.high - alone.low > 0.05
    assert alone.estimate == pytest.approx(np.mean(list(SHARED.values())))


def test_a_difference_inside_the_noise_is_a_tie():
    rng = np.random.default_rng(1)
    noisy = {0: {s: v + rng.normal(0, 0.05) for s, v in SHARED.items()}}
    assert paired_difference(noisy, _table(0.0)).contains_zero


def test_intervals_are_seeded():
    a, b = mean_interval(_table(0.0), seed=3), mean_interval(_table(0.0), seed=3)
    assert a == b


def test_gap_closure_of_a_method_half_way():
    real, full = _table(0.0), _table(0.30)
    half = gap_closure(_table(0.15), real, full)
    assert half.estimate == pytest.approx(0.5) and half.low == pytest.approx(0.5) and half.high == pytest.approx(0.5)
    with pytest.raises(ValueError, match="all-real accuracy above real-only"):
        gap_closure(_table(0.15), full, real)


def test_unpaired_seeds_are_refused():
    other = {0: {s + 1: v for s, v in SHARED.items()}}
    with pytest.raises(ValueError, match="same classifier seeds"):
        paired_difference(_table(0.0), other)
    with pytest.raises(ValueError, match="evaluate.seeds"):
        as_grid({0: SHARED, 1: {1: 0.5, 2: 0.5}})


def test_spread_sources_split_generator_and_classifier():
    offsets = (-0.06, 0.0, 0.06)
    rng = np.random.default_rng(0)
    table = {g: {s: SHARED[s] + off + rng.normal(0, 0.01) for s in SEEDS} for g, off in enumerate(offsets)}
    sources = spread_sources(table)
    assert sources.generators == 3 and sources.classifier_seeds == 5
    assert 0.04 < sources.generator_std < 0.08  # std of the offsets: 0.06
    assert 0.06 < sources.classifier_std < 0.11  # std of the shared seed effect: 0.086
    single = spread_sources(_table(0.0))
    assert np.isnan(single.generator_std) and single.classifier_std == pytest.approx(np.std(list(SHARED.values()),
                                                                                               ddof=1))
    # With generators, the interval of the mean widens: generator spread is part of the uncertainty.
    assert mean_interval(table).high - mean_interval(table).low > 0


def test_report_keys_pair_the_method_with_the_baselines():
    from kinemic.statistics import compare_with_baselines

    baselines = {f"real_only.seed_{s}": v for s, v in SHARED.items()}
    baselines |= {f"all_real.seed_{s}": v + 0.30 for s, v in SHARED.items()}
    out = compare_with_baselines({s: v + 0.15 for s, v in SHARED.items()}, baselines)
    assert out["vs_real_only"] == pytest.approx(0.15) and out["vs_real_only.ci_low"] == pytest.approx(0.15)
    assert out["gap_closure"] == pytest.approx(0.5)
    assert out["all_real.mean"] == pytest.approx(out["real_only.mean"] + 0.3)
    assert out["top1.mean.ci_low"] < out["top1.mean"] < out["top1.mean.ci_high"]
    with pytest.raises(ValueError, match="re-run stage `baseline_real_only`"):
        compare_with_baselines({**SHARED, 6: 0.5}, baselines)


def _draws(offsets: dict[int, float], method: float = 0.0) -> dict[int, dict[int, dict[int, float]]]:
    """Few-shot draw -> a one-generator table, the draw moving every seed by its offset."""
    return {draw: _table(offset + method) for draw, offset in offsets.items()}


def test_one_draw_is_exactly_the_two_level_bootstrap():
    table = {0: SHARED, 1: {s: v + 0.03 for s, v in SHARED.items()}}
    assert mean_interval({7: table}) == mean_interval(table)
    assert paired_difference({7: table}, {7: _table(0.0)}) == paired_difference(table, _table(0.0))
    assert spread_sources({7: table}) == spread_sources(table)


def test_draws_are_paired_and_their_spread_widens_the_mean():
    """Three draws far apart (the split decides the level), the method 4 points above real-only on each: the
    difference is exact, the mean's interval spans the draws and the draw spread is reported."""
    offsets = {0: -0.10, 1: 0.0, 2: 0.12}
    method, real = _draws(offsets, 0.04), _draws(offsets)
    diff = paired_difference(method, real)
    assert diff.estimate == pytest.approx(0.04) and diff.high - diff.low == pytest.approx(0.0, abs=1e-12)
    wide, one = mean_interval(method), mean_interval(_table(0.04))
    assert wide.high - wide.low > 1.3 * (one.high - one.low)
    assert wide.estimate == pytest.approx(np.mean(list(SHARED.values())) + 0.04 + np.mean(list(offsets.values())))
    sources = spread_sources(method)
    assert sources.draws == 3 and sources.draw_std == pytest.approx(np.std(list(offsets.values()), ddof=1))
    assert gap_closure(method, real, _draws(offsets, 0.16)).estimate == pytest.approx(0.25)


def test_draws_must_match_between_compared_tables():
    with pytest.raises(ValueError, match="same few-shot draws"):
        paired_difference(_draws({0: 0.0, 1: 0.0}), _draws({0: 0.0, 2: 0.0}))
