"""Draw what autoguidance changes in the teacher's samples: one joint trace per sample, plain and autoguided.

    python scripts/autoguidance_traces.py --guide guide.pt [--teacher releases/teacher/teacher.pt] [--weight 3]
        [--from-step 90] [--seed 5] [--out docs/results/autoguidance_previews.png]

Six samples of "a person does arm circles" (right wrist height), three of "a person bends to the side" (head's
sideways offset from the pelvis) and three of "a person twists the torso" (yaw of the shoulder line), 80 frames,
ancestral 50 steps, the same seed with and without the guide: a frozen sample is a flat line. The metrics of the
report card (`scripts/teacher_card.py --guide`) say how often; this says what it looks like.
"""

from __future__ import annotations

import stage_pins  # noqa: F401  (the stages' kernel pins, before numpy and torch load)

# isort: split
import argparse
from pathlib import Path

import matplotlib
import numpy as np
import torch
from PIL import Image

from kinemic.conditioning import TextSpec, default_cache_dir, text_embedder
from kinemic.diffusion import Autoguidance
from kinemic.sampling import SampleRequest, sample_motions
from kinemic.skeleton import JOINT_NAMES
from kinemic.teacher import TeacherCheckpoint
from kinemic.teacher_card import check_guide

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PANELS = (  # prompt, samples, what is drawn
    ("a person does arm circles", 6, "arm circles: right wrist height (m)"),
    ("a person bends to the side", 3, "side bend: head sideways of the pelvis (m)"),
    ("a person twists the torso", 3, "torso twist: shoulder-line yaw (deg)"),
)


def _trace(joints: np.ndarray, panel: int) -> np.ndarray:
    """(T, 22, 3) joints, y up -> the panel's scalar per frame."""
    j = {name: joints[:, JOINT_NAMES.index(name)] for name in ("pelvis", "head", "left_shoulder", "right_shoulder",
                                                                 "right_wrist")}
    if panel == 0:
        return j["right_wrist"][:, 1]
    if panel == 1:
        return j["head"][:, 0] - j["pelvis"][:, 0]
    line = j["left_shoulder"] - j["right_shoulder"]
    return np.degrees(np.arctan2(line[:, 2], line[:, 0]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", type=Path, default=Path("releases/teacher/teacher.pt"))
    parser.add_argument("--guide", type=Path, required=True, help="a weaker teacher of the same lineage")
    parser.add_argument("--weight", type=float, default=3.0)
    parser.add_argument("--from-step", type=int, default=90)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("docs/results/autoguidance_previews.png"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    teacher, guide = TeacherCheckpoint.load(args.teacher), TeacherCheckpoint.load(args.guide)
    check_guide(teacher, guide)
    embed = text_embedder(TextSpec.from_dict(teacher.text_encoder), default_cache_dir())
    prompts = [prompt for prompt, count, _ in PANELS for _ in range(count)]
    request = SampleRequest(lengths=np.full(len(prompts), 80), text_emb=np.asarray(embed(prompts), np.float32))
    rows = {"CFG 2.5": None,
            f"+ autoguidance {args.weight:g} from t={args.from_step}": Autoguidance(guide.model.eval(), args.weight,
                                                                                     args.from_step)}
    fig, axes = plt.subplots(len(rows), len(PANELS), figsize=(15, 7))
    with torch.inference_mode():
        for row, (name, autoguidance) in enumerate(rows.items()):
            joints = sample_motions(teacher.model, teacher.diffusion(50), teacher.stats, request, pad_to=80,
                                    seed=args.seed, autoguidance=autoguidance).joints
            start = 0
            for col, (_, count, label) in enumerate(PANELS):
                for sample in joints[start:start + count]:
                    axes[row, col].plot(_trace(sample, col))
                if row == 0:
                    axes[row, col].set_title(label)
                start += count
            axes[row, 0].set_ylabel(name, fontsize=12)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=70)
    Image.open(args.out).convert("RGB").quantize(64).save(args.out, optimize=True)  # a third of the bytes
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
