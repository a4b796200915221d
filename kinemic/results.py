"""The results table: DVC runs grouped into the paper's rows, with paired intervals (kinemic.statistics).

One row per method. Runs of the same method with different `train.seed` are its generator seeds; the classifier seeds
are `evaluate.seeds` inside each run; runs with different `prepare_target.seed` are few-shot draws (the wider
benchmark, profiles/benchmark.yaml), each compared with its own draw's real-only baseline. Real only and all real come
from their own experiments when present, else from a run's baseline metrics of the same draw (the same seeds and
protocol). A difference whose interval contains zero is a tie.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kinemic.params import flat_params
from kinemic.statistics import DrawTable, Interval, gap_closure, mean_interval, paired_difference, spread_sources

REAL_ONLY, ALL_REAL, FULL = "real data only (few-shot)", "ground truth (all real data)", "KineMIC (full)"
ROW_ORDER = [REAL_ONLY, "MDM zero-shot", "MDM + LoRA", "MDM from scratch", "KineMIC (Base)", "KineMIC + dist",
             "KineMIC + dww", FULL, ALL_REAL]  # the paper's order
SEED_PARAMS = ("train.seed", "generate.seed")  # vary between the generators of one row
DRAW_PARAM = "prepare_target.seed"  # which real clips are the few shots: varies between the draws of a benchmark
METHOD_PARAMS = ("train.method", "train.use_dist", "train.use_dww", "evaluate.train_data")  # pick the row
# Where a run's reference rows are: one file per baseline stage, or one file for both in runs older than that split.
BASELINE_METRICS = ("metrics/baseline_real_only.json", "metrics/baseline_all_real.json", "metrics/baselines.json")
GENERATIVE = ("gen.fid", "gen.recognition_accuracy", "gen.speed", "gen.real.speed", "gen.acceleration",
              "gen.real.acceleration")


@dataclass(frozen=True)
class Run:
    """One finished pipeline run: its name, params.yaml, summary.json and (when present) its baseline metrics."""

    name: str
    params: Mapping
    summary: Mapping[str, float]
    baselines: Mapping[str, float] = field(default_factory=dict)
    mining: Mapping[str, float] = field(default_factory=dict)
    rev: str = ""  # the git commit of the run (an experiment's), to read its outputs with dvc.api; "workspace"

    @property
    def draw(self) -> int:
        return int((self.params.get("prepare_target") or {}).get("seed", 0))


def _metrics(run: dict, path: str) -> dict:
    return (((run.get("data") or {}).get("metrics") or {}).get(path) or {}).get("data") or {}


def dvc_runs(entries: list[dict]) -> list[Run]:
    """The finished runs in `dvc exp show --json`: workspace, baselines and experiments; a run identical to one
    already listed (the workspace of a committed baseline) is listed once, named by its commit."""
    runs = []
    for entry in sorted(entries, key=lambda e: e.get("rev") == "workspace"):
        finished = [exp for exp in entry.get("experiments") or [] if (exp.get("executor") or {}).get("state")
                    in (None, "success")]  # queued and running experiments show their baseline's numbers
        for run in [entry, *[r for exp in finished for r in exp.get("revs", [])]]:
            summary = _metrics(run, "metrics/summary.json")
            params = (((run.get("data") or {}).get("params") or {}).get("params.yaml") or {}).get("data")
            if summary and params:
                rev = run.get("rev", "?")
                name = run.get("name") or (rev if rev == "workspace" else rev[:7])
                baselines = {k: v for path in BASELINE_METRICS for k, v in _metrics(run, path).items()}
                runs.append(Run(name, params, summary, baselines, _metrics(run, "metrics/mining.json"), rev))
    return unique_runs(runs)


def unique_runs(runs: Iterable[Run]) -> list[Run]:
    """The runs with the same params and summary listed once (the first one kept): one run read twice, from its
    experiment and from a saved file, or a committed baseline and its workspace."""
    seen, unique = set(), []
    for run in runs:
        key = json.dumps([run.params, run.summary], sort_keys=True)
        if key not in seen:
            seen.add(key)
            unique.append(run)
    return unique


def save_runs(runs: Iterable[Run], path: Path) -> tuple[int, int]:
    """Keep runs as JSON lines, one `Run` each: the numbers a table or a study pools, committed beside its result.

    Experiments live in the checkout that ran them (`dvc exp push` to a local remote does not outlive it); a later
    session that adds generators or draws to a study reads these back (`load_runs`) and pools them with its own.
    An existing file is extended, never cut: its runs stay and the new ones are added (each run once), so saving a
    narrower table to the file it was pooled from loses nothing. A run of an uncommitted workspace is saved with
    rev "": its outputs on disk will not stay its own. Returns (runs added, runs in the file).
    """
    path = Path(path)
    kept = load_runs(path) if path.is_file() else []
    fresh = [dataclasses.replace(run, rev="") if run.rev == "workspace" else run for run in runs]
    pooled = unique_runs([*kept, *fresh])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(dataclasses.asdict(run), sort_keys=True) + "\n" for run in pooled))
    tmp.replace(path)
    return len(pooled) - len(kept), len(pooled)


def load_runs(path: Path) -> list[Run]:
    """The runs `save_runs` wrote; a line that is not one names the file and line."""
    fields = {f.name: f for f in dataclasses.fields(Run)}
    mappings = {"params", "summary", "baselines", "mining"}
    runs = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError(f"a JSON {type(row).__name__}, not an object")
            missing = {"name", "params", "summary"} - set(row)
            if missing or set(row) - set(fields):
                raise ValueError(f"fields {sorted(missing)} missing, {sorted(set(row) - set(fields))} unknown")
            wrong = sorted(k for k, v in row.items() if not isinstance(v, dict if k in mappings else str))
            if wrong:
                raise ValueError(f"fields {wrong} have the wrong type")
        except ValueError as err:
            raise ValueError(f"{path}:{number} is not a saved run (kinemic.results.save_runs): {err}") from None
        runs.append(Run(**row))
    return runs


def read_runs(dvc_args: Sequence[str], saved: Iterable[Path] = ()) -> list[Run]:
    """The finished runs `dvc exp show --json <dvc_args>` lists, pooled with the saved ones (`load_runs`), each once."""
    shown = subprocess.run(["dvc", "exp", "show", "--json", *dvc_args], capture_output=True, text=True)
    if shown.returncode != 0:
        raise RuntimeError(f"`dvc exp show --json {' '.join(dvc_args)}` failed: {shown.stderr.strip()}")
    return unique_runs([*dvc_runs(json.loads(shown.stdout)), *(run for path in saved for run in load_runs(path))])


def outputs_not_in_cache(status: Mapping[str, Any]) -> list[str]:
    """The outputs `dvc status --json` reports as "not in cache", as "stage: path".

    A queued experiment starts from the committed dvc.lock; where a stage of it is restored from the run cache, DVC
    loads the lock's own entries from the cache and fails ("failed to load directory ... .dir") when the workspace's
    outputs were never made here (a fresh clone before its first `dvc repro`)."""
    missing = []
    for stage, entries in status.items():
        for entry in entries if isinstance(entries, list) else []:
            outs = entry.get("changed outs", {}) if isinstance(entry, Mapping) else {}
            missing += [f"{stage}: {path}" for path, state in outs.items() if state == "not in cache"]
    return missing


def add_saved_runs_options(parser: argparse.ArgumentParser) -> None:
    """`--runs FILE` (repeatable: saved runs to pool with the experiments) and `--save-runs FILE` for a script that
    reads runs: a study's runs committed beside its table outlive the experiments (`save_runs`)."""
    parser.add_argument("--runs", type=Path, action="append", default=[],
                        help="saved runs (--save-runs of an earlier table) to pool with the experiments; repeatable")
    parser.add_argument("--save-runs", type=Path, help="write the table's runs here, to commit beside the result")


def differing_params(run: Mapping, reference: Mapping, free: Iterable[str] = ()) -> list[str]:
    """The dotted keys whose values differ between two params.yaml, apart from `free`, seeds, few-shot draws and
    process counts.

    A key that only one side has is not a difference: params are added with the default that keeps the old
    behaviour, so a run of an older commit lacks them. Process counts (`*.nproc`) give the same outputs by design.
    """
    ignored = set(free) | set(SEED_PARAMS) | {DRAW_PARAM}

    def compared(params: Mapping) -> dict[str, Any]:
        return {k: v for k, v in flat_params(params).items() if k not in ignored and not k.endswith(".nproc")}

    mine, theirs = compared(run), compared(reference)
    return sorted(k for k in mine.keys() & theirs.keys() if mine[k] != theirs[k])


def comparable_runs(runs: Iterable[Run], reference: Mapping) -> tuple[list[Run], list[str]]:
    """The runs whose params differ from `reference` (a params.yaml) only in the method switches, the seeds, the
    few-shot draw and the process counts, and the names of the others.

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
    table: DrawTable
    generative: dict[str, float]

    @property
    def values(self) -> np.ndarray:
        return np.array([v for draw in self.table.values() for seeds in draw.values() for v in seeds.values()])

    @property
    def shape(self) -> tuple[int, int, int]:
        """(few-shot draws, generators per draw, classifier seeds): the first draw's counts."""
        first = self.table[min(self.table)]
        return len(self.table), len(first), len(next(iter(first.values())))

    @property
    def generator_counts(self) -> tuple[int, ...]:
        """Generators per few-shot draw, in draw order: a study may add generators to some draws only."""
        return tuple(len(self.table[d]) for d in sorted(self.table))


def group_runs(runs: Iterable[Run]) -> dict[str, Row]:
    """Rows by label; within a row one generator per (few-shot draw, `train.seed`) (the first run of a pair wins)."""
    grouped: dict[str, dict[tuple[int, int], Run]] = {}
    for run in runs:
        label = method_label(run.params)
        generator = 0 if label in (REAL_ONLY, ALL_REAL) else int(run.params["train"].get("seed", 0))
        grouped.setdefault(label, {}).setdefault((run.draw, generator), run)
    rows = {}
    for label, by_key in grouped.items():
        table: dict[int, dict[int, dict[int, float]]] = {}
        for (draw, generator), run in sorted(by_key.items()):
            table.setdefault(draw, {})[generator] = per_seed(run.summary, "top1")
        generative = {key: float(np.mean([r.summary[key] for r in by_key.values()])) for key in GENERATIVE
                      if all(key in r.summary for r in by_key.values())}
        rows[label] = Row(label, tuple(r.name for r in by_key.values()), table, generative)
    return rows


def reference_table(rows: Mapping[str, Row], runs: Iterable[Run], label: str, baseline_key: str) -> DrawTable | None:
    """The real-only / all-real table: its own experiments if run, else per draw a run's baseline metrics."""
    if label in rows:
        return rows[label].table
    table: dict[int, dict[int, dict[int, float]]] = {}
    for run in runs:
        seeds = per_seed(run.baselines, baseline_key)
        if seeds and run.draw not in table:
            table[run.draw] = {0: seeds}
    return dict(sorted(table.items())) or None


def on_draws(table: DrawTable | None, draws: Iterable[int]) -> DrawTable | None:
    """`table` restricted to `draws`, or None when it lacks one of them: comparisons pair by draw."""
    draws = list(draws)
    if table is None or any(d not in table for d in draws):
        return None
    return {d: table[d] for d in draws}


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
    draw_std: float = float("nan")


def row_stats(rows: Mapping[str, Row], runs: list[Run]) -> list[RowStats]:
    """Every row's statistics, in the paper's order; comparisons need the same classifier seeds everywhere and are
    made on the row's few-shot draws (left out where the reference lacks one of them)."""
    real = reference_table(rows, runs, REAL_ONLY, "real_only")
    full_real = reference_table(rows, runs, ALL_REAL, "all_real")
    full = rows[FULL].table if FULL in rows else None
    rows = dict(rows)
    for label, table in ((REAL_ONLY, real), (ALL_REAL, full_real)):  # the reference rows, from the baseline metrics
        if label not in rows and table is not None:
            rows[label] = Row(label, ("baselines",), table, {})
    out = []
    for label in sorted(rows, key=ROW_ORDER.index):
        row = rows[label]
        values = row.values
        row_real, row_all, row_full = (on_draws(t, row.table) for t in (real, full_real, full))
        gap = None
        if row_real is not None and row_all is not None:
            try:
                gap = gap_closure(row.table, row_real, row_all)
            except ValueError:
                gap = None
        sources = spread_sources(row.table)
        mean_ci = mean_interval(row.table)
        out.append(RowStats(  # the mean is the interval's estimate (each draw weighs alike); the std spans all runs
            row=row, median=float(np.median(values)), mean=mean_ci.estimate, std=float(values.std()),
            mean_ci=mean_ci,
            vs_real_only=paired_difference(row.table, row_real) if row_real is not None and label != REAL_ONLY
            else None,
            vs_full=paired_difference(row.table, row_full) if row_full is not None and label != FULL else None,
            gap=gap, generator_std=sources.generator_std, classifier_std=sources.classifier_std,
            draw_std=sources.draw_std,
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
    """The README's results table; with several few-shot draws, runs count draws too and the spread has a draw part."""
    draws = any(s.row.shape[0] > 1 for s in stats)
    runs_header = "runs (draws x generators x seeds)" if draws else "runs (generators x seeds)"
    spread_header = "generator / classifier / draw" if draws else "generator / classifier"
    lines = [f"| method | {runs_header} | median top-1 (%) | mean +- std (%) | mean, 95% CI | "
             "vs real only (points) | vs full (points) | gap closure | "
             f"spread: {spread_header} (points) | "
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
        n_draws, _, seeds = s.row.shape
        counts = s.row.generator_counts
        spread = (f"{100 * s.generator_std:.1f} / {100 * s.classifier_std:.1f}" if max(counts) > 1
                  else f"- / {100 * s.classifier_std:.1f}")
        generators = f"{min(counts)}-{max(counts)}" if min(counts) != max(counts) else f"{counts[0]}"
        runs = f"{generators} x {seeds}"
        if draws:
            spread += f" / {100 * s.draw_std:.1f}" if n_draws > 1 else " / -"
            runs = f"{n_draws} x {runs}"
        lines.append(f"| {s.row.label} | {runs} | {100 * s.median:.1f} | "
                     f"{100 * s.mean:.1f} +- {100 * s.std:.1f} | {_pct(s.mean_ci, signed=False)} | "
                     f"{_pct(s.vs_real_only)} | {_pct(s.vs_full)} | {gap} | {spread} | {gen} |")
    return "\n".join(lines)
