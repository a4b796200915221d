"""Run DVC's experiment queue to its end: `dvc queue start`, started again whenever its worker stops early.

    python scripts/queue_results.py --profile benchmark --draws 0 1 2 --methods full zeroshot
    python scripts/run_queue.py                       # in the foreground; or: nohup python scripts/run_queue.py &
    python scripts/results_table.py --profile benchmark

DVC's worker often stops after one or two experiments with tasks still queued (treeverse/dvc#10562; kinemic.exp_queue
says more). This polls `dvc queue status` every --interval seconds, starts a worker when tasks wait and none runs,
and returns when nothing is queued or running (exit status 1 when a task failed).
"""

from __future__ import annotations

import stage_pins  # noqa: F401  (the stages' kernel pins, before numpy and torch load)

# isort: split
import argparse
import subprocess
import sys

from kinemic.exp_queue import QueueState, keep_queue_running, parse_queue_status


def read_state() -> QueueState:
    shown = subprocess.run(["dvc", "queue", "status"], capture_output=True, text=True)
    if shown.returncode != 0:
        raise SystemExit(f"`dvc queue status` failed: {shown.stderr.strip()}")
    return parse_queue_status(shown.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1, help="workers, as dvc queue start -j (1 on a 2-core machine)")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between looks at the queue")
    args = parser.parse_args()
    state = keep_queue_running(
        read_state, lambda: subprocess.run(["dvc", "queue", "start", "-j", str(args.jobs)], check=True),
        jobs=args.jobs, interval=args.interval, report=lambda line: print(line, flush=True))
    sys.exit(1 if state.failed else 0)


if __name__ == "__main__":
    main()
