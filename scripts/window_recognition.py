"""How often does the window MIC picks contain the target action? The window-recognition rate of a training run on the
embedded world (kinemic.window_recognition), by the prior's labels and by the report card's recogniser, per class and
overall, over all steps and the last half, each beside a random window of the same length in the same crop.

    python scripts/window_recognition.py [--windows plots/train/windows.parquet] [--prior data/prepared/prior]
        [--primitives data/raw/synthetic/prior/primitives.parquet] [--recogniser recogniser.pt] [--json rates.json]
    # an experiment's windows: its plots/train, e.g. after `dvc exp apply <name>` or from a folder it was written to
    python scripts/window_recognition.py --windows /tmp/exp/plots/train/windows.parquet

The recogniser is trained on the prior's labelled segments (about 15 s; `--recogniser PATH` reuses one saved there by
this script or scripts/teacher_card.py, or saves it there the first time). A prior without primitive labels (real
HumanML3D) stops with the reason.
"""

from __future__ import annotations

import stage_pins  # noqa: F401  (the stages' kernel pins, before numpy and torch load)

# isort: split
import argparse
import logging
from pathlib import Path

import pandas as pd
import torch

from kinemic.corpus import PreparedPrior
from kinemic.io import write_json
from kinemic.recogniser import Recogniser, RecogniserConfig, UnlabelledPrior, read_primitives
from kinemic.teacher_card import prepare_card
from kinemic.window_recognition import (
    JUDGES,
    last_half,
    mic_over_chance,
    rates_metrics,
    recognition_rates,
    score_windows,
)

HEADERS = {"label": "label", "top1": "recognised top-1", "top3": "top-3", "chance_label": "chance: label",
           "chance_top1": "top-1", "chance_top3": "top-3"}


def _markdown(table: pd.DataFrame) -> str:
    lines = ["| class | windows | " + " | ".join(HEADERS.values()) + " |", "|---" * (len(HEADERS) + 2) + "|"]
    for name, row in table.iterrows():
        lines.append(f"| {name} | {int(row['windows'])} | "
                     + " | ".join(f"{100 * row[c]:.1f} %" for c in HEADERS) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=Path, default=Path("plots/train/windows.parquet"))
    parser.add_argument("--prior", type=Path, default=Path("data/prepared/prior"))
    parser.add_argument("--primitives", type=Path, default=Path("data/raw/synthetic/prior/primitives.parquet"))
    parser.add_argument("--recogniser", type=Path, help="saved recogniser to reuse (written there when absent)")
    parser.add_argument("--recogniser-seed", type=int, default=RecogniserConfig.seed)
    parser.add_argument("--seed", type=int, default=0, help="seed of the chance windows")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--json", type=Path, help="write the rates as flat keys <scope>.<class>.<column>")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    if not args.windows.is_file():
        raise SystemExit(f"{args.windows} not found: the train stage writes it for train.method kinemic "
                         "(`dvc repro train`)")
    try:
        segments = read_primitives(args.primitives)
    except UnlabelledPrior as err:
        raise SystemExit(f"window recognition needs a labelled prior: {err}") from None
    prior = PreparedPrior.load(args.prior)
    config = RecogniserConfig(seed=args.recogniser_seed)
    saved = Recogniser.load(args.recogniser) if args.recogniser and args.recogniser.is_file() else None
    recogniser = prepare_card(prior, args.primitives, config, saved).recogniser
    if args.recogniser and saved is None:
        recogniser.save(args.recogniser)

    scored = score_windows(pd.read_parquet(args.windows), prior, segments, recogniser, args.seed)
    half = last_half(scored)
    steps = int(scored["step"].max())
    tables = {"all": recognition_rates(scored), "last_half": recognition_rates(scored, half)}
    titles = {"all": f"all {steps} steps", "last_half": f"steps {half + 1}-{steps}"}
    if "kept" in scored.columns:  # train.window_speed_ratio was on: the windows the losses used
        tables["last_half_kept"] = recognition_rates(scored[scored["kept"]], half)
        titles["last_half_kept"] = f"steps {half + 1}-{steps}, windows the kinematic filter kept"
    print(f"{args.windows}: {len(scored)} windows; recogniser held-out top-1 {100 * recogniser.heldout_accuracy:.1f} %")
    for scope, table in tables.items():
        print(f"\n{titles[scope]}:\n{_markdown(table)}")
    gains = {}
    print(f"\nMIC minus the chance window, steps {half + 1}-{steps} (points, paired bootstrap over steps):")
    for judge in JUDGES:
        gain = mic_over_chance(scored, judge, half)
        gains.update(gain.to_metrics(f"last_half.mic_over_chance.{judge}"))
        print(f"  {HEADERS[judge]}: {100 * gain.estimate:+.1f} [{100 * gain.low:+.1f}, {100 * gain.high:+.1f}]")
    if args.json:
        write_json(args.json, {"recogniser_heldout": round(recogniser.heldout_accuracy, 4), **rates_metrics(tables),
                               **{k: round(v, 4) for k, v in gains.items()}})
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
