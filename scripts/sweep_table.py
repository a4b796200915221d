"""A one-param sweep of DVC experiments as a table and a curve, every value paired against the reference value.

    # queue (DVC's own grid syntax), run, then tabulate:
    dvc exp run --queue -S mining.k=10,25,50,100,500,1000 && dvc queue start -j 1
    python scripts/sweep_table.py mining.k [--reference 250] [--extra similarity_mean] [--out plots/sweep_k.png]
    python scripts/sweep_table.py generate.sampler --reference ancestral -- --rev HEAD
    python scripts/sweep_table.py generate.sampler,generate.sampling_steps,generate.spacing \
        --reference "[ancestral, 50, default]" -- --rev HEAD          # params swept together: a comma list

Reads `dvc exp show --json` (options after `--`, default `--all-commits`), groups the finished runs by the param's
value (kinemic.sweeps), and prints the median and mean top-1 with intervals and the paired difference to the reference
value (default: params.yaml's value). `--profile P` holds the runs to params.yaml under profile P instead (the wider
benchmark's runs: `--profile benchmark`). `--extra` adds metrics from summary.json or mining.json (e.g. `gen.fid`,
`similarity_mean`, `shared_motion_fraction`) as columns. The curve plots mean top-1 with its interval against the
value. `--save-runs FILE` keeps the sweep's runs to commit beside the table, `--runs FILE` pools such a file with the
experiments found (kinemic.results.save_runs: experiments do not outlive the checkout that ran them).
"""

from __future__ import annotations

import stage_pins  # noqa: F401  (the stages' kernel pins, before numpy and torch load)

# isort: split
import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from kinemic.params import DEFAULT_PARAMS, load_params, parse_params  # noqa: E402
from kinemic.profiles import profiled_params  # noqa: E402
from kinemic.results import add_saved_runs_options, read_runs, save_runs  # noqa: E402
from kinemic.sweeps import Sweep, markdown, param_value, sweep  # noqa: E402


def _plot(result: Sweep, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    labels = [str(p.value) for p in result.points]
    means = [100 * p.mean.estimate for p in result.points]
    errors = [[100 * (p.mean.estimate - p.mean.low) for p in result.points],
              [100 * (p.mean.high - p.mean.estimate) for p in result.points]]
    ax.errorbar(range(len(labels)), means, yerr=errors, fmt="o-", capsize=3)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel(result.param)
    ax.set_ylabel("mean top-1 (%), 95% interval")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def sweep_base(profile: str | None, params: Path = Path(DEFAULT_PARAMS)) -> dict:
    """The params a sweep's runs are held to: params.yaml, or params.yaml under `profile`."""
    return profiled_params(profile, Path(params)) if profile else load_params(params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("param", help="dotted param name, e.g. mining.k; a comma list sweeps params together")
    parser.add_argument("--reference", help="the value every other is compared with (default: params.yaml's)")
    parser.add_argument("--extra", nargs="*", default=[], help="summary.json / mining.json keys to show")
    parser.add_argument("--out", type=Path, help="write the curve here (PNG)")
    parser.add_argument("--profile", help="hold the runs to params.yaml under this profile (e.g. benchmark)")
    add_saved_runs_options(parser)
    parser.add_argument("dvc_args", nargs="*", default=["--all-commits"], help="options for `dvc exp show`")
    args = parser.parse_intermixed_args()  # `--extra a b -- --rev HEAD`: options and positionals in any order
    base = sweep_base(args.profile)  # DVC's float style (2e-05) reads as a float, as in the runs' params
    current = param_value(base, args.param)
    reference = parse_params(args.reference) if args.reference is not None else current
    runs = read_runs(args.dvc_args, args.runs)
    # a run of a commit before the param existed ran with its default, params.yaml's value
    result = sweep(runs, args.param, reference, args.extra, missing=current, base=base)
    if args.save_runs:
        added, total = save_runs(result.members(), args.save_runs)
        print(f"runs of the sweep: {args.save_runs} ({added} added, {total} in the file)")
    print(markdown(result))
    if args.out:
        _plot(result, args.out)
        print(f"\ncurve: {args.out}")


if __name__ == "__main__":
    main()
