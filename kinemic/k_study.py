"""The k study: how accuracy, the windows the student trains on and the mining itself change with `mining.k`.

The paper uses k = 250 soft positives and leaves the sensitivity to k open. One sweep of `mining.k` (kinemic.sweeps:
paired top-1 per value) is read here three ways, each from the runs' own outputs:
- top-1: median, mean with its interval and the paired difference to the reference k;
- window recognition (kinemic.window_recognition): how many of the windows eq. (2) picked during the last half of
  training hold the class's primitive, by the prior's labels and by the report card's recogniser, beside a random
  window of the same crop; the mean over the value's generators;
- mining purity (kinemic.mining_purity): the share of the k mined motions whose span holds the class's primitive.

Outputs are read through a loader (`RunFiles`: path -> DataFrame, or None when the run has no such file), so the same
code reads the workspace, a committed run or an experiment (`dvc_loader`).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from kinemic.corpus import PreparedPrior
from kinemic.mining_purity import mined_hits, purity_at
from kinemic.results import Run
from kinemic.sweeps import Sweep
from kinemic.window_recognition import MotionRecogniser, last_half, recognition_rates, score_windows

WINDOWS = "plots/train/windows.parquet"
PAIRS = "data/mining/soft_pairs.parquet"
log = logging.getLogger(__name__)

RunFiles = Callable[[Run, str], "pd.DataFrame | None"]
COLUMNS = ("k", "runs", "median", "mean", "mean_low", "mean_high", "vs_reference", "vs_reference_low",
           "vs_reference_high", "window_label", "window_top1", "chance_label", "chance_top1", "windows", "purity")


def dvc_loader(repo: str | Path = ".") -> RunFiles:
    """Read a run's parquet output from its commit through DVC (the workspace's from disk); None when it cannot be
    read: a method without that output, a run older than the record, a saved run whose commit is gone or whose
    outputs are not in this DVC cache (there is no remote), or a saved run of an uncommitted workspace (rev "")."""
    import dvc.api  # lazy: only the scripts that read experiments need DVC's import time
    from dvc.exceptions import DvcException
    from dvc_data.index.index import DataIndexError

    def load(run: Run, path: str) -> pd.DataFrame | None:
        if run.rev == "workspace":
            local = Path(repo) / path
            return pd.read_parquet(local) if local.is_file() else None
        if not run.rev:
            return None
        try:
            return pd.read_parquet(io.BytesIO(dvc.api.read(path, repo=str(repo), rev=run.rev, mode="rb")))
        except (DvcException, DataIndexError, FileNotFoundError) as err:
            log.info("%s of run %s (%s) not readable: %s", path, run.name, run.rev[:7], type(err).__name__)
            return None

    return load


def window_rates(windows: pd.DataFrame, prior: PreparedPrior, segments: pd.DataFrame, recogniser: MotionRecogniser,
                 seed: int = 0) -> pd.Series:
    """Overall rates of the last half of training's windows: label, top1, chance_label, chance_top1, windows."""
    scored = score_windows(windows, prior, segments, recogniser, seed)
    overall = recognition_rates(scored, last_half(scored)).loc["overall"]
    return overall[["label", "top1", "chance_label", "chance_top1", "windows"]].astype(float)


def run_purity(pairs: pd.DataFrame, prior: PreparedPrior, segments: pd.DataFrame) -> float:
    """Mean over classes of the purity of every motion the run mined (its whole k)."""
    hits = mined_hits(pairs, prior.motions, segments)
    k = int(hits.groupby("class_name").size().min())
    return float(purity_at(hits, [k])["mean"].iloc[0])


def k_table(result: Sweep, runs: list[Run], load: RunFiles, prior: PreparedPrior, segments: pd.DataFrame,
            recogniser: MotionRecogniser, seed: int = 0) -> pd.DataFrame:
    """One row per value of the sweep (COLUMNS; fractions). Window rates average the value's runs that recorded
    windows (NaN when none did: another method, or a run older than the record); purity is the first run's with
    pairs (mining does not depend on the generator seed)."""
    if not result.param.startswith("mining.k"):
        raise ValueError(f"the k study reads a sweep of mining.k, got {result.param!r}")
    by_name = {run.name: run for run in runs}
    rows = []
    for point in result.points:
        members = [by_name[name] for name in point.names]
        rates = [window_rates(w, prior, segments, recogniser, seed) for run in members
                 if (w := load(run, WINDOWS)) is not None]
        pairs = next((p for run in members if (p := load(run, PAIRS)) is not None), None)
        window = pd.concat(rates, axis=1).mean(axis=1) if rates else pd.Series(np.nan, index=[
            "label", "top1", "chance_label", "chance_top1", "windows"])
        versus = point.vs_reference
        rows.append({
            "k": point.value, "runs": len(members), "median": point.median, "mean": point.mean.estimate,
            "mean_low": point.mean.low, "mean_high": point.mean.high,
            "vs_reference": versus.estimate if versus else 0.0, "vs_reference_low": versus.low if versus else 0.0,
            "vs_reference_high": versus.high if versus else 0.0,
            "window_label": window["label"], "window_top1": window["top1"], "chance_label": window["chance_label"],
            "chance_top1": window["chance_top1"], "windows": window["windows"],
            "purity": run_purity(pairs, prior, segments) if pairs is not None else np.nan,
        })
    return pd.DataFrame(rows, columns=list(COLUMNS))


def markdown(table: pd.DataFrame, reference: int) -> str:
    """The k table as Markdown, percentages with one decimal."""
    lines = [f"| mining.k | runs | median top-1 (%) | mean, 95% CI (%) | vs k={reference} (points) | "
             "windows with the primitive: label / recognised (%) | random window: label / recognised (%) | "
             "mining purity (%) |", "|---" * 8 + "|"]
    for row in table.itertuples(index=False):
        if row.k == reference:
            versus = "-"
        else:
            tie = " tie" if row.vs_reference_low <= 0 <= row.vs_reference_high else ""
            versus = (f"{100 * row.vs_reference:+.1f} [{100 * row.vs_reference_low:+.1f}, "
                      f"{100 * row.vs_reference_high:+.1f}]{tie}")
        lines.append(f"| {row.k} | {row.runs} | {100 * row.median:.1f} | {100 * row.mean:.1f} "
                     f"[{100 * row.mean_low:.1f}, {100 * row.mean_high:.1f}] | {versus} | "
                     f"{_pct(row.window_label)} / {_pct(row.window_top1)} | {_pct(row.chance_label)} / "
                     f"{_pct(row.chance_top1)} | {_pct(row.purity)} |")
    return "\n".join(lines)


def _pct(value: float) -> str:
    return "-" if np.isnan(value) else f"{100 * value:.1f}"


def plot(table: pd.DataFrame, path: Path) -> None:
    """Three panels against k (log axis): top-1 (mean with interval, median), window recognition, mining purity."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = table["k"].to_numpy(dtype=float)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5), dpi=100, sharex=True)
    top1, windows, purity = axes
    top1.errorbar(k, 100 * table["mean"], yerr=[100 * (table["mean"] - table["mean_low"]),
                                                100 * (table["mean_high"] - table["mean"])],
                  fmt="o-", capsize=3, label="mean, 95% interval")
    top1.plot(k, 100 * table["median"], "s--", ms=4, label="median")
    top1.set(ylabel="top-1 (%)", title="classifier on real + synthetic")
    for column, style, label in (("window_label", "o-", "MIC window: label"), ("window_top1", "s-", "MIC: recognised"),
                                 ("chance_label", "o:", "random window: label"),
                                 ("chance_top1", "s:", "random: recognised")):
        windows.plot(k, 100 * table[column], style, ms=4, label=label)
    windows.set(ylabel="windows with the primitive (%)", title="training windows, last half")
    purity.plot(k, 100 * table["purity"], "o-")
    purity.set(ylabel="purity (%)", title="mined motions holding the primitive", ylim=(0, 102))
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xticks(k, [f"{v:g}" for v in k])
        ax.minorticks_off()
        ax.set_xlabel("mining.k")
    for ax in (top1, windows):
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
