"""Benchmark: teacher pretraining throughput in 1 process and in 2 data-parallel processes (run on purpose).

    .venv/bin/python benchmarks/bench_ddp.py [--steps 30] [--repeats 2] [--threads 2]

Times `kinemic.teacher.pretrain_teacher` at the embedded size (params.yaml's teacher.model, batch_size and
diffusion_steps; a random 384-d text table in place of MiniLM) on a random prior of the real shapes (300 motions of
40-120 frames, crops of up to teacher.max_frames). The two settings use the same total threads: 1 process x `threads`
threads against `threads` processes x 1 thread (torchrun, gloo, each rank half of every global batch). They are
interleaved (1, N, 1, N, ...), each in a fresh process with OpenMP threads sleeping while they wait, as the stages
run them (stages/__init__.py), and the first `--warmup` steps of each run are not timed.
Samples/s counts the global batch. Run it on a quiet machine: a busy core slows the processes that share it unevenly,
and a data-parallel step waits for the slowest rank.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]


def _prior(max_frames: int):
    from kinemic.corpus import PreparedPrior
    from kinemic.motion import FeatureStats

    rng = np.random.default_rng(0)
    lengths = rng.integers(40, max(41, max_frames + 41), size=300)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    ids = [f"{i:06d}" for i in range(300)]
    motions = pd.DataFrame({"motion_id": ids, "source_id": ids, "split": "train", "offset": offsets,
                            "length": lengths, "start_frame": 0})
    captions = pd.DataFrame({"motion_id": ids, "caption": [f"caption {i}" for i in range(300)], "tokens": "",
                             "start": 0.0, "end": 0.0})
    stats = FeatureStats(mean=np.zeros(263, np.float32), std=np.ones(263, np.float32))
    return PreparedPrior(rng.normal(size=(lengths.sum(), 263)).astype(np.float32), motions, captions, stats)


def _embed(texts: list[str]) -> np.ndarray:
    """The same random unit vectors on every rank (MiniLM's 384 dimensions)."""
    table = np.random.default_rng(1).normal(size=(len(texts), 384)).astype(np.float32)
    return table / np.linalg.norm(table, axis=1, keepdims=True)


def worker(threads: int, steps: int, warmup: int) -> None:
    """One run of pretraining (one rank of it under torchrun); rank 0 prints its samples/s as a JSON line."""
    from kinemic.distributed import current_world
    from kinemic.params import config_from_params, load_section
    from kinemic.runtime import apply_threads
    from kinemic.teacher import TeacherConfig, pretrain_teacher

    apply_threads(threads)
    params = load_section("teacher", REPO_ROOT / "params.yaml")
    world = current_world()
    config = config_from_params(TeacherConfig, {
        "model": params["model"], "batch_size": params["batch_size"], "diffusion_steps": params["diffusion_steps"],
        "max_frames": params["max_frames"], "lr": params["lr"], "steps": warmup + steps, "log_every": 1,
        "device": "cpu", "card": None, "nproc": world.size,
    }, "teacher")
    stamps: dict[int, float] = {}
    pretrain_teacher(_prior(config.max_frames), _embed, config, {"name": "random"},
                     progress=lambda step, total, loss: stamps.setdefault(step, time.perf_counter()))
    if world.is_main:
        seconds = stamps[warmup + steps] - stamps[warmup]
        print(json.dumps({"samples_per_s": steps * config.batch_size / seconds, "batch_size": config.batch_size,
                          "processes": world.size, "threads": threads}), flush=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(processes: int, threads: int, steps: int, warmup: int) -> dict:
    args = [str(Path(__file__).resolve()), "--worker", "--threads", str(threads), "--steps", str(steps),
            "--warmup", str(warmup)]
    if processes > 1:
        args = ["-m", "torch.distributed.run", "--nnodes=1", f"--nproc_per_node={processes}",
                "--master_addr=127.0.0.1", f"--master_port={_free_port()}", *args]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1"}
    if "OMP_WAIT_POLICY" not in env and "GOMP_SPINCOUNT" not in env:
        env["OMP_WAIT_POLICY"] = "PASSIVE"  # as the stages run (stages/__init__.py)
    done = subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{processes} process(es) failed:\n{done.stderr[-4000:]}")
    return json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each setting, interleaved")
    parser.add_argument("--threads", type=int, default=2, help="total threads: 1 x threads vs threads x 1")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.threads, args.steps, args.warmup)
        return
    settings = [(1, args.threads), (args.threads, 1)]  # (processes, threads each)
    results: dict[tuple[int, int], list[float]] = {s: [] for s in settings}
    for repeat in range(args.repeats):
        for processes, threads in settings:
            rate = _run(processes, threads, args.steps, args.warmup)["samples_per_s"]
            results[(processes, threads)].append(rate)
            print(f"  repeat {repeat + 1}: {processes} process(es) x {threads} thread(s): {rate:.1f} samples/s",
                  flush=True)
    print(f"\nteacher pretraining at the embedded size, median of {args.repeats} runs of {args.steps} steps")
    print("| processes x threads | samples/s | relative to 1 process |")
    print("|---|---|---|")
    single = statistics.median(results[settings[0]])
    for processes, threads in settings:
        rate = statistics.median(results[(processes, threads)])
        print(f"| {processes} x {threads} | {rate:.1f} | {rate / single:.2f} |")


if __name__ == "__main__":
    main()
