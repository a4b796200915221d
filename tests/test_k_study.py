"""The k study on hand-built runs: each value's top-1, window rates and purity are the ones worked out by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kinemic.k_study import PAIRS, WINDOWS, dvc_loader, k_table, markdown, plot
from kinemic.results import Run
from kinemic.sweeps import sweep
from tests.test_window_recognition import _CodeRecogniser, _prior, _windows

BASE = {1: 0.60, 2: 0.50, 3: 0.55}
BASELINES = {f"real_only.seed_{s}": v - 0.10 for s, v in BASE.items()}


def _run(name: str, k: int, offset: float, seed: int = 42) -> Run:
    params = {"mining": {"k": k}, "train": {"seed": seed, "method": "kinemic"}}
    return Run(name, params, {f"top1.seed_{s}": v + offset for s, v in BASE.items()}, BASELINES, rev=name)


def _late_windows() -> pd.DataFrame:
    """The window-recognition test's windows moved to steps 11-14, so all of them lie in the last half (after 7)."""
    return _windows().assign(step=lambda w: w["step"] + 10)


def _pairs() -> pd.DataFrame:
    """Side kick: A#10 (source frames 10-40, holds the kick) and B (kick at 15-30): both hits. Running on the spot: A
    (jog at 20-40) hit, B (wave and kick) miss. Mean purity (1 + 1/2) / 2."""
    return pd.DataFrame({"class_name": ["side kick", "side kick", "running on the spot", "running on the spot"],
                         "rank": [0, 1, 0, 1], "motion_id": ["A#10", "B", "A", "B"]})


def test_each_k_gets_its_top1_window_rates_and_purity():
    prior, segments = _prior()
    runs = [_run("k250", 250, 0.0), _run("k25-g42", 25, 0.05), _run("k25-g43", 25, 0.03, seed=43),
            _run("k1000", 1000, -0.02)]
    files = {("k250", WINDOWS): _late_windows(), ("k250", PAIRS): _pairs(),
             ("k25-g43", WINDOWS): _late_windows(), ("k25-g43", PAIRS): _pairs().iloc[[0, 2]],
             ("k1000", PAIRS): _pairs()}  # k25-g42 recorded nothing; k1000 has no windows (e.g. an older run)
    table = k_table(sweep(runs, "mining.k", 250), runs, lambda run, path: files.get((run.name, path)), prior,
                    segments, _CodeRecogniser())
    assert table["k"].tolist() == [25, 250, 1000] and table["runs"].tolist() == [2, 1, 1]
    k25, k250, k1000 = (row for _, row in table.iterrows())
    # top-1: the paired difference of the two k = 25 generators (+5 and +3 points) against k = 250
    assert k25["vs_reference"] == pytest.approx(0.04) and k250["vs_reference"] == 0.0
    assert k250["mean"] == pytest.approx(np.mean(list(BASE.values())))
    # windows: the hand-worked verdicts of all five windows (labels 1 1 0 1 0, recognised 1 1 0 0 0)
    for row in (k25, k250):
        assert (row["windows"], row["window_label"], row["window_top1"], row["chance_top1"]) == \
            pytest.approx((5, 3 / 5, 2 / 5, 2 / 5))
        assert row["chance_label"] in (pytest.approx(2 / 5), pytest.approx(3 / 5))
    assert math.isnan(k1000["window_label"]) and math.isnan(k1000["windows"])
    # purity: k = 25's first run with pairs is g43, whose two pairs (one per class) are both hits
    assert k25["purity"] == pytest.approx(1.0) and k250["purity"] == pytest.approx(0.75)
    text = markdown(table, 250)
    assert "| 250 | 1 |" in text and "| 1000 | 1 |" in text and "| - |" in text  # k1000's windows: none
    assert "| -2.0 [-2.0, -2.0] |" in text  # a constant paired difference is exact, not a tie
    assert "| +4.0 [" in text and "tie" not in text  # k = 25: +5 and +3 over its two generators


def test_only_a_sweep_of_k_is_read():
    runs = [_run("k250", 250, 0.0)]
    for run in runs:
        run.params["train"]["lr"] = 1e-4
    with pytest.raises(ValueError, match="mining.k"):
        k_table(sweep(runs, "train.lr", 1e-4), runs, lambda run, path: None, *_prior(), _CodeRecogniser())


def test_the_workspace_is_read_from_disk_and_a_missing_file_is_none(tmp_path):
    (tmp_path / "plots/train").mkdir(parents=True)
    _windows().to_parquet(tmp_path / WINDOWS, index=False)
    load = dvc_loader(tmp_path)
    workspace = Run("workspace", {}, {}, rev="workspace")
    pd.testing.assert_frame_equal(load(workspace, WINDOWS), _windows())
    assert load(workspace, PAIRS) is None


def test_a_saved_run_whose_commit_is_gone_has_no_files():
    """`load_runs` brings back runs of experiments that no longer exist: their windows count as not recorded."""
    load = dvc_loader(Path(__file__).resolve().parents[1])
    assert load(Run("gone", {}, {}, rev="0" * 40), WINDOWS) is None


def test_a_saved_workspace_run_is_never_read_from_todays_disk(tmp_path):
    (tmp_path / "plots/train").mkdir(parents=True)
    _windows().to_parquet(tmp_path / WINDOWS, index=False)
    assert dvc_loader(tmp_path)(Run("workspace", {}, {}, rev=""), WINDOWS) is None


def test_the_figure_is_written(tmp_path):
    table = pd.DataFrame({"k": [25, 250], "runs": [1, 1], "median": [0.8, 0.82], "mean": [0.8, 0.81],
                          "mean_low": [0.78, 0.79], "mean_high": [0.83, 0.84], "vs_reference": [-0.01, 0.0],
                          "vs_reference_low": [-0.03, 0.0], "vs_reference_high": [0.02, 0.0],
                          "window_label": [0.6, np.nan], "window_top1": [0.5, np.nan], "chance_label": [0.55, np.nan],
                          "chance_top1": [0.5, np.nan], "windows": [100, np.nan], "purity": [0.9, 0.7]})
    plot(table, tmp_path / "k.png")
    assert (tmp_path / "k.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "-1.0 [-3.0, +2.0] tie" in markdown(table, 250)
