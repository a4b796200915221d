"""The k study on the embedded world: top-1, window recognition and mining purity against `mining.k` (kinemic.k_study).

    # queue the sweep (the workspace's run is k = 250), run it, then read it:
    dvc exp run --queue -S mining.k=10,25,50,100,500,1000 && dvc queue start -j 1
    python scripts/k_study.py [--out plots/k_study.png] [--tsv plots/k_study.tsv] [--runs SAVED.jsonl]
        [--save-runs OUT.jsonl] [-- --rev HEAD]

Reads `dvc exp show --json` (options after `--`, default `--all-commits`), groups the finished runs by `mining.k`
(kinemic.sweeps: runs that differ in another param are left out, by name), and reads each run's own
`plots/train/windows.parquet` and `data/mining/soft_pairs.parquet` through DVC. The recogniser of the report card is
trained once on the prior's labelled segments (about 15 s; `--recogniser PATH` reuses one). A prior without primitive
labels (real HumanML3D) stops with the reason.

`--save-runs FILE` keeps the sweep's runs (params and metrics, kinemic.results.save_runs) to commit beside the table;
`--runs FILE` (repeatable) pools such a file with the experiments found. A saved run whose commit is gone still adds
its top-1; its windows and mining are read only while its commit exists (else they count as not recorded).
"""

from __future__ import annotations

import stage_pins  # noqa: F401  (the stages' kernel pins, before numpy and torch load)

# isort: split
import argparse
import sys
from pathlib import Path

import torch

from kinemic.corpus import PreparedPrior
from kinemic.k_study import dvc_loader, k_table, markdown, plot
from kinemic.params import load_params
from kinemic.recogniser import Recogniser, RecogniserConfig, UnlabelledPrior, read_primitives
from kinemic.results import add_saved_runs_options, read_runs, save_runs
from kinemic.sweeps import param_value, sweep
from kinemic.teacher_card import prepare_card


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    own, dvc_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=int, help="the k every other is paired with (default: params.yaml's)")
    parser.add_argument("--out", type=Path, default=Path("plots/k_study.png"))
    parser.add_argument("--tsv", type=Path, help="write the table here (fractions)")
    parser.add_argument("--prior", type=Path, default=Path("data/prepared/prior"))
    parser.add_argument("--primitives", type=Path, default=Path("data/raw/synthetic/prior/primitives.parquet"))
    parser.add_argument("--recogniser", type=Path, help="saved recogniser to reuse (written there when absent)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random windows")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    add_saved_runs_options(parser)
    parser.epilog = "options after `--` go to `dvc exp show` (default: --all-commits)"
    args = parser.parse_args(own)
    torch.set_num_threads(args.threads)
    try:
        segments = read_primitives(args.primitives)
    except UnlabelledPrior as err:
        raise SystemExit(f"the k study needs a labelled prior: {err}") from None
    base = load_params()
    current = param_value(base, "mining.k")
    reference = args.reference if args.reference is not None else current
    runs = read_runs(dvc_args or ["--all-commits"], args.runs)
    result = sweep(runs, "mining.k", reference, missing=current, base=base)
    if args.save_runs:
        added, total = save_runs(result.members(), args.save_runs)
        print(f"runs of the sweep: {args.save_runs} ({added} added, {total} in the file)")

    prior = PreparedPrior.load(args.prior)
    saved = Recogniser.load(args.recogniser) if args.recogniser and args.recogniser.is_file() else None
    recogniser = prepare_card(prior, args.primitives, RecogniserConfig(), saved).recogniser
    if args.recogniser and saved is None:
        recogniser.save(args.recogniser)
    table = k_table(result, runs, dvc_loader(), prior, segments, recogniser, args.seed)
    print(markdown(table, reference))
    if result.left_out:
        print(f"\nLeft out: {'; '.join(result.left_out)}")
    plot(table, args.out)
    print(f"\nfigure: {args.out}")
    if args.tsv:
        args.tsv.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.tsv, sep="\t", index=False, float_format="%.4f")
        print(f"table: {args.tsv}")


if __name__ == "__main__":
    main()
