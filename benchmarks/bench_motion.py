"""Benchmark: joints -> HumanML3D features, kinemic.motion against a port of the official `process_file`, same run.

Run on purpose (not a test):

    .venv/bin/python benchmarks/bench_motion.py                  # about 1 minute on 2 CPU cores
    .venv/bin/python benchmarks/bench_motion.py --threads 2 --repeats 15 --batch 300

Baseline: `official_port.process_file` (beside this file), the official algorithm written plainly with the official
code's cost profile: loops over chains and joints with each step over all frames, re-targeting by real IK + FK, float32
torch round trips in every quaternion helper (see its docstring). Before timing, both implementations run on the same
inputs and must agree: max |difference| <= 1e-4 on the 259 continuous dims (the tolerance of the parity tests) and
identical foot contacts; with the parity fixture present the port is also checked against the official output file.

Timing: the two implementations alternate within each repeat (ABBA order, so neither always runs first), under the same
thread settings: `--threads` (default 1, the reference point "one core") is applied to torch and, through
threadpoolctl when installed, to the BLAS/OpenMP pools. For byte-for-byte the same pools from process start, also
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 before running. Each repeat yields one time per
implementation and one speedup (baseline / ours); the report gives the median and the interquartile range over repeats.

Workloads: one 170-frame sequence (the HumanML3D clip 012314 of the parity fixture, else a procedural body), and a
batch of sequences of 40-196 feature rows cut from it; the baseline processes the batch one sequence at a time, ours
in one `joints_to_features_batch` call.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from official_port import process_file

from kinemic.motion import joints_to_features, joints_to_features_batch
from kinemic.skeleton import PARENTS, TARGET_BONE_LENGTHS, TARGET_OFFSETS

REPO = Path(__file__).resolve().parents[1]
FIXTURES = (
    REPO / "tests/fixtures/parity/humanml3d_features.npz",
    REPO.parent / "shared/fixtures/parity/humanml3d_features.npz",
)
CLIP = "hml012314"
ATOL = 1e-4  # as the parity tests against the official outputs
HUMANML3D_SEQUENCES = 29_228


def _reference_motion() -> tuple[np.ndarray, np.ndarray | None, str]:
    """(joints (170, 22, 3), the official features of them or None, where they came from)."""
    for path in FIXTURES:
        if path.is_file():
            with np.load(path) as data:
                return data[f"{CLIP}__input_joints"].astype(np.float64), data[f"{CLIP}__features"], str(path)
    rng = np.random.default_rng(0)
    t = np.arange(170)[:, None] / 20.0
    joints = np.zeros((170, 22, 3))
    joints[:, 0] = np.concatenate([0.4 * t, 0.95 + 0.02 * np.sin(6 * t), 0.2 * t], axis=-1)
    for j in range(1, 22):
        direction = rng.normal(size=3) + 0.2 * np.sin(3 * t + j)
        direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
        joints[:, j] = joints[:, PARENTS[j]] + TARGET_BONE_LENGTHS[j] * direction
    return joints, None, "procedural body (no parity fixture found)"


def _disagreement(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    """(max |a - b| over the 259 continuous dims, number of differing foot-contact entries)."""
    return float(np.abs(a[:, :259] - b[:, :259]).max()), int((a[:, 259:] != b[:, 259:]).sum())


def _interleaved(
    baseline: Callable[[], object], ours: Callable[[], object], repeats: int, calls_base: int, calls_ours: int
) -> tuple[list[float], list[float]]:
    """Seconds per call of each, one value per repeat; the order alternates (ABBA) so drift hits both alike."""
    base_s, ours_s = [], []
    for r in range(repeats):
        runs = [(baseline, calls_base, base_s), (ours, calls_ours, ours_s)]
        for fn, calls, sink in runs if r % 2 == 0 else runs[::-1]:
            gc.collect()
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            sink.append((time.perf_counter() - start) / calls)
    return base_s, ours_s


def _median_iqr(values: list[float]) -> tuple[float, float, float]:
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q2, q1, q3


def _fmt(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    med, lo, hi = (scale * v for v in _median_iqr(values))
    return f"{med:.{digits}f} (IQR {lo:.{digits}f}-{hi:.{digits}f})"


def _thread_limits(threads: int) -> contextlib.AbstractContextManager:
    torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print("threadpoolctl is not installed: BLAS/OpenMP pools follow OMP_NUM_THREADS / OPENBLAS_NUM_THREADS")
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="threads for both implementations (torch and BLAS)")
    parser.add_argument("--repeats", type=int, default=10, help="interleaved repeats per workload")
    parser.add_argument("--batch", type=int, default=200, help="sequences in the batch workload (both implementations)")
    args = parser.parse_args()

    with _thread_limits(args.threads):
        motion, official, source = _reference_motion()
        print(f"input: {CLIP} from {source}; threads: {args.threads} (torch {torch.get_num_threads()})")

        # Agreement first: no timing of implementations that disagree.
        port, ours = process_file(motion, TARGET_OFFSETS), joints_to_features(motion)
        diff, contacts = _disagreement(port, ours)
        print(f"agreement, 170-frame clip: max |port - ours| = {diff:.1e} (tolerance {ATOL:g}), "
              f"foot contacts differing: {contacts}")
        if official is not None:
            d_off, c_off = _disagreement(port, official)
            print(f"           the port against the official output file: {d_off:.1e}, contacts differing: {c_off}")
            if d_off > ATOL or c_off:
                raise SystemExit("the official port no longer reproduces the official output; fix it before timing")
        rng = np.random.default_rng(0)
        looped = np.concatenate([motion, motion[::-1]])  # 340 frames to cut 41..197-frame clips from
        lengths = rng.integers(41, 198, size=args.batch)
        seqs = [looped[s : s + n] for s, n in zip(rng.integers(0, len(looped) - lengths), lengths, strict=True)]
        batch_diff, batch_contacts = 0.0, 0
        for seq, feats in zip(seqs, joints_to_features_batch(seqs), strict=True):
            d, c = _disagreement(process_file(seq, TARGET_OFFSETS), feats)
            batch_diff, batch_contacts = max(batch_diff, d), batch_contacts + c
        print(f"agreement, batch of {args.batch}: max |port - ours| = {batch_diff:.1e}, "
              f"foot contacts differing: {batch_contacts}")
        if max(diff, batch_diff) > ATOL or contacts or batch_contacts:
            raise SystemExit("kinemic.motion and the official port disagree; no timing")

        # One 170-frame sequence: ~0.15 s of baseline and of ours per repeat.
        base_s, ours_s = _interleaved(
            lambda: process_file(motion, TARGET_OFFSETS), lambda: joints_to_features(motion), args.repeats, 10, 50
        )
        speedup = [b / o for b, o in zip(base_s, ours_s, strict=True)]
        print(f"single 170-frame sequence, ms (median, IQR over {args.repeats} repeats):")
        print(f"  official port {_fmt(base_s, 1000)} = {1 / statistics.median(base_s):.0f} seq/s")
        print(f"  kinemic       {_fmt(ours_s, 1000)} = {1 / statistics.median(ours_s):.0f} seq/s")
        print(f"  speedup       {_fmt(speedup)}x")

        # The batch: the baseline one sequence at a time, ours in one call.
        base_s, ours_s = _interleaved(
            lambda: [process_file(s, TARGET_OFFSETS) for s in seqs],
            lambda: joints_to_features_batch(seqs),
            args.repeats,
            1,
            1,
        )
        speedup = [b / o for b, o in zip(base_s, ours_s, strict=True)]
        per_seq = 1000 / args.batch
        rate_base, rate_ours = args.batch / statistics.median(base_s), args.batch / statistics.median(ours_s)
        print(f"batch of {args.batch} sequences of 40-196 feature rows (mean {lengths.mean() - 1:.0f}), "
              "ms per sequence (median, IQR):")
        print(f"  official port {_fmt(base_s, per_seq, 3)} = {rate_base:.0f} seq/s (one by one)")
        print(f"  kinemic       {_fmt(ours_s, per_seq, 3)} = {rate_ours:.0f} seq/s (one batched call)")
        print(f"  speedup       {_fmt(speedup)}x")
        print(f"all of HumanML3D ({HUMANML3D_SEQUENCES} sequences) at these rates: official port "
              f"{HUMANML3D_SEQUENCES / rate_base:.0f} s, kinemic {HUMANML3D_SEQUENCES / rate_ours:.0f} s")


if __name__ == "__main__":
    main()
