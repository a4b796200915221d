"""How pure is the mining on the embedded world? The share of each class's top-n mined motions whose span contains a
primitive that performs the class (kinemic.mining_purity), for several n; real data has no such labels.

    python scripts/mining_purity.py [--pairs data/mining/soft_pairs.parquet] [--n 10 25 50 100 250]
    # the curve over mining.k from one mining pass with a large k:
    python scripts/mining_purity.py --pairs <k=1000 soft_pairs.parquet> --n 10 25 50 100 250 500 1000 \
        --out docs/results/mining_purity
"""

from __future__ import annotations

import stage_pins  # noqa: F401  (the stages' kernel pins, before numpy and torch load)

# isort: split
import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from kinemic.mining_purity import mined_hits, purity_at  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, default=Path("data/mining/soft_pairs.parquet"))
    parser.add_argument("--prior", type=Path, default=Path("data/prepared/prior"), help="prepared prior")
    parser.add_argument("--primitives", type=Path, default=Path("data/raw/synthetic/prior/primitives.parquet"))
    parser.add_argument("--n", type=int, nargs="+", default=[10, 25, 50, 100, 250])
    parser.add_argument("--out", type=Path, help="write <out>.tsv and <out>.png")
    args = parser.parse_args()
    for path in (args.pairs, args.prior / "motions.parquet", args.primitives):
        if not path.is_file():
            raise SystemExit(f"{path} not found: run `dvc repro mine` (pairs) or `dvc repro synthesize prepare_prior`")
    hits = mined_hits(pd.read_parquet(args.pairs), pd.read_parquet(args.prior / "motions.parquet"),
                      pd.read_parquet(args.primitives))
    table = purity_at(hits, args.n)
    print((100 * table).round(1).to_string())
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out.with_suffix(".tsv"), sep="\t", float_format="%.4f")
        fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
        for name in table.columns:
            ax.plot(table.index, 100 * table[name], marker="o", lw=2.5 if name == "mean" else 1.2, label=name)
        ax.set(xscale="log", xlabel="n most similar mined motions (= mining.k)", ylabel="purity (%)", ylim=(0, 102),
               title="mining purity on the embedded world")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(args.out.with_suffix(".png"))
        print(f"wrote {args.out.with_suffix('.tsv')} and .png")


if __name__ == "__main__":
    main()
