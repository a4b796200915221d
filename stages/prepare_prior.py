"""Stage `prepare_prior`: a HumanML3D directory (real or the embedded world's) -> data/prepared/prior/."""

from __future__ import annotations

import time

from kinemic.corpus import PriorConfig, prepare_prior
from kinemic.io import atomic_output_dir, write_json
from kinemic.params import config_from_params, load_section, parse_stage_args, stage_parser
from kinemic.runtime import StageRun


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", required=True, help="output directory (data/prepared/prior)")
    parser.add_argument("--metrics", required=True, help="flat JSON metrics file")
    args = parse_stage_args(parser, argv)
    run = StageRun("prepare_prior", args.params)
    start = time.perf_counter()

    config = config_from_params(PriorConfig, load_section("prepare_prior", args.params), "prepare_prior")
    prior, report = prepare_prior(config)
    with atomic_output_dir(args.out) as tmp:
        prior.save(tmp)

    metrics = {f"load.{k}": v for k, v in report.as_metrics().items()}
    metrics.update(
        samples=len(prior.motions),
        frames=int(len(prior.features)),
        captions=len(prior.captions),
        mean_length=round(float(prior.motions["length"].mean()), 3),
        **{f"samples.{split}": int(n) for split, n in prior.motions["split"].value_counts().sort_index().items()},
    )
    write_json(args.metrics, metrics)
    print(f"prepare_prior: {len(prior.motions)} samples, {len(prior.features)} frames "
          f"in {time.perf_counter() - start:.1f} s")
    run.finish()


if __name__ == "__main__":
    main()
