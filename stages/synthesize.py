"""Stage `synthesize`: the embedded world (prior corpus in HumanML3D layout, NTU-like VIBE target set, previews).

    python stages/synthesize.py --params params.yaml --out data/raw/synthetic --metrics metrics/synthesize.json

Everything is written into a temporary sibling of --out and moved into place only on success, so DVC never caches a
partial world; nothing outside --out (and the metrics file) is touched.
"""

from __future__ import annotations

import functools
import logging
import time

from tqdm import tqdm

from kinemic.io import atomic_output_dir, write_json
from kinemic.params import load_section, parse_stage_args, stage_parser
from kinemic.runtime import StageRun
from kinemic.synthetic.config import SyntheticConfig
from kinemic.synthetic.world import build_world

log = logging.getLogger("synthesize")


def main(argv: list[str] | None = None) -> dict:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", required=True, help="output directory (data/raw/synthetic)")
    parser.add_argument("--metrics", required=True, help="flat JSON metrics file")
    args = parse_stage_args(parser, argv)
    run = StageRun("synthesize", args.params)
    start = time.perf_counter()

    config = SyntheticConfig.from_params(load_section("synthetic", args.params))
    progress = functools.partial(tqdm, unit="batch", mininterval=2.0, leave=False)
    with atomic_output_dir(args.out) as tmp:
        summary = build_world(config, tmp, progress)

    metrics = {**summary.as_metrics(), "seed": config.seed, "difficulty": config.target.difficulty}
    write_json(args.metrics, metrics)
    log.info("synthesize: %d prior motions, %d target clips in %.1f s", summary.prior.motions, summary.target.clips,
             time.perf_counter() - start)
    run.finish()
    return metrics


if __name__ == "__main__":
    main()
