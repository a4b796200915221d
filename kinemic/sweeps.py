"""One param swept, the rest held: runs grouped by the param's value, each value compared with a reference value.

`kinemic.results` groups runs into the paper's rows by method; a sweep (`mining.k` over 10..1000, `generate.sampler`,
a quality filter's threshold) keeps the method and changes one param, so there the param's value is the row. Within a
value, runs with different `train.seed` are its generator seeds, and every value is compared with the reference value
(the params.yaml default) by the paired difference over the shared classifier seeds (`kinemic.statistics`): a
difference whose interval contains zero is a tie. Runs whose other params differ from the reference run's in anything
but the swept param and the seeds are left out, with their names and why, so a sweep never mixes two experiments; so
are runs of another few-shot draw (`prepare_target.seed`: a sweep pairs on one draw and its real-only baseline) and a
second run of a value and generator already taken.

Params that only make sense together (a sampler, its step count and its spacing) are swept as one: a comma list,
`generate.sampler,generate.sampling_steps,generate.spacing`, whose value is the tuple of the three.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from kinemic.results import Run, differing_params, per_seed
from kinemic.statistics import Interval, Table, mean_interval, paired_difference

_REQUIRED = object()


def param_value(params: Mapping, dotted: str, missing: Any = _REQUIRED) -> Any:
    """The value of `dotted` in a params.yaml; `missing` (when given) for a run that lacks it.

    A comma list of dotted names gives the tuple of their values (`missing` then a tuple of as many defaults)."""
    if "," in dotted:
        names = dotted.split(",")
        defaults = (_REQUIRED,) * len(names) if missing is _REQUIRED else tuple(missing)
        if len(defaults) != len(names):
            raise ValueError(f"{len(names)} params {dotted!r} need as many defaults, got {missing!r}")
        return tuple(param_value(params, name, default) for name, default in zip(names, defaults, strict=True))
    node: Any = params
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            if missing is not _REQUIRED:
                return missing
            raise KeyError(f"param {dotted!r} is not in the run's params ({key!r} missing)")
        node = node[key]
    return node


@dataclass(frozen=True)
class SweepPoint:
    value: Any
    names: tuple[str, ...]
    table: Table
    median: float
    mean: Interval
    vs_reference: Interval | None  # None for the reference itself
    vs_real_only: Interval | None
    extra: Mapping[str, float]  # mean over the value's runs of the requested summary / mining metrics


@dataclass(frozen=True)
class Sweep:
    param: str
    reference: Any
    points: list[SweepPoint]
    left_out: tuple[str, ...]  # runs not pooled, each "name (why)"
    pooled: tuple[Run, ...] = ()  # the runs the values pooled, in the order given

    def members(self) -> list[Run]:
        """The runs the sweep's values pooled (what `--save-runs` keeps beside its table): these very runs, so a
        left-out run that shares a pooled run's name (another commit's experiment, a duplicate) is never saved."""
        return list(self.pooled)


def sweep(runs: Iterable[Run], param: str, reference: Any, extra: Iterable[str] = (),
          missing: Any = _REQUIRED, base: Mapping | None = None) -> Sweep:
    """Group `runs` by the value of `param`; compare every value with `reference` (which must have been run).

    `missing`: the value of a run of an older commit that lacks `param` (a param is added with the default that
    keeps the old behaviour, so that default is what such a run ran with); without it such a run is an error.
    `base` (a params.yaml): the reference run whose other params it shares is the anchor every run is held to, not
    merely the first run listed at the reference value (an older commit's, say).
    """
    runs = list(runs)
    reference = _hashable(reference)
    at_reference = [r for r in runs if _hashable(param_value(r.params, param, missing)) == reference]
    if not at_reference:
        raise ValueError(f"no run has {param}={reference!r}: run the reference value too (it is the baseline of "
                         "every paired difference)")
    like_base = [r for r in at_reference if base is not None and not differing_params(r.params, base, param.split(","))]
    anchor = (like_base or at_reference)[0]
    by_value: dict[Any, dict[int, Run]] = {}
    left_out = []
    for run in runs:
        if differing := differing_params(run.params, anchor.params, param.split(",")):
            left_out.append(f"{run.name} ({', '.join(differing[:3])}{' ...' if len(differing) > 3 else ''})")
            continue
        if run.draw != anchor.draw:
            left_out.append(f"{run.name} (few-shot draw {run.draw}, the reference run's is {anchor.draw})")
            continue
        value, generator = _hashable(param_value(run.params, param, missing)), int(run.params["train"].get("seed", 0))
        taken = by_value.setdefault(value, {}).setdefault(generator, run)
        if taken is not run:
            left_out.append(f"{run.name} (the same value and train.seed as {taken.name})")
    tables = {value: {g: per_seed(r.summary, "top1") for g, r in sorted(gens.items())}
              for value, gens in by_value.items()}
    pooled = [r for gens in by_value.values() for r in gens.values()]
    real = next(({0: s} for r in [anchor, *pooled] if (s := per_seed(r.baselines, "real_only"))), None)
    ref_table = tables[_hashable(reference)]
    points = []
    for value in sorted(tables, key=_order):
        table, gens = tables[value], by_value[value]
        values = np.array([v for seeds in table.values() for v in seeds.values()])
        metrics = {}
        for key in extra:
            found = [src[key] for r in gens.values() for src in (r.summary, r.mining) if key in src]
            if found:
                metrics[key] = float(np.mean(found))
        points.append(SweepPoint(
            value=value, names=tuple(r.name for r in gens.values()), table=table, median=float(np.median(values)),
            mean=mean_interval(table),
            vs_reference=None if value == _hashable(reference) else paired_difference(table, ref_table),
            vs_real_only=paired_difference(table, real) if real is not None else None, extra=metrics))
    pooled_ids = {id(r) for r in pooled}
    return Sweep(param, reference, points, tuple(left_out), tuple(r for r in runs if id(r) in pooled_ids))


def _hashable(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    return value


def _order(value: Any) -> tuple:
    return (0, value, "") if isinstance(value, int | float) and not isinstance(value, bool) else (1, 0, str(value))


def _pct(interval: Interval | None) -> str:
    if interval is None:
        return "-"
    text = f"{100 * interval.estimate:+.1f} [{100 * interval.low:+.1f}, {100 * interval.high:+.1f}]"
    return text + (" tie" if interval.contains_zero else "")


def markdown(result: Sweep) -> str:
    """The sweep as a Markdown table, one row per value."""
    keys = sorted({k for p in result.points for k in p.extra})
    head = (f"| {result.param} | runs (generators x seeds) | median top-1 (%) | mean, 95% CI (%) | "
            f"vs {result.param}={result.reference} (points) | vs real only (points) |"
            + "".join(f" {k} |" for k in keys))
    lines = [head, "|" + "---|" * (6 + len(keys))]
    for p in result.points:
        seeds = len(next(iter(p.table.values())))
        mean = f"{100 * p.mean.estimate:.1f} [{100 * p.mean.low:.1f}, {100 * p.mean.high:.1f}]"
        cells = "".join(f" {p.extra[k]:.3g} |" if k in p.extra else " - |" for k in keys)
        lines.append(f"| {p.value} | {len(p.table)} x {seeds} | {100 * p.median:.1f} | {mean} | "
                     f"{_pct(p.vs_reference)} | {_pct(p.vs_real_only)} |{cells}")
    if result.left_out:
        lines.append(f"\nLeft out: {'; '.join(result.left_out)}")
    return "\n".join(lines)
