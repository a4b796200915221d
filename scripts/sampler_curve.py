"""The quality-speed curve of the samplers: the teacher report card for each sampler at each number of steps.

    python scripts/sampler_curve.py [--teacher models/teacher/teacher.pt] [--steps 5 10 20 50] [--samples 10]
        [--spacings default high_noise] [--seeds 0 1] [--out docs/results/sampler_curve] [--threads 2]

For every step count, every sampler (kinemic.samplers.SAMPLERS) with every step spacing (`default`: the sampler's own;
kinemic.diffusion.SPACINGS) and every card seed is scored in turn, interleaved, in one process with
the same threads, so the timings compare like with like; the teacher's full schedule with the ancestral sampler (the
official MDM sampler) is scored first and last as the reference and to show the drift of the machine during the run.
Writes `<out>.tsv` (one row per run: recognition, top-3, FID, speed and acceleration ratios, sampling seconds) and
`<out>.png` (recognition and FID against seconds).
"""

from __future__ import annotations

import stage_pins  # noqa: F401  (the stages' kernel pins, before numpy and torch load)

# isort: split
import argparse
import csv
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from kinemic.conditioning import TextSpec, default_cache_dir, text_embedder  # noqa: E402
from kinemic.corpus import PreparedPrior  # noqa: E402
from kinemic.diffusion import SPACINGS  # noqa: E402
from kinemic.recogniser import RecogniserConfig  # noqa: E402
from kinemic.runtime import apply_threads  # noqa: E402
from kinemic.samplers import SAMPLERS  # noqa: E402
from kinemic.teacher import TeacherCheckpoint  # noqa: E402
from kinemic.teacher_card import CardConfig, prepare_card, teacher_card  # noqa: E402

COLUMNS = ("sampler", "spacing", "steps", "seed", "seconds", "recognition", "top3", "fid", "speed_ratio", "accel_ratio",
           "primitives_within")


def _row(sampler: str, spacing: str, steps: int, seed: int, card) -> dict:
    """One curve point; the dynamics as the ratio of the mean sampled to the mean real speed and acceleration."""
    m = card.to_metrics()
    within = next(v for k, v in m.items() if k.startswith("card.primitives_within_"))
    return {"sampler": sampler, "spacing": spacing, "steps": steps, "seed": seed, "seconds": round(card.seconds, 2),
            "recognition": round(m["card.recognition"], 4), "top3": round(m["card.top3"], 4),
            "fid": round(m["card.fid"], 2), "speed_ratio": round(m["card.speed"] / m["card.speed_real"], 3),
            "accel_ratio": round(m["card.acceleration"] / m["card.acceleration_real"], 3),
            "primitives_within": within}


def _plot(rows: list[dict], path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for sampler, spacing, seed in dict.fromkeys((r["sampler"], r["spacing"], r["seed"]) for r in rows):
        mine = sorted((r for r in rows if (r["sampler"], r["spacing"], r["seed"]) == (sampler, spacing, seed)),
                      key=lambda r: r["steps"])
        label = f"{sampler}, {spacing}, seed {seed}"
        for ax, key in zip(axes, ("recognition", "fid"), strict=True):
            ax.plot([r["seconds"] for r in mine], [r[key] for r in mine], "o-", label=label)
            for r in mine:
                ax.annotate(str(r["steps"]), (r["seconds"], r[key]), fontsize=7)
    axes[0].set_ylabel("card recognition")
    axes[1].set_ylabel("card FID (recogniser features)")
    for ax in axes:
        ax.set_xlabel("sampling + scoring seconds (numbers: steps)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", type=Path, default=Path("models/teacher/teacher.pt"))
    parser.add_argument("--prior", type=Path, default=Path("data/prepared/prior"))
    parser.add_argument("--primitives", type=Path, default=Path("data/raw/synthetic/prior/primitives.parquet"))
    parser.add_argument("--steps", type=int, nargs="+", default=[5, 10, 20, 50])
    parser.add_argument("--samplers", nargs="+", choices=SAMPLERS, default=list(SAMPLERS))
    parser.add_argument("--spacings", nargs="+", choices=("default", *SPACINGS), default=["default"],
                        help="step spacings (default: each sampler's own)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[CardConfig.seed], help="card seeds")
    parser.add_argument("--reference-steps", type=int, default=None,
                        help="ancestral reference steps, scored first and last (default: all; 0: none)")
    parser.add_argument("--samples", type=int, default=CardConfig.samples_per_primitive)
    parser.add_argument("--out", type=Path, default=Path("docs/results/sampler_curve"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    apply_threads(args.threads)

    teacher = TeacherCheckpoint.load(args.teacher)
    embed = text_embedder(TextSpec.from_dict(teacher.text_encoder), default_cache_dir())
    inputs = prepare_card(PreparedPrior.load(args.prior), args.primitives, RecogniserConfig())

    def score(sampler: str, spacing: str, steps: int, seed: int) -> dict:
        config = CardConfig(samples_per_primitive=args.samples, sampling_steps=steps, sampler=sampler,
                            spacing=spacing, seed=seed)
        row = _row(sampler, spacing, steps, seed, teacher_card(teacher, embed, inputs, config))
        print("\t".join(str(row[c]) for c in COLUMNS), flush=True)
        return row

    def reference() -> list[dict]:
        return [score("ancestral", "default", full, seed) for seed in args.seeds] if full else []

    print("\t".join(COLUMNS))
    full = teacher.diffusion_steps if args.reference_steps is None else args.reference_steps
    rows = reference()
    for steps in args.steps:
        rows += [score(sampler, spacing, steps, seed)
                 for seed in args.seeds for spacing in args.spacings for sampler in args.samplers]
    rows += reference()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out.with_suffix(".tsv"), "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(COLUMNS), delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
    _plot(rows, args.out.with_suffix(".png"))
    print(f"wrote {args.out.with_suffix('.tsv')} and .png")


if __name__ == "__main__":
    main()
