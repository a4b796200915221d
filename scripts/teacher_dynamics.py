"""Does the teacher move? Joint speed and acceleration of its samples beside those of prior motions with the caption.

    python scripts/teacher_dynamics.py [--teacher models/teacher/teacher.pt] [--prior data/prepared/prior]
                                       [--caption "a person jogs in place" ...] [--samples 8] [--steps 50]

An undertrained diffusion model fails in two visible ways that FID cannot tell apart: samples collapsed to a static
pose (speed far below the prior's) and samples with left-over noise (acceleration far above it). This prints both, per
caption, for the teacher's samples (guided as in generation) and for up to 30 prior motions whose captions contain the
caption's keyword (`--keyword`, default: the caption's third word).
"""

from __future__ import annotations

import stage_pins  # noqa: F401  (the stages' kernel pins, before numpy and torch load)

# isort: split
import argparse
from pathlib import Path

import numpy as np
import torch

from kinemic.conditioning import TextSpec, default_cache_dir, text_embedder
from kinemic.corpus import PreparedPrior
from kinemic.metrics import motion_dynamics
from kinemic.motion import features_to_joints
from kinemic.sampling import SampleRequest, sample_motions
from kinemic.skeleton import FPS
from kinemic.teacher import TeacherCheckpoint

DEFAULT_CAPTIONS = [
    "a person jogs in place",
    "someone kicks sideways with the left leg",
    "a person stretches both arms above the head",
    "a person walks forward",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", type=Path, default=Path("models/teacher/teacher.pt"))
    parser.add_argument("--prior", type=Path, default=Path("data/prepared/prior"))
    parser.add_argument("--caption", action="append", help="repeatable; default: four embedded-world captions")
    parser.add_argument("--keyword", action="append", help="prior caption keyword per --caption")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--frames", type=int, default=80)
    parser.add_argument("--steps", type=int, default=50, help="respaced sampling steps (0: all)")
    parser.add_argument("--guidance", type=float, default=2.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    captions = args.caption or DEFAULT_CAPTIONS
    keywords = args.keyword or [c.split()[2] if len(c.split()) > 2 else c.split()[-1] for c in captions]
    if len(keywords) != len(captions):
        parser.error("give one --keyword per --caption")
    teacher = TeacherCheckpoint.load(args.teacher)
    embed = text_embedder(TextSpec.from_dict(teacher.text_encoder), default_cache_dir())
    request = SampleRequest(lengths=np.full(len(captions) * args.samples, min(args.frames, teacher.max_frames)),
                            text_emb=np.repeat(embed(captions), args.samples, axis=0))
    with torch.inference_mode():
        samples = sample_motions(teacher.model, teacher.diffusion(args.steps or None), teacher.stats, request,
                                 guidance=args.guidance, pad_to=teacher.max_frames, seed=args.seed)
    prior = PreparedPrior.load(args.prior)
    row_of = {m: i for i, m in enumerate(prior.motions["motion_id"])}
    print("| caption | teacher speed m/s | teacher acceleration m/s2 | prior keyword | prior speed | prior accel. |")
    print("|---|---|---|---|---|---|")
    for k, (caption, keyword) in enumerate(zip(captions, keywords, strict=True)):
        generated = motion_dynamics(samples.joints[k * args.samples : (k + 1) * args.samples], FPS)
        ids = prior.captions.loc[prior.captions["caption"].str.contains(keyword, regex=False), "motion_id"].unique()
        real = [features_to_joints(np.asarray(prior.motion(row_of[m]))) for m in ids[:30]]
        ref = motion_dynamics(real, FPS) if real else {"speed": float("nan"), "acceleration": float("nan")}
        print(f"| {caption} | {generated['speed']:.2f} | {generated['acceleration']:.1f} | {keyword} ({len(real)}) | "
              f"{ref['speed']:.2f} | {ref['acceleration']:.1f} |")


if __name__ == "__main__":
    main()
