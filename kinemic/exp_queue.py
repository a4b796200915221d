"""Keep DVC's experiment queue running until every queued experiment has run.

`dvc queue start` launches a worker that should run the queue to its end, but in DVC 3 it often stops after one or
two experiments with tasks still queued ("Worker status: 0 active, 0 idle"; treeverse/dvc#10562, seen here with
DVC 3.67 on every long queue of the results table). A queue of 20 benchmark runs left overnight then does one. This
module reads `dvc queue status` (DVC has no JSON form of it) and starts a worker again whenever tasks wait and
nothing runs; `scripts/run_queue.py` is its command line.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

_WORKERS = re.compile(r"^Worker status:\s*(\d+)\s+active,\s*(\d+)\s+idle\s*$")
_STATES = ("Queued", "Running", "Success", "Failed")


@dataclass(frozen=True)
class QueueState:
    """Task counts by status, and the live workers, as `dvc queue status` shows them."""

    queued: int
    running: int
    succeeded: int
    failed: int
    workers: int  # active + idle

    @property
    def done(self) -> bool:
        return self.queued == 0 and self.running == 0


def parse_queue_status(text: str) -> QueueState:
    """Counts from the text of `dvc queue status`: one task per line (status last) and a "Worker status" line.

    An output without the worker line is refused rather than read as an empty queue: a DVC that prints another
    format must stop the loop, not end it as if everything had run."""
    counts = dict.fromkeys(_STATES, 0)
    workers = None
    for line in text.splitlines():
        if match := _WORKERS.match(line.strip()):
            workers = int(match[1]) + int(match[2])
            continue
        fields = line.split()
        if fields and fields[-1] in counts and fields[0] != "Task":
            counts[fields[-1]] += 1
    if workers is None:
        raise ValueError(f"`dvc queue status` printed no 'Worker status: N active, M idle' line:\n{text.strip()}")
    return QueueState(counts["Queued"], counts["Running"], counts["Success"], counts["Failed"], workers)


def worker_needed(state: QueueState, jobs: int = 1) -> bool:
    """Tasks wait and fewer than `jobs` run, with fewer than `jobs` workers alive.

    A running task counts as a live worker too: DVC does not always list the worker of a running task
    (treeverse/dvc#10427), and a second worker beside it would run two experiments on cores sized for one."""
    return state.queued > 0 and state.running < jobs and state.workers < jobs


def keep_queue_running(read_state: Callable[[], QueueState], start_worker: Callable[[], None], jobs: int = 1,
                       interval: float = 60.0, patience: int = 3, sleep: Callable[[float], None] = time.sleep,
                       report: Callable[[str], None] = print) -> QueueState:
    """Poll the queue every `interval` seconds and start a worker whenever one is needed, until no task waits or
    runs; returns the final state.

    A worker that starts but runs nothing leaves the queue as it was; after `patience` such starts in a row the
    loop stops with an error (a task DVC cannot start would otherwise be retried forever)."""
    fruitless = 0
    before: QueueState | None = None
    while not (state := read_state()).done:
        if worker_needed(state, jobs):
            progressed = before is None or state.queued < before.queued
            fruitless = 0 if progressed else fruitless + 1
            if fruitless >= patience:
                raise RuntimeError(
                    f"{patience} workers in a row started and ran nothing ({state.queued} tasks still queued); "
                    "see `dvc queue logs <task>` and .dvc/tmp/exps/celery/dvc-exp-worker-*.out")
            report(f"{state.queued} queued, {state.running} running, {state.workers} workers: starting one")
            start_worker()
            before = state
        sleep(interval)
    report(f"queue done: {state.succeeded} succeeded, {state.failed} failed")
    return state
