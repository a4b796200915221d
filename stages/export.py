"""Stage `export`: mmaction2 configs that train on the pipeline's PYSKL pickles as they are (docs/mmaction2.md).

One for the real few-shot clips alone and one for few-shot + synthetic, both validated on the real test split, with
the protocol of `evaluate.classifier`. They reference the pickles by relative path, so they work from a checkout
after `dvc pull` or `dvc repro`, and need only the `mm` extra to run (`mim train mmaction2 <config>` or mmaction2's
tools/train.py). Writing them needs no mmaction2.
"""

from __future__ import annotations

from pathlib import Path

from kinemic.evaluation import EvaluateConfig
from kinemic.io import atomic_output_dir
from kinemic.mmaction.export import write_mmaction_config
from kinemic.params import config_from_params, load_section, parse_stage_args, stage_parser
from kinemic.runtime import StageRun
from kinemic.target_set import PreparedTarget


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--target", required=True, help="prepared target (data/prepared/target, holds real.pkl)")
    parser.add_argument("--generated", required=True, help="generated data (data/generated)")
    parser.add_argument("--out", required=True, help="folder of the configs (exports/mmaction2)")
    args = parse_stage_args(parser, argv)
    run = StageRun("export", args.params)

    config = config_from_params(EvaluateConfig, load_section("evaluate", args.params), "evaluate")
    protocol, seed = config.classifier, config.seeds[0]
    num_classes = len(PreparedTarget.load(Path(args.target)).class_names)
    real = Path(args.target) / "real.pkl"
    mixed = Path(args.generated) / "fewshot_plus_synthetic.pkl"
    with atomic_output_dir(args.out) as tmp:
        written = [
            write_mmaction_config(real, num_classes, protocol, "fewshot", val=(real, "test"), seed=seed,
                                  path=tmp / "real_fewshot.py"),
            write_mmaction_config(mixed, num_classes, protocol, "train", val=(real, "test"), seed=seed,
                                  path=tmp / "fewshot_plus_synthetic.py"),
        ]
    print(f"export: mmaction2 configs {[p.name for p in written]} in {args.out}")
    run.finish()


if __name__ == "__main__":
    main()
