"""Stage `evaluator`: the fixed ST-GCN feature extractor for generative metrics, trained once on all real data.

It reads the target's table before the few-shot draw (kinemic.target_set), so a new draw or shot count reuses it.
"""

from __future__ import annotations

from pathlib import Path

from kinemic.classifier import save_classifier
from kinemic.evaluation import FeatureExtractorConfig, train_evaluator
from kinemic.io import atomic_output_dir, write_json
from kinemic.params import load_section, parse_stage_args, stage_parser
from kinemic.progress import epoch_bar
from kinemic.runtime import StageRun
from kinemic.target_set import PreparedTarget


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--target", required=True, help="prepared target (data/prepared/target)")
    parser.add_argument("--out", required=True, help="models/evaluator")
    parser.add_argument("--metrics", required=True)
    args = parse_stage_args(parser, argv)
    run = StageRun("evaluator", args.params)

    config = FeatureExtractorConfig.from_params(load_section("evaluator", args.params))
    target = PreparedTarget.load(Path(args.target), undrawn=True)
    bar, advance = epoch_bar("evaluator", config.classifier.epochs)
    classifier, result = train_evaluator(target, config.classifier, config.seed, advance)
    bar.close()
    with atomic_output_dir(args.out) as tmp:
        save_classifier(classifier, tmp / "classifier.pt")
    write_json(args.metrics, {"test_top1": result.top1, "train_samples": len(target.select(["fewshot", "unused"]))})
    print(f"evaluator: top-1 {100 * result.top1:.1f}% on the real test set (all real training data)")
    run.finish(device=config.classifier.device)


if __name__ == "__main__":
    main()
