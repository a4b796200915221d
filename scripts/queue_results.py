"""Queue the experiments of the results table: every method of the paper, on several generator seeds.

    python scripts/queue_results.py [--generator-seeds 42 43 44] [--dry-run]
    dvc queue start -j 1 && python scripts/results_table.py

Each method runs once per generator seed (`train.seed`, the student's training and hence its samples; 42 is the
default run's). The classifier seeds are `evaluate.seeds` inside every run, the same for all, so results_table pairs
them; real data only and all real data come from stage `baselines` of any run, so they need no experiment of their own.
Zero-shot trains nothing: its generator seeds differ only in sampling (`generate.seed` is varied with them).
"""

from __future__ import annotations

import argparse
import subprocess

METHODS = {  # experiment name -> the -S overrides of the paper's rows (README "Methods and ablations")
    "full": [],
    "base": ["train.use_dist=false", "train.use_dww=false"],
    "dist-only": ["train.use_dww=false"],
    "dww-only": ["train.use_dist=false"],
    "lora": ["train.method=lora"],
    "scratch": ["train.method=scratch"],
    "zeroshot": ["train.method=zeroshot"],
}
DEFAULT_TRAIN_SEED = 42


def queue_commands(generator_seeds: list[int], methods: list[str] | None = None) -> list[list[str]]:
    """`dvc exp run --queue` command lines; the default run (full method, seed 42) is the workspace's: left out."""
    commands = []
    for name in methods or list(METHODS):
        for seed in generator_seeds:
            if name == "full" and seed == DEFAULT_TRAIN_SEED:
                continue
            sets = [*METHODS[name], f"train.seed={seed}"]
            if name == "zeroshot":
                sets.append(f"generate.seed={seed}")
            commands.append(["dvc", "exp", "run", "--queue", "-n", f"{name}-g{seed}",
                             *[arg for s in sets for arg in ("-S", s)]])
    return commands


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator-seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=None)
    parser.add_argument("--dry-run", action="store_true", help="print the commands instead of queueing them")
    args = parser.parse_args()
    for command in queue_commands(args.generator_seeds, args.methods):
        print(" ".join(command))
        if not args.dry_run:
            subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
