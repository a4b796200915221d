"""Keeping DVC's experiment queue running: reading `dvc queue status` and restarting a worker that stopped early."""

from __future__ import annotations

import subprocess

import pytest

from kinemic.exp_queue import QueueState, keep_queue_running, parse_queue_status, worker_needed
from tests.script_modules import load_module

# As DVC 3.67 printed it here, a worker having stopped after one task (treeverse/dvc#10562); the older "Created"
# form with a date and an unnamed task included.
STOPPED = """\
Task     Name                        Created       Status
8b8cbc2  benchmark-lora-d1-g42       06:17 AM      Queued
85db048  benchmark-scratch-d1-g42    06:17 AM      Queued
44d004e                              Sep 19, 2024  Queued
c4f02bf  benchmark-dww-only-d1-g42   06:17 AM      Success
e0dd918  benchmark-dist-only-d1-g42  03:05 AM      Failed

Worker status: 0 active, 0 idle
"""


def test_status_text_is_counted_by_task_state():
    assert parse_queue_status(STOPPED) == QueueState(queued=3, running=0, succeeded=1, failed=1, workers=0)
    running = STOPPED.replace("06:17 AM      Queued", "06:17 AM      Running", 1).replace("0 active, 0 idle",
                                                                                        "1 active, 1 idle")
    assert parse_queue_status(running) == QueueState(queued=2, running=1, succeeded=1, failed=1, workers=2)


def test_status_without_worker_line_is_refused_not_read_as_done():
    with pytest.raises(ValueError, match="Worker status"):
        parse_queue_status(STOPPED.split("\n\n")[0])


def test_installed_dvc_prints_what_the_parser_reads(tmp_path, monkeypatch):
    """The format check against the DVC this project installs: an empty queue in a new repository."""
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["dvc", "init", "-q"], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)
    state = load_module("scripts/run_queue.py").read_state()
    assert state == QueueState(0, 0, 0, 0, 0) and state.done


@pytest.mark.parametrize(("state", "jobs", "needed"), [
    (QueueState(3, 0, 1, 0, 0), 1, True),    # stopped early: the case of treeverse/dvc#10562
    (QueueState(3, 1, 1, 0, 0), 1, False),   # a task runs though no worker is listed (treeverse/dvc#10427)
    (QueueState(3, 0, 1, 0, 1), 1, False),   # a worker is between two tasks
    (QueueState(0, 0, 4, 0, 0), 1, False),   # nothing left
    (QueueState(3, 1, 1, 0, 1), 2, True),    # one of two workers stopped
])
def test_worker_needed_only_when_tasks_wait_and_none_runs(state, jobs, needed):
    assert worker_needed(state, jobs) is needed


class EarlyStoppingQueue:
    """DVC as observed: a started worker runs one task (one poll long) and then exits with tasks still queued."""

    def __init__(self, tasks: int) -> None:
        self.queued, self.running, self.succeeded, self.worker = tasks, 0, 0, False
        self.starts = 0

    def read_state(self) -> QueueState:
        if self.running:  # the task finishes, and the worker stops with it
            self.running, self.succeeded, self.worker = 0, self.succeeded + 1, False
        elif self.worker and self.queued:
            self.queued, self.running = self.queued - 1, 1
        return QueueState(self.queued, self.running, self.succeeded, 0, int(self.worker))

    def start_worker(self) -> None:
        assert not self.worker and not self.running, "a second worker was started beside a live one"
        self.worker, self.starts = True, self.starts + 1


def test_queue_runs_to_its_end_with_a_worker_that_stops_after_each_task():
    queue, waits, lines = EarlyStoppingQueue(tasks=4), [], []
    final = keep_queue_running(queue.read_state, queue.start_worker, interval=30.0, sleep=waits.append,
                               report=lines.append)
    assert final == QueueState(0, 0, 4, 0, 0)
    assert queue.starts == 4 and set(waits) == {30.0}
    assert lines[-1] == "queue done: 4 succeeded, 0 failed"


def test_workers_that_run_nothing_stop_the_loop_with_an_error():
    queue = EarlyStoppingQueue(tasks=2)
    dead_start = lambda: setattr(queue, "starts", queue.starts + 1)  # noqa: E731  (DVC starts nothing)
    with pytest.raises(RuntimeError, match="3 workers in a row started and ran nothing"):
        keep_queue_running(queue.read_state, dead_start, patience=3, sleep=lambda _: None, report=lambda _: None)
    assert queue.starts == 3
