"""Queue the experiments of the results table: every method of the paper, on several generator seeds.

    python scripts/queue_results.py [--generator-seeds 42 43 44] [--methods full zeroshot] [--dry-run]
    python scripts/queue_results.py --profile benchmark --draws 0 1 2 --generator-seeds 42 --methods full zeroshot
    python scripts/queue_results.py --profile benchmark --draws 0 --generator-seeds 42 43 --methods full \
        --set generate.frozen_retries=3 --name frozen3          # a study: the same runs with a param changed
    python scripts/run_queue.py && python scripts/results_table.py

Each method runs once per generator seed (`train.seed`, the student's training and hence its samples; 42 is the
default run's). The classifier seeds are `evaluate.seeds` inside every run, the same for all, so results_table pairs
them; real data only and all real data come from stages `baseline_real_only` and `baseline_all_real` of any run, so
they need no experiment of their own.
Zero-shot trains nothing: its generator seeds differ only in sampling (`generate.seed` is varied with them).
With `--profile` every experiment carries the profile's params (kinemic.profiles args) and runs once per few-shot
draw (`prepare_target.seed`); results_table pairs each draw with its own real-only baseline.
`--set KEY=VALUE` adds an override to every run (a study against the saved rows; sweep_table pairs them by seed and
draw) and `--name` replaces the name prefix; a key the script sets itself, or one params.yaml lacks, is refused.
"""

from __future__ import annotations

import stage_pins  # noqa: F401  (the stages' kernel pins, before numpy and torch load)

# isort: split
import argparse
import json
import subprocess
from pathlib import Path

from kinemic.params import load_params
from kinemic.profiles import dvc_set_args
from kinemic.results import outputs_not_in_cache

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


def queue_commands(generator_seeds: list[int], methods: list[str] | None = None, profile_args: list[str] | None = None,
                   draws: list[int] | None = None, prefix: str = "", extra_sets: list[str] | None = None
                   ) -> list[list[str]]:
    """`dvc exp run --queue` command lines. Without a profile or `extra_sets` the default run (full method, seed 42,
    draw 0) is the workspace's and is left out; with one (`profile_args`, `prefix` naming it) every run is queued.
    `extra_sets` ("key=value") go to every run after the method's own."""
    extra_sets = list(extra_sets or [])
    commands = []
    for draw in draws or [None]:
        for name in methods or list(METHODS):
            for seed in generator_seeds:
                if (name == "full" and seed == DEFAULT_TRAIN_SEED and profile_args is None and not draw
                        and not extra_sets):
                    continue
                sets = [*METHODS[name], f"train.seed={seed}", *extra_sets]
                if name == "zeroshot":
                    sets.append(f"generate.seed={seed}")
                label = f"{prefix}{name}-g{seed}"
                if draw is not None:
                    sets.append(f"prepare_target.seed={draw}")
                    label = f"{prefix}{name}-d{draw}-g{seed}"
                commands.append(["dvc", "exp", "run", "--queue", "-n", label, *(profile_args or []),
                                 *[arg for s in sets for arg in ("-S", s)]])
    return commands


def check_extra_sets(extra_sets: list[str], params: dict) -> None:
    """An override must name a param of `params` (params.yaml) and leave the method switches and seeds to the script."""
    own = {s.split("=")[0] for sets in METHODS.values() for s in sets}
    own |= {"train.seed", "generate.seed", "prepare_target.seed"}
    for item in extra_sets:
        key, sep, _ = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE, e.g. generate.frozen_retries=3")
        if key in own:
            raise SystemExit(f"--set {key}: the script sets it per run (use --methods, --generator-seeds, --draws)")
        section, _, name = key.partition(".")
        if not isinstance(params.get(section), dict) or name not in params[section]:
            raise SystemExit(f"--set {key}: no such param in params.yaml (section.name, e.g. generate.frozen_retries)")


def check_cache_is_filled() -> None:
    """Refuse to queue before the workspace's own outputs are in the DVC cache (outputs_not_in_cache says why)."""
    shown = subprocess.run(["dvc", "status", "--json"], capture_output=True, text=True)
    if shown.returncode != 0:
        raise SystemExit(f"`dvc status --json` failed: {shown.stderr.strip()}")
    if missing := outputs_not_in_cache(json.loads(shown.stdout or "{}")):
        raise SystemExit(
            f"{len(missing)} outputs of dvc.lock are not in the DVC cache (e.g. {', '.join(missing[:3])}); queued "
            "experiments that reuse a cached stage then fail with 'failed to load directory'. Run `dvc repro` once "
            "(or `dvc pull`), then queue again.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator-seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=None)
    parser.add_argument("--profile", help="a profile of profiles/ that every experiment carries (e.g. benchmark)")
    parser.add_argument("--draws", type=int, nargs="+", help="few-shot draws (prepare_target.seed) to run each on")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--set", dest="extra_sets", action="append", default=[], metavar="KEY=VALUE",
                        help="an override for every run (repeatable), e.g. generate.frozen_retries=3")
    parser.add_argument("--name", help="experiment name prefix (default: the profile's name)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands instead of queueing them")
    args = parser.parse_args()
    check_extra_sets(args.extra_sets, load_params(args.params))
    profile_args = dvc_set_args(args.profile, args.params) if args.profile else None
    prefix = f"{args.name or args.profile}-" if (args.name or args.profile) else ""
    if not args.dry_run:
        check_cache_is_filled()
    for command in queue_commands(args.generator_seeds, args.methods, profile_args, args.draws, prefix,
                                  args.extra_sets):
        print(" ".join(command))
        if not args.dry_run:
            subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
