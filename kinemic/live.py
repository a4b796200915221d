"""Training curves through DVCLive: open a `Live` for a stage, log one row per logged step, close.

A row is `{"step": s, "loss": ..., "lr": ..., ...}`. DVCLive writes one `<dir>/plots/metrics/<name>.tsv` per quantity
(`step` and the value) and `<dir>/metrics.json` with the last row and its step, rewritten at every row, so that
`dvc exp show` follows a running experiment and `dvc plots` reads the curves.

What goes where (the project's rule: hashed DVC outputs hold no run facts): a stage's curves (losses, learning rate)
go to a directory dvc.yaml declares, without timestamps, so the same params give the same bytes; step times go to
`runs/live/<stage>` beside the run facts (`kinemic.runtime.StageRun`), which no stage declares and git ignores.

DVCLive is configured to be a logger only: it writes no dvc.yaml of its own (the project's declares the plots), saves
no experiment (`dvc exp run` does that) and renders no report. Only rank 0 of a torchrun launch opens one (the
caller's choice: this module knows nothing of ranks). Without dvclive installed, opening a log raises ImportError
saying how to install it: the stage's declared outputs could not be written anyway.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType

from kinemic.runtime import RUNS_DIR

METRICS_FILE = "metrics.json"


def run_facts_dir(params_path: str | Path, stage: str) -> Path:
    """`runs/live/<stage>` beside the params file: where a stage logs its step times (not a DVC output)."""
    return Path(params_path).resolve().parent / RUNS_DIR / "live" / stage


def curve_file(directory: str | Path, name: str) -> Path:
    """The TSV DVCLive writes for quantity `name` (columns `step`, `name`)."""
    return Path(directory) / "plots" / "metrics" / f"{name}.tsv"


class CurveLog:
    """One DVCLive `Live` in `directory`; emptied on opening (DVCLive's own cleanup of earlier curves).

    `timestamps` adds DVCLive's wall-clock column to every TSV: for the run-facts area only, never a DVC output.
    """

    def __init__(self, directory: str | Path, timestamps: bool = False) -> None:
        try:
            from dvclive import Live
        except ImportError as err:
            raise ImportError(f"dvclive is needed to write the training curves to {directory}: install the project "
                              "with `pip install -c constraints.txt -e .` (or `make setup`)") from err
        self.directory = Path(directory)
        self._timestamps = timestamps
        # Start empty ourselves: DVCLive keeps earlier curves when DVCLIVE_RESUME is set in the environment, and the
        # hashed curves must hold this run's rows only.
        shutil.rmtree(self.directory / "plots", ignore_errors=True)
        (self.directory / METRICS_FILE).unlink(missing_ok=True)
        self._live = Live(str(directory), save_dvc_exp=False, dvcyaml=None, report=None, resume=False)
        # dvc.yaml declares the plots folder: it exists even for a stage that logs no row (zero-shot, a released or
        # official teacher without a curve), as an empty folder, which DVC tracks.
        curve_file(self.directory, "any").parent.mkdir(parents=True, exist_ok=True)
        self._closed = False

    def log(self, row: Mapping[str, float]) -> None:
        """Log every quantity of `row` at its `step` and rewrite metrics.json."""
        if "step" not in row:
            raise ValueError(f"a curve row needs its 'step', got the keys {sorted(row)}")
        self._live.step = int(row["step"])
        for name, value in row.items():
            if name != "step":
                self._live.log_metric(name, float(value), timestamp=self._timestamps)
        self._live.next_step()

    def close(self) -> None:
        """Write the final metrics.json (the last row; `{}` for a log without rows)."""
        if not self._closed:
            self._live.end()
            self._closed = True

    def __enter__(self) -> CurveLog:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def write_curves_live(directory: str | Path, rows: Iterable[Mapping[str, float]]) -> None:
    """Replace what `directory` holds by exactly `rows`: a stage's complete curve, whatever a resumed run logged as
    it went, or a curve it did not train (the released teacher's)."""
    with CurveLog(directory) as log:
        for row in rows:
            log.log(row)
