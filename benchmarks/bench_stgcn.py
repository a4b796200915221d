"""Benchmark: ST-GCN train-step and eval time at the protocol's batch (64 clips x 100 frames x 22 joints).

Run on purpose (not a test):

    MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=4294967296 .venv/bin/python benchmarks/bench_stgcn.py

It times one SGD step (forward, cross-entropy, backward, update, as `kinemic.classifier` trains) and one eval forward
for PYSKL's width (base_channels 64, 3.1 M parameters) and a narrow one (16), in fp32 and under bf16 autocast.

On CPU, glibc's allocator returns the large activation buffers to the kernel after every step and page-faults them
back in the next; `MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=4294967296` stop that and halve the step
time (reference/environment.md). glibc reads them at process start, so they must be in the environment before Python
starts (the Makefile exports them); the script prints whether they are set. bf16 autocast only pays on GPUs and on
CPUs with native bf16 (AVX512-BF16 / AMX, printed below); elsewhere it is emulated and 2-3x slower than fp32.

The default run takes 1.5-2 minutes on 2 idle cores (4 on a shared machine; `--precisions fp32` halves it). Other
processes on the machine inflate the numbers a lot (OpenMP threads spin-wait for a busy core: `--threads 1` degrades
more gracefully), so compare runs made under the same load.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from kinemic.devices import autocast, resolve_device
from kinemic.models.stgcn import STGCN, STGCNConfig
from kinemic.skeleton import NUM_JOINTS

MALLOC_VARS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def _cpu_bf16_flags() -> str:
    """The CPU's native bf16 instructions (Linux only): without them bf16 autocast is emulated and slower than fp32."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = next((line.split(":", 1)[1].split() for line in cpuinfo if line.startswith("flags")), [])
    except OSError:
        return "unknown"
    found = [flag for flag in ("avx512_bf16", "amx_bf16") if flag in flags]
    return ", ".join(found) if found else "none (bf16 is emulated)"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device, warmup: int, repeats: int) -> float:
    """Median seconds of `repeats` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_one(width: int, precision: str, args: argparse.Namespace, device: torch.device) -> dict:
    torch.manual_seed(0)
    model = STGCN(STGCNConfig(num_classes=args.classes, base_channels=width)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    x = torch.randn(args.batch, args.frames, NUM_JOINTS, 3, device=device)  # (N, T, V, C)
    y = torch.randint(args.classes, (args.batch,), device=device)

    def train_step() -> None:
        model.train()
        with autocast(device, precision):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def eval_forward() -> None:
        model.eval()
        with torch.inference_mode(), autocast(device, precision):
            model(x)

    return {
        "width": width,
        "precision": precision,
        "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
        "train_step_s": _timed(train_step, device, args.warmup, args.steps),
        "eval_batch_s": _timed(eval_forward, device, 1, args.steps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 16], help="base_channels to time")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2, help="timed repeats (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed train steps first")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    malloc = {name: os.environ.get(name) for name in MALLOC_VARS}
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, python {platform.python_version()}, device {device}, threads {threads}")
    print(
        "glibc malloc tuning: "
        + ("set (" + ", ".join(f"{k}={v}" for k, v in malloc.items()) + ")" if all(malloc.values()) else "NOT set")
    )
    if device.type == "cpu":
        print(f"CPU bf16 support: {_cpu_bf16_flags()}")
    print(f"batch {args.batch} x {args.frames} frames x {NUM_JOINTS} joints; median of {args.steps} timed steps")
    print(f"{'width':>5} {'precision':>9} {'params':>8} {'train step':>11} {'eval batch':>11} {'clips/s train':>14}")
    for width in args.widths:
        for precision in args.precisions:
            r = bench_one(width, precision, args, device)
            print(
                f"{r['width']:>5} {r['precision']:>9} {r['params_M']:>7.2f}M {r['train_step_s']:>10.3f}s "
                f"{r['eval_batch_s']:>10.3f}s {args.batch / r['train_step_s']:>14.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
