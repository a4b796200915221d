"""Throughput of joints -> HumanML3D features (run on purpose: `python benchmarks/bench_motion.py`).

Prints sequences/second for a 170-frame sequence processed alone and for 1,000 sequences of 40-196 frames processed in
one batched call. Reference point: the official `process_file` takes about 11 ms per 170-frame sequence on one core of
the reference machine (reference/environment.md), i.e. about 91 sequences/s; the target is 3x that.
Input: the shipped HumanML3D clip 012314 when ../shared is present, else a procedurally wobbling body.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from kinemic.motion import joints_to_features, joints_to_features_batch
from kinemic.skeleton import PARENTS, TARGET_BONE_LENGTHS

OFFICIAL_MS_PER_170 = 11.0
HUMANML3D_SEQUENCES = 29_228


def _reference_motion() -> np.ndarray:
    fixture = Path(__file__).resolve().parents[2] / "shared/fixtures/parity/humanml3d_features.npz"
    if fixture.is_file():
        with np.load(fixture) as data:
            return data["hml012314__input_joints"].astype(np.float64)
    rng = np.random.default_rng(0)
    t = np.arange(170)[:, None] / 20.0
    joints = np.zeros((170, 22, 3))
    joints[:, 0] = np.concatenate([0.4 * t, 0.95 + 0.02 * np.sin(6 * t), 0.2 * t], axis=-1)
    for j in range(1, 22):
        direction = rng.normal(size=3) + 0.2 * np.sin(3 * t + j)
        direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
        joints[:, j] = joints[:, PARENTS[j]] + TARGET_BONE_LENGTHS[j] * direction
    return joints


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()

    motion = _reference_motion()
    joints_to_features(motion)  # warm-up
    single = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for _ in range(50):
            joints_to_features(motion)
        single.append((time.perf_counter() - start) / 50)
    ms = 1000 * min(single)
    print(f"single 170-frame sequence: {ms:.2f} ms ({1000 / ms:.0f} seq/s); official ~{OFFICIAL_MS_PER_170:.0f} ms "
          f"-> {OFFICIAL_MS_PER_170 / ms:.1f}x")

    rng = np.random.default_rng(0)
    looped = np.concatenate([motion, motion[::-1]])  # 340 frames to cut 41..197-frame clips from
    lengths = rng.integers(41, 198, size=args.batch)
    seqs = [looped[s : s + n] for s, n in zip(rng.integers(0, len(looped) - lengths), lengths, strict=True)]
    batch = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        joints_to_features_batch(seqs)
        batch.append(time.perf_counter() - start)
    rate = args.batch / min(batch)
    mean_len = lengths.mean()
    official_rate = 1000 / (OFFICIAL_MS_PER_170 * mean_len / 170)  # official cost scaled by length, generously
    print(f"batch of {args.batch} sequences of 40-196 feature rows (mean {mean_len:.0f} frames): {min(batch):.2f} s "
          f"= {rate:.0f} seq/s on one process; official (length-scaled) ~{official_rate:.0f} seq/s -> "
          f"{rate / official_rate:.1f}x")
    print(f"all of HumanML3D ({HUMANML3D_SEQUENCES} sequences) at this rate: {HUMANML3D_SEQUENCES / rate:.0f} s")


if __name__ == "__main__":
    main()
