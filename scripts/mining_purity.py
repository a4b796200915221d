"""How pure is the mining on the embedded world? Fraction of each class's top-n mined motions that contain a matching
primitive, by the world's ground-truth segments (real data has no such labels).

    python scripts/mining_purity.py [--pairs data/mining/soft_pairs.parquet] [--n 10 250]
"""

from __future__ import annotations

import argparse

import pandas as pd

# The prior primitives that genuinely show each target action (a sub-clip counts if its source motion has one).
MATCHING = {
    "running on the spot": {"jog_in_place", "high_knees"},
    "run on the spot": {"jog_in_place", "high_knees"},
    "side kick": {"side_kick"},
    "stretch oneself": {"stretch_up", "side_bend", "torso_twist"},
    "arm circles": {"arm_circles"},
    "butt kicks (kick backward)": {"butt_kicks"},
    "cross toe touch": {"toe_touch"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default="data/mining/soft_pairs.parquet")
    parser.add_argument("--primitives", default="data/raw/synthetic/prior/primitives.parquet")
    parser.add_argument("--n", type=int, nargs="+", default=[10, 50, 250])
    args = parser.parse_args()
    pairs = pd.read_parquet(args.pairs)
    segments = pd.read_parquet(args.primitives)
    by_motion = segments.groupby("motion_id")["primitive"].agg(set)
    source = pairs["motion_id"].str.replace(r"^[A-W]_", "", regex=True)
    pairs = pairs.assign(primitives=source.map(by_motion))
    for name, group in pairs.groupby("class_name", sort=False):
        wanted = MATCHING.get(name)
        if wanted is None:
            print(f"{name}: no ground-truth mapping")
            continue
        hits = group.sort_values("rank")["primitives"].map(lambda p, w=wanted: bool(p & w)).to_numpy()
        print(f"{name:24s} " + "  ".join(f"top-{n}: {hits[:n].mean():.0%}" for n in args.n if n <= len(hits)))


if __name__ == "__main__":
    main()
