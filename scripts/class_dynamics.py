"""Per-class motion of a synthetic set against the real clips of each class: catches a class collapsed to a static
pose that the set-level speed, FID and accuracy hide (kinemic.class_dynamics).

    python scripts/class_dynamics.py [--synthetic data/generated/synthetic.npz] [--target data/prepared/target]
"""

from __future__ import annotations

import stage_pins  # noqa: F401  (the stages' kernel pins, before numpy and torch load)

# isort: split
import argparse
from pathlib import Path

from kinemic.class_dynamics import STATIC_BELOW, class_dynamics
from kinemic.frozen import FROZEN_BELOW
from kinemic.synthetic_set import SyntheticSet
from kinemic.target_set import PreparedTarget


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", type=Path, default=Path("data/generated/synthetic.npz"))
    parser.add_argument("--target", type=Path, default=Path("data/prepared/target"))
    parser.add_argument("--splits", nargs="+", default=["fewshot", "unused"],
                        help="real clips to compare with (the real training clips, as gen.real.speed)")
    args = parser.parse_args()
    rows = class_dynamics(SyntheticSet.load(args.synthetic), PreparedTarget.load(args.target).select(args.splits))
    print(f"{'class':24s} {'n':>4s} {'speed m/s (real)':>18s} {'ratio':>6s} {'accel. m/s2 (real)':>20s} "
          f"{'frozen':>7s}")
    for r in rows:
        flag = f"  STATIC (< {STATIC_BELOW:.0%} of real)" if r.static else ""
        print(f"{r.class_name:24s} {r.samples:4d} {r.speed:8.3f} ({r.speed_real:.3f}) {r.speed_ratio:6.2f} "
              f"{r.acceleration:9.2f} ({r.acceleration_real:.2f}) {r.frozen_share:7.0%}{flag}")
    print(f"frozen: moving at under {FROZEN_BELOW:.0%} of the class's real mean speed (kinemic.frozen)")


if __name__ == "__main__":
    main()
