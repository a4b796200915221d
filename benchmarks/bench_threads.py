"""Benchmark: training-step time alone and beside one busy process, for OpenMP wait policies (run on purpose).

    .venv/bin/python benchmarks/bench_threads.py [--repeats 3] [--steps 8]

A 2-core machine is often shared (a second experiment, a test run, an editor's indexer). PyTorch's OpenMP threads
spin-wait between parallel regions by default, so one busy process beside a 2-thread stage can slow it by an order of
magnitude. This times the embedded teacher's training step (MDM 128 wide, 4 layers, 64 crops of 80 frames, AdamW) in
a fresh process per configuration: OMP_WAIT_POLICY unset (libgomp spins up to GOMP_SPINCOUNT, 300,000 by default,
before sleeping), a short spin (GOMP_SPINCOUNT=10000, what the stages set) or PASSIVE (no spinning), idle or beside
one process spinning a core. Configurations are interleaved within each repeat, same threads.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

CHILD = r"""
import statistics, sys, time
import torch
from kinemic.models.mdm import MDM, MDMConfig
torch.set_num_threads(int(sys.argv[1]))
torch.manual_seed(0)
model = MDM(MDMConfig(latent_dim=128, ff_size=512, num_layers=4, num_heads=4, dropout=0.0, text_dim=384,
                      mask_frames=True))
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
x, text = torch.randn(64, 80, 263), torch.randn(64, 384)
t, mask = torch.randint(0, 100, (64,)), torch.ones(64, 80, dtype=torch.bool)
times = []
for step in range(int(sys.argv[2]) + 2):
    start = time.perf_counter()
    loss = (model(x, t, text_emb=text, mask=mask) - x).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step >= 2:  # warm-up steps excluded
        times.append(time.perf_counter() - start)
print(statistics.median(times))
"""


POLICIES = {"unset (spin 300k)": {}, "GOMP_SPINCOUNT=10000": {"GOMP_SPINCOUNT": "10000"},
            "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"}}


def _step_seconds(policy: str, busy: bool, threads: int, steps: int) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(POLICIES[policy])
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, str(threads), str(steps)], env=env, check=True,
                              capture_output=True, text=True, timeout=1200)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    configs = [(policy, busy) for busy in (False, True) for policy in POLICIES]
    results: dict[tuple, list[float]] = {c: [] for c in configs}
    for repeat in range(args.repeats):
        for policy, busy in configs if repeat % 2 == 0 else configs[::-1]:
            results[(policy, busy)].append(_step_seconds(policy, busy, args.threads, args.steps))
            print(f"  repeat {repeat + 1}: {policy}, busy={busy}: "
                  f"{1000 * results[(policy, busy)][-1]:.0f} ms/step", flush=True)
    print(f"\nembedded teacher step, {args.threads} threads, median over {args.repeats} runs of {args.steps} steps")
    print("| OpenMP waiting | idle machine (ms/step) | beside one busy process (ms/step) | slowdown under load |")
    print("|---|---|---|---|")
    for policy in POLICIES:
        idle = statistics.median(results[(policy, False)])
        busy = statistics.median(results[(policy, True)])
        print(f"| {policy} | {1000 * idle:.0f} | {1000 * busy:.0f} | {busy / idle:.1f}x |")


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"({time.perf_counter() - started:.0f} s)")
