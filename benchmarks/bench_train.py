"""Benchmark: KineMIC training steps per second at the embedded size and the paper size (run on purpose).

    .venv/bin/python benchmarks/bench_train.py                   # both sizes on CPU, ~2 min on 2 cores
    .venv/bin/python benchmarks/bench_train.py --device cuda --sizes paper --precision bf16

One step = the full method (teacher stream on 30 soft-paired prior motions, LoRA student on 30 target samples and on
the 30 mined windows, MIC on all three, SNN + reconstruction + distillation + dww, AdamW with clipping), on random
weights and random data of the real shapes: target clips of 30-80 frames, prior motions of up to `prior_frames`.
The 'embedded' size is the default params (MDM 128 wide, 4 layers, prior crops of 80 frames); 'paper' is the official
MDM (512, 8 layers) with HumanML3D-length prior motions (196 frames) and the authors' 512-d MIC.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import pandas as pd
import torch

from kinemic.corpus import PreparedPrior
from kinemic.models.mdm import MDM, MDMConfig
from kinemic.motion import FeatureStats
from kinemic.objectives import MemoryBank
from kinemic.target_set import PreparedTarget
from kinemic.teacher import TeacherCheckpoint
from kinemic.training import (
    StepInputs,
    TrainConfig,
    build_student,
    build_training_data,
    draw_batch,
    kinemic_step,
)

SIZES = {
    "embedded": (MDMConfig(latent_dim=128, ff_size=512, num_layers=4, num_heads=4, dropout=0.0, text_dim=384,
                           mask_frames=True), 80, {"rank": 16, "alpha": 32.0, "dropout": 0.0}),
    "paper": (MDMConfig(latent_dim=512, ff_size=1024, num_layers=8, num_heads=4, dropout=0.1, text_dim=512,
                        mask_frames=True), 196, {"rank": 16, "alpha": 32.0, "dropout": 0.1}),
}


def _data(text_dim: int, prior_frames: int, rng: np.random.Generator):
    stats = FeatureStats(mean=np.zeros(263, np.float32), std=np.ones(263, np.float32))
    lengths = rng.integers(40, prior_frames + 1, size=300)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    ids = [f"{i:06d}" for i in range(300)]
    motions = pd.DataFrame({"motion_id": ids, "source_id": ids, "split": "train", "offset": offsets,
                            "length": lengths, "start_frame": 0})
    captions = pd.DataFrame({"motion_id": ids, "caption": [f"caption {i}" for i in range(300)], "tokens": "",
                             "start": 0.0, "end": 0.0})
    prior = PreparedPrior(rng.normal(size=(lengths.sum(), 263)).astype(np.float32), motions, captions, stats)
    rows, feats = [], []
    for c in range(3):
        for k in range(10):
            rows.append(dict(sample_id=f"S018C001P{k + 1:03d}R001A{c + 99:03d}", setup=18, camera=1, performer=k + 1,
                             replication=1, action=c + 99, class_index=c, class_name=f"class {c}", caption="",
                             split="fewshot"))
            feats.append(rng.normal(size=(int(rng.integers(30, 81)), 263)).astype(np.float32))
    joints = [np.zeros((len(f), 22, 3), np.float32) for f in feats]
    target = PreparedTarget.from_clips(pd.DataFrame(rows), feats, joints)
    pairs = pd.DataFrame([dict(class_id=c, class_name=f"class {c}", prompt=f"prompt {c}", rank=r,
                               motion_id=ids[100 * c + r], caption="", similarity=0.5)
                          for c in range(3) for r in range(100)])

    def embed(texts: list[str]) -> np.ndarray:
        return np.random.default_rng(len(texts)).normal(size=(len(texts), text_dim)).astype(np.float32)

    return build_training_data(target, pairs, prior, embed), stats


def bench(size: str, device: torch.device, precision: str, reps: int) -> float:
    config, prior_frames, lora = SIZES[size]
    torch.manual_seed(0)
    teacher_model = MDM.from_config(config).to(device).eval().requires_grad_(False)
    data, stats = _data(config.text_dim, prior_frames, np.random.default_rng(0))
    teacher = TeacherCheckpoint(teacher_model, stats, 100, "cosine", {}, prior_frames, "bench")
    train = TrainConfig(lora=lora, precision=precision, device=str(device), lr=1e-4)
    parts = build_student(teacher_model, 3, train)
    parts.student.train()
    params = [p for p in parts.student.parameters() if p.requires_grad] + list(parts.mic.parameters())
    optimizer = torch.optim.AdamW(params + [parts.logit_scale], lr=train.lr)
    rng, generator, bank = np.random.default_rng(0), torch.Generator().manual_seed(0), MemoryBank(60)
    diffusion = teacher.diffusion()
    times = []
    for rep in range(reps + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        batch = draw_batch(data, train, rng, device, teacher.max_frames)
        loss, _ = kinemic_step(StepInputs(parts=parts, teacher=teacher_model, diffusion=diffusion, data=data,
                                          batch=batch, stats=stats, config=train, bank=bank, generator=generator,
                                          device=device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if rep > 0:  # the first step warms up allocators and kernels
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device {device}, {torch.get_num_threads()} threads, precision {args.precision}, malloc tuned: "
          f"{'MALLOC_MMAP_THRESHOLD_' in os.environ}")
    for size in args.sizes:
        seconds = bench(size, device, args.precision, args.reps if size == "embedded" or device.type == "cuda" else 2)
        print(f"{size:9s}: {seconds:.3f} s per KineMIC step = {1 / seconds:.2f} steps/s (batch 30 target + 30 prior)")


if __name__ == "__main__":
    main()
