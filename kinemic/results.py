"""The results table: DVC runs grouped into the paper's rows, with paired intervals (kinemic.statistics).

One row per method. Runs of the same method with different `train.seed` are its generator seeds; the classifier seeds
are `evaluate.seeds` inside each run. Real only and all real come from their own experiments when present, else from
any run's `metrics/baselines.json` (the same seeds and protocol). A difference whose interval contains zero is a tie.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kinemic.statistics import Interval, Table, gap_closure, mean_interval, paired_difference, spread_sources

REAL_ONLY, ALL_REAL, FULL = "real data only (few-shot)", "ground truth (all real data)", "KineMIC (full)"
ROW_ORDER = [REAL_ONLY, "MDM zero-shot", "MDM + LoRA", "MDM from scratch", "KineMIC (Base)", "KineMIC + dist",
             "KineMIC + dww", FULL, ALL_REAL]  # the paper's order
SEED_PARAMS = ("train.seed", "generate.seed")  # vary between the generators of one row
METHOD_PARAMS = ("train.method", "train.use_dist", "train.use_dww", "evaluate.train_data")  # pick the row
GENERATIVE = ("gen.fid", "gen.recognition_accuracy", "gen.speed", "gen.real.speed", "gen.acceleration",
              "gen.real.acceleration")


@dataclass(frozen=True)
class Run:
    """One finished pipeline run: its name, params.yaml, summary.json and (when present) baselines.json."""

    name: str
    params: Mapping
    summary: Mapping[str, float]
    baselines: Mapping[str, float] = field(default_factory=dict)
    mining: Mapping[str, float] = field(default_factory=dict)


def _metrics(run: dict, path: str) -> dict:
    return (((run.get("data") or {}).get("metrics") or {}).get(path) or {}).get("data") or {}


def dvc_runs(entries: list[dict]) -> list[Run]:
    """The finished runs in `dvc exp show --json`: workspace, baselines and experiments; a run identical to one
    already listed (the workspace of a committed baseline) is listed once, named by its commit."""
    seen, runs = set(), []
    for entry in sorted(entries, key=lambda e: e.get("rev") == "workspace"):
        finished = [exp for exp in entry.get("experiments") or [] if (exp.get("executor") or {}).get("state")
                    in (None, "success")]  # queued and running experiments show their baseline's numbers
        for run in [entry, *[r for exp in finished for r in exp.get("revs", [])]]:
            summary = _metrics(run, "metrics/summary.json")
            params = (((run.get("data") or {}).get("params") or {}).get("params.yaml") or {}).get("data")
            key = json.dumps([params, summary], sort_keys=True)
            if summary and params and key not in seen:
                seen.add(key)
                rev = run.get("rev", "?")
                name = run.get("name") or (rev if rev == "workspace" else rev[:7])
                runs.append(Run(name, params, summary, _metrics(run, "metrics/baselines.json"),
                                _metrics(run, "metrics/mining.json")))
    return runs


def flat_params(params: Mapping, prefix: str = "") -> dict[str, Any]:
    """{'train.seed': 42, ...}: nested params as dotted keys."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flat_params(value, name + "."))
        else:
            out[name] = value
    return out


def differing_params(run: Mapping, reference: Mapping, free: Iterable[str] = ()) -> list[str]:
    """The dotted keys whose values differ between two params.yaml, apart from `free`, seeds and process counts.

    A key that only one side has is not a difference: params are added with the default that keeps the old
    behaviour, so a run of an older commit lacks them. Process counts (`*.nproc`) give the same outputs by design.
    """
    ignored = set(free) | set(SEED_PARAMS)

    def compared(params: Mapping) -> dict[str, Any]:
        return {k: v for k, v in flat_params(params).items() if k not in ignored and not k.endswith(".nproc")}

    mine, theirs = compared(run), compared(reference)
    return sorted(k for k in mine.keys() & theirs.keys() if mine[k] != theirs[k])


def comparable_runs(runs: Iterable[Run], reference: Mapping) -> tuple[list[Run], list[str]]:
    """The runs whose params differ from `reference` (a params.yaml) only in the method switches, the seeds and the
    process counts, and the names of the others.

    The table pools runs by method and seed; a study run (another `mining.k`, sampler, filter) or a run of an older
    commit with other params would otherwise land in a method's row and change it unseen.
    """
    kept, left_out = [], []
    for run in runs:
        if differing_params(run.params, reference, METHOD_PARAMS):
            left_out.append(run.name)
        else:
            kept.append(run)
    return kept, left_out


def method_label(params: Mapping) -> str:
    """The paper's row a run belongs to."""
    train, evaluate = params["train"], params["evaluate"]
    if evaluate["train_data"] == "fewshot":
        return REAL_ONLY
    if evaluate["train_data"] == "all_real":
        return ALL_REAL
    method = train["method"]
    if method != "kinemic":
        return {"lora": "MDM + LoRA", "scratch": "MDM from scratch", "zeroshot": "MDM zero-shot"}[method]
    switches = {(False, False): "KineMIC (Base)", (True, False): "KineMIC + dist", (False, True): "KineMIC + dww",
                (True, True): FULL}
    return switches[(bool(train["use_dist"]), bool(train["use_dww"]))]


def per_seed(values: Mapping[str, float], prefix: str) -> dict[int, float]:
    """{seed: value} of the keys `<prefix>.seed_<s>`."""
    head = f"{prefix}.seed_"
    return {int(key[len(head):]): float(v) for key, v in values.items() if key.startswith(head)}


@dataclass(frozen=True)
class Row:
    label: str
    names: tuple[str, ...]
    table: Table
    generative: dict[str, float]

    @property
    def values(self) -> np.ndarray:
        return np.array([v for seeds in self.table.values() for v in seeds.values()])


def group_runs(runs: Iterable[Run]) -> dict[str, Row]:
    """Rows by label; within a row one generator per `train.seed` (the first run of a seed wins)."""
    grouped: dict[str, dict[int, Run]] = {}
    for run in runs:
        label = method_label(run.params)
        generator = 0 if label in (REAL_ONLY, ALL_REAL) else int(run.params["train"].get("seed", 0))
        grouped.setdefault(label, {}).setdefault(generator, run)
    rows = {}
    for label, by_seed in grouped.items():
        table = {g: per_seed(run.summary, "top1") for g, run in sorted(by_seed.items())}
        generative = {key: float(np.mean([r.summary[key] for r in by_seed.values()])) for key in GENERATIVE
                      if all(key in r.summary for r in by_seed.values())}
        rows[label] = Row(label, tuple(r.name for r in by_seed.values()), table, generative)
    return rows


def reference_table(rows: Mapping[str, Row], runs: Iterable[Run], label: str, baseline_key: str) -> Table | None:
    """The real-only / all-real table: its own experiments if run, else a run's baselines.json."""
    if label in rows:
        return rows[label].table
    for run in runs:
        seeds = per_seed(run.baselines, baseline_key)
        if seeds:
            return {0: seeds}
    return None


@dataclass(frozen=True)
class RowStats:
    row: Row
    median: float
    mean: float
    std: float
    mean_ci: Interval
    vs_real_only: Interval | None
    vs_full: Interval | None
    gap: Interval | None
    generator_std: float
    classifier_std: float


def row_stats(rows: Mapping[str, Row], runs: list[Run]) -> list[RowStats]:
    """Every row's statistics, in the paper's order; comparisons need the same classifier seeds everywhere."""
    real = reference_table(rows, runs, REAL_ONLY, "real_only")
    full_real = reference_table(rows, runs, ALL_REAL, "all_real")
    full = rows[FULL].table if FULL in rows else None
    rows = dict(rows)
    for label, table in ((REAL_ONLY, real), (ALL_REAL, full_real)):  # the reference rows, from baselines.json
        if label not in rows and table is not None:
            rows[label] = Row(label, ("baselines",), table, {})
    out = []
    for label in sorted(rows, key=ROW_ORDER.index):
        row = rows[label]
        values = row.values
        gap = None
        if real is not None and full_real is not None:
            try:
                gap = gap_closure(row.table, real, full_real)
            except ValueError:
                gap = None
        sources = spread_sources(row.table)
        out.append(RowStats(
            row=row, median=float(np.median(values)), mean=float(values.mean()), std=float(values.std()),
            mean_ci=mean_interval(row.table),
            vs_real_only=paired_difference(row.table, real) if real is not None and label != REAL_ONLY else None,
            vs_full=paired_difference(row.table, full) if full is not None and label != FULL else None,
            gap=gap, generator_std=sources.generator_std, classifier_std=sources.classifier_std,
        ))
    return out


def _pct(interval: Interval | None, signed: bool = True) -> str:
    if interval is None:
        return "-"
    estimate, low, high = (("{:+.1f}" if signed else "{:.1f}").format(100 * v)
                           for v in (interval.estimate, interval.low, interval.high))
    text = f"{estimate} [{low}, {high}]"
    return text + (" tie" if signed and interval.contains_zero else "")


def markdown(stats: list[RowStats]) -> str:
    """The README's results table."""
    lines = ["| method | runs (generators x seeds) | median top-1 (%) | mean +- std (%) | mean, 95% CI | "
             "vs real only (points) | vs full (points) | gap closure | spread: generator / classifier (points) | "
             "FID | recognised (%) | speed m/s (real) | accel. m/s2 (real) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in stats:
        g = s.row.generative
        gen = "- | - | - | -"
        if "gen.fid" in g:
            gen = (f"{g['gen.fid']:.1f} | {100 * g['gen.recognition_accuracy']:.1f} | "
                   f"{g['gen.speed']:.2f} ({g['gen.real.speed']:.2f}) | "
                   f"{g['gen.acceleration']:.1f} ({g['gen.real.acceleration']:.1f})")
        gap = "-" if s.gap is None else f"{s.gap.estimate:.2f} [{s.gap.low:.2f}, {s.gap.high:.2f}]"
        spread = (f"{100 * s.generator_std:.1f} / {100 * s.classifier_std:.1f}" if len(s.row.table) > 1
                  else f"- / {100 * s.classifier_std:.1f}")
        seeds = len(next(iter(s.row.table.values())))
        lines.append(f"| {s.row.label} | {len(s.row.table)} x {seeds} | {100 * s.median:.1f} | "
                     f"{100 * s.mean:.1f} +- {100 * s.std:.1f} | {_pct(s.mean_ci, signed=False)} | "
                     f"{_pct(s.vs_real_only)} | {_pct(s.vs_full)} | {gap} | {spread} | {gen} |")
    return "\n".join(lines)
