"""Compare experiments: the results table with paired intervals, and a bar chart, from DVC experiments.

    python scripts/results_table.py [--out PNG] [--profile benchmark] [--runs SAVED.jsonl] [--save-runs OUT.jsonl]
        [-- DVC EXP SHOW OPTIONS]

Reads `dvc exp show --json` with the given options (default `--all-commits`: the workspace, every commit and their
finished experiments; `-- --rev <commit>` keeps one commit's) and prints one row per method (kinemic.results): runs of
one method with different `train.seed` are pooled as its generator seeds. Each row has the median and mean +- std
top-1, the 95 % bootstrap interval of the mean, the paired differences to real only and to the full method, the gap
closure, the spread split into generator and classifier parts, and the generative metrics. Runs whose params differ
from params.yaml in anything but the method switches and the seeds (a study's runs, an older recipe) are left out and
named; `--profile` compares with params.yaml under that profile instead (the wider benchmark's runs). Runs of several
few-shot draws (`prepare_target.seed`) are paired by draw. The README's results table is produced this way.

The bar chart goes to `plots/compare.png` (the committed figure of the default table) and, under `--profile P`, to
`plots/compare_P.png`, so a study's table never overwrites the default's figure.

Experiments do not outlive the checkout that ran them. `--save-runs FILE` keeps the runs of the table (their params
and metrics, kinemic.results.save_runs) in a file to commit beside the result; `--runs FILE` (repeatable) pools such a
file with the experiments found, so a later session can add generators or draws to a table it did not run.
"""

from __future__ import annotations

import stage_pins  # noqa: F401  (the stages' kernel pins, before numpy and torch load)

# isort: split
import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from kinemic.params import parse_params  # noqa: E402
from kinemic.profiles import profiled_params  # noqa: E402
from kinemic.results import (  # noqa: E402
    add_saved_runs_options,
    comparable_runs,
    group_runs,
    markdown,
    read_runs,
    row_stats,
    save_runs,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="the bar chart (default: plots/compare.png, or plots/compare_P.png "
                                                 "under --profile P)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"),
                        help="runs must match these params except the method switches and seeds (kinemic.results)")
    parser.add_argument("--profile", help="compare with --params under this profile (e.g. benchmark)")
    add_saved_runs_options(parser)
    parser.add_argument("dvc_args", nargs="*", default=["--all-commits"], help="options for `dvc exp show`")
    args = parser.parse_args()
    args.out = args.out or Path(f"plots/compare_{args.profile}.png" if args.profile else "plots/compare.png")
    reference = profiled_params(args.profile, args.params) if args.profile else parse_params(args.params.read_text())
    runs, left_out = comparable_runs(read_runs(args.dvc_args, args.runs), reference)
    if args.save_runs:
        added, total = save_runs(runs, args.save_runs)
        print(f"runs of the table: {args.save_runs} ({added} added, {total} in the file)")
    stats = row_stats(group_runs(runs), runs)
    print(markdown(stats))
    if left_out:
        against = f"{args.params} with profile {args.profile}" if args.profile else str(args.params)
        print(f"\nLeft out, other params than {against} beyond method and seeds: {', '.join(left_out)}")
    if stats:
        fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(stats) + 1), dpi=100)
        means = [100 * s.mean for s in stats]
        errors = [[100 * (s.mean - s.mean_ci.low) for s in stats], [100 * (s.mean_ci.high - s.mean) for s in stats]]
        ax.barh([s.row.label for s in stats], means, xerr=errors, color="#4c72b0", capsize=3)
        ax.set_xlabel("mean top-1 accuracy (%), error bar: 95% bootstrap interval")
        ax.invert_yaxis()
        fig.tight_layout()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.out, metadata={"Software": None})
        print(f"\nbar chart: {args.out}")


if __name__ == "__main__":
    main()
