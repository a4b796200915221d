"""kinemic.live: the training curves DVCLive writes, and what stays out of hashed outputs."""

from __future__ import annotations

import json
import sys

import pytest

from kinemic.live import CurveLog, curve_file, run_facts_dir, write_curves_live

ROWS = [{"step": 2, "loss": 1.5, "lr": 1e-3}, {"step": 4, "loss": 1.25, "lr": 5e-4}]


@pytest.fixture(autouse=True)
def outside_any_repository(tmp_path, monkeypatch):
    """DVCLive looks for the DVC repository of the working directory: a bare folder keeps these tests to the log."""
    monkeypatch.chdir(tmp_path)


def test_curves_and_last_row_without_timestamps(tmp_path):
    write_curves_live(tmp_path / "live", ROWS)
    assert curve_file(tmp_path / "live", "loss").read_text() == "step\tloss\n2\t1.5\n4\t1.25\n"
    assert curve_file(tmp_path / "live", "lr").read_text() == "step\tlr\n2\t0.001\n4\t0.0005\n"
    assert json.loads((tmp_path / "live" / "metrics.json").read_text()) == {"loss": 1.25, "lr": 5e-4, "step": 4}
    names = sorted(str(p.relative_to(tmp_path / "live")) for p in (tmp_path / "live").rglob("*") if p.is_file())
    assert names == ["metrics.json", "plots/metrics/loss.tsv", "plots/metrics/lr.tsv"]  # no dvc.yaml, no report


def test_the_same_rows_give_the_same_bytes_and_replace_what_was_there(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    write_curves_live(first, ROWS)
    with CurveLog(second) as log:  # a run that logged more, or other quantities, before being replaced
        log.log({"step": 9, "loss": 3.0, "other": 1.0})
    write_curves_live(second, ROWS)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)


def test_step_times_carry_timestamps_and_live_with_the_run_facts(tmp_path):
    folder = run_facts_dir(tmp_path / "params.yaml", "teacher")
    assert folder == tmp_path / "runs" / "live" / "teacher"
    with CurveLog(folder, timestamps=True) as log:
        log.log({"step": 25, "step_seconds": 0.3})
    header, row = curve_file(folder, "step_seconds").read_text().splitlines()
    assert header.split("\t") == ["timestamp", "step", "step_seconds"] and row.endswith("\t25\t0.3")


def test_no_rows_still_write_metrics(tmp_path):
    write_curves_live(tmp_path / "live", [])  # the zero-shot student trains no step; dvc.yaml declares the file
    assert json.loads((tmp_path / "live" / "metrics.json").read_text()) == {}
    assert (tmp_path / "live" / "plots").is_dir()  # the declared plots output exists, empty


def test_a_resume_request_in_the_environment_does_not_append(tmp_path, monkeypatch):
    monkeypatch.setenv("DVCLIVE_RESUME", "true")
    write_curves_live(tmp_path / "live", ROWS)
    write_curves_live(tmp_path / "live", ROWS[:1])
    assert curve_file(tmp_path / "live", "loss").read_text() == "step\tloss\n2\t1.5\n"


def test_a_row_needs_its_step(tmp_path):
    with CurveLog(tmp_path / "live") as log, pytest.raises(ValueError, match="'step'"):
        log.log({"loss": 1.0})


def test_without_dvclive_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "dvclive", None)
    with pytest.raises(ImportError, match="pip install -c constraints.txt -e ."):
        CurveLog(tmp_path / "live")
