"""Score any teacher checkpoint on a labelled prior: the teacher report card (kinemic.teacher_card).

    python scripts/teacher_card.py [--teacher models/teacher/teacher.pt] [--prior data/prepared/prior]
        [--primitives data/raw/synthetic/prior/primitives.parquet] [--samples 10] [--steps 50] [--sampler ancestral]
        [--guidance 2.5] [--guide WEAKER.pt --guide-weight 3 --guide-from 80] [--length 80]
        [--seed 0 | --seeds 0 1 2] [--json card.json] [--plot-dir DIR]
        [--recogniser recogniser.pt] [--threads 1]

Trains the primitive recogniser on the prior's labelled segments (about 10 s; `--recogniser PATH` reuses one saved
there, or saves it there the first time), samples the teacher for each primitive, prints the card as a Markdown
table, and optionally writes its flat metrics (`--json`) and the per-primitive bar chart (`--plot-dir`). A prior
without `primitives.parquet` (real HumanML3D) prints why the card is skipped and exits with status 0.

One card of 10 samples per primitive is a noisy judge: the released teacher scores 15, 14 and 11 of 21 primitives
within +-30 % on card seeds 0, 1 and 2. `--seeds 0 1 2` scores the checkpoint once per seed and prints the mean and
range of each headline number (with `--json`, the lists per seed), the way to compare two checkpoints.

`--length 80` samples every primitive at 80 frames with the same prompts: the released teacher freezes more samples
the longer it is asked to move (6 / 8 / 15 % at 40 / 60 / 80 frames), and the benchmark's students sample at 62-80.
"""

from __future__ import annotations

import stage_pins  # noqa: F401  (the stages' kernel pins, before numpy and torch load)

# isort: split
import argparse
import dataclasses
import logging
import time
from pathlib import Path

import numpy as np
import torch

from kinemic.conditioning import TextSpec, default_cache_dir, text_embedder
from kinemic.corpus import PreparedPrior
from kinemic.diffusion import SPACINGS
from kinemic.io import write_json
from kinemic.recogniser import Recogniser, RecogniserConfig, UnlabelledPrior
from kinemic.samplers import SAMPLERS
from kinemic.teacher import TeacherCheckpoint
from kinemic.teacher_card import (
    PREFIX,
    CardConfig,
    CardInputs,
    TeacherCard,
    prepare_card,
    teacher_card,
    write_card_plot,
)


def _inputs(prior: PreparedPrior, args: argparse.Namespace) -> CardInputs:
    """Train the recogniser, or reuse the one saved at --recogniser (saving it there the first time)."""
    config = RecogniserConfig(seed=args.recogniser_seed)
    saved = Recogniser.load(args.recogniser) if args.recogniser and args.recogniser.is_file() else None
    inputs = prepare_card(prior, args.primitives, config, saved)
    if args.recogniser and saved is None:
        inputs.recogniser.save(args.recogniser)
    return inputs


HEADLINE = ("recognition", "top3", "primitives_within_30pct", "fid", "diversity")


def _spread(cards: list[TeacherCard], seeds: list[int]) -> dict[str, list]:
    """The headline numbers of one checkpoint's cards, one list entry per card seed."""
    metrics = [card.to_metrics() for card in cards]
    return {"seeds": list(seeds), **{key: [m[f"{PREFIX}.{key}"] for m in metrics] for key in HEADLINE}}


def _spread_table(spread: dict[str, list]) -> str:
    lines = [f"| card seed{'s' if len(spread['seeds']) > 1 else ''} | " + " | ".join(HEADLINE) + " |",
             "|---" * (len(HEADLINE) + 1) + "|"]
    for i, seed in enumerate(spread["seeds"]):
        lines.append(f"| {seed} | " + " | ".join(f"{spread[key][i]:.3g}" for key in HEADLINE) + " |")
    lines.append("| mean [min, max] | " + " | ".join(
        f"{np.mean(spread[key]):.3g} [{min(spread[key]):.3g}, {max(spread[key]):.3g}]" for key in HEADLINE) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", type=Path, default=Path("models/teacher/teacher.pt"))
    parser.add_argument("--prior", type=Path, default=Path("data/prepared/prior"))
    parser.add_argument("--primitives", type=Path, default=Path("data/raw/synthetic/prior/primitives.parquet"))
    parser.add_argument("--samples", type=int, default=CardConfig.samples_per_primitive, help="prompts per primitive")
    parser.add_argument("--steps", type=int, default=CardConfig.sampling_steps, help="sampling steps (0: all)")
    parser.add_argument("--sampler", default=CardConfig.sampler, choices=SAMPLERS)
    parser.add_argument("--spacing", default=CardConfig.spacing, choices=("default", *SPACINGS),
                        help="which --steps steps (default: the sampler's own)")
    parser.add_argument("--guidance", type=float, default=CardConfig.guidance)
    parser.add_argument("--guidance-from", type=int, default=CardConfig.guidance_from_step,
                        help="classifier-free guidance only at base steps t >= this; below, the conditional "
                             "prediction alone (0: every step)")
    parser.add_argument("--guide", type=Path,
                        help="autoguidance: a weaker teacher of the same lineage (e.g. the first release, "
                             "`git show 92147cb:releases/teacher/teacher.pt > guide.pt`)")
    parser.add_argument("--guide-weight", type=float, default=3.0,
                        help="autoguidance weight w (1 = off; 3 from t = 80 scored best on the release, README)")
    parser.add_argument("--guide-from", type=int, default=80,
                        help="autoguidance only at base steps t >= this (the top of the schedule; 0 = every step)")
    parser.add_argument("--length", type=int, default=CardConfig.length,
                        help="every sample this many frames, same prompts (0: the real segments' lengths)")
    parser.add_argument("--seed", type=int, default=CardConfig.seed)
    parser.add_argument("--seeds", type=int, nargs="+", help="score once per card seed and summarise (not --plot-dir)")
    parser.add_argument("--recogniser-seed", type=int, default=RecogniserConfig.seed)
    parser.add_argument("--recogniser", type=Path, help="saved recogniser to reuse (written there when absent)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core box)")
    parser.add_argument("--json", type=Path, help="write the flat card metrics here")
    parser.add_argument("--plot-dir", type=Path, help="write card.tsv and card.png here")
    args = parser.parse_args(argv)
    if args.seeds and args.plot_dir:
        parser.error("--plot-dir draws one card: give --seed, not --seeds")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    prior = PreparedPrior.load(args.prior)
    try:
        inputs = _inputs(prior, args)
    except UnlabelledPrior as err:
        print(f"teacher card skipped: {err}")
        return
    teacher = TeacherCheckpoint.load(args.teacher, device=args.device)
    embed = text_embedder(TextSpec.from_dict(teacher.text_encoder), default_cache_dir())
    config = CardConfig(samples_per_primitive=args.samples, sampling_steps=args.steps, sampler=args.sampler,
                        spacing=args.spacing, guidance=args.guidance,
                        guidance_from_step=args.guidance_from, seed=args.seed, device=args.device,
                        length=args.length, guide_weight=args.guide_weight if args.guide else 1.0,
                        guide_from_step=args.guide_from)
    guide = TeacherCheckpoint.load(args.guide, device=args.device) if args.guide else None
    print(f"teacher {args.teacher} (step {teacher.step}, {teacher.source})"
          + (f", autoguided by {args.guide} (step {guide.step}) with weight {args.guide_weight} from t = "
             f"{args.guide_from}" if guide else "") + ":\n")
    if args.seeds:
        cards = [teacher_card(teacher, embed, inputs, dataclasses.replace(config, seed=seed), guide=guide)
                 for seed in args.seeds]
        spread = _spread(cards, args.seeds)
        print(_spread_table(spread))
        print(f"\n{len(cards)} cards in {time.perf_counter() - start:.1f} s")
        if args.json:
            write_json(args.json, spread)
        return
    card = teacher_card(teacher, embed, inputs, config, guide=guide)
    print(card.table())
    print(f"\ncard in {card.seconds:.1f} s, {time.perf_counter() - start:.1f} s in all")
    if args.json:
        write_json(args.json, card.to_metrics())
    if args.plot_dir:
        write_card_plot(card, args.plot_dir / "card.tsv", args.plot_dir / "card.png", f"teacher step {teacher.step}")


if __name__ == "__main__":
    main()
