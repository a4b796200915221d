"""Stage `report`: aggregate the per-seed accuracies, compute the generative metrics, draw the plots."""

from __future__ import annotations

from pathlib import Path

from kinemic.class_dynamics import class_dynamics, dynamics_metrics
from kinemic.classifier import load_classifier
from kinemic.evaluation import EvaluateConfig, generative_metrics, read_confusion
from kinemic.io import atomic_output_dir, read_json, write_json
from kinemic.params import config_from_params, load_section, parse_stage_args, stage_parser
from kinemic.report import headline_line, summarize_accuracy, write_accuracy_plot, write_confusion
from kinemic.runtime import StageRun
from kinemic.statistics import compare_with_baselines
from kinemic.synthetic_set import SyntheticSet
from kinemic.target_set import PreparedTarget

# What `dvc exp show` leads with (the report stage is listed first in dvc.yaml for that): the paper's median, the mean
# with its interval, the paired gain over real data only, the gap closure, FID, and how many generated classes are a
# static pose (kinemic.class_dynamics: FID and accuracy can hide one).
HEADLINE = ("top1.median", "top1.mean", "top1.mean.ci_low", "top1.mean.ci_high", "vs_real_only", "vs_real_only.ci_low",
            "vs_real_only.ci_high", "gap_closure", "gen.fid", "gen.static_classes")


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--eval-metrics", required=True, help="folder of seed_<s>.json (metrics/eval)")
    parser.add_argument("--eval-outputs", required=True, help="folder of seed_<s>/ predictions (data/eval)")
    parser.add_argument("--target", required=True)
    parser.add_argument("--generated", required=True)
    parser.add_argument("--evaluator", required=True, help="models/evaluator")
    parser.add_argument("--baselines", required=True, action="append",
                        help="metrics/baseline_<name>.json (top-1 per seed); once per reference row")
    parser.add_argument("--plots", required=True, help="plots/report")
    parser.add_argument("--summary", required=True, help="metrics/summary.json")
    parser.add_argument("--headline", required=True, help="metrics/headline.json: the few numbers a reader wants first")
    args = parse_stage_args(parser, argv)
    run = StageRun("report", args.params)

    config = config_from_params(EvaluateConfig, load_section("evaluate", args.params), "evaluate")
    train_method = load_section("train", args.params).get("method", "")
    # Aggregate exactly the seeds the params list, never a glob: a shrunk matrix leaves old files behind.
    per_seed = {s: read_json(Path(args.eval_metrics) / f"seed_{s}.json")["top1"] for s in config.seeds}
    confusions = [read_confusion(Path(args.eval_outputs) / f"seed_{s}" / "predictions.npz") for s in config.seeds]
    target = PreparedTarget.load(Path(args.target))
    summary = summarize_accuracy(per_seed)
    baselines = {key: value for path in args.baselines for key, value in read_json(path).items()}
    summary.update(compare_with_baselines(per_seed, baselines))
    summary.update(train_data=config.train_data, method=train_method)
    if config.train_data in ("fewshot+synthetic", "synthetic"):
        synthetic = SyntheticSet.load(Path(args.generated) / "synthetic.npz")
        evaluator = load_classifier(Path(args.evaluator) / "classifier.pt", stage="evaluator")
        summary.update({f"gen.{k}": v for k, v in generative_metrics(evaluator, target, synthetic, seed=0).items()})
        per_class = class_dynamics(synthetic, target.select(["fewshot", "unused"]))  # the real clips FID uses
        summary.update({f"gen.{k}": v for k, v in dynamics_metrics(per_class).items()})

    label = f"{train_method} / {config.train_data}"
    with atomic_output_dir(args.plots) as tmp:
        write_accuracy_plot(per_seed, tmp / "accuracy.tsv", tmp / "accuracy.png", f"top-1 per seed ({label})")
        write_confusion(confusions, target.class_names, tmp / "confusion.csv", tmp / "confusion.png",
                        f"test confusion, all seeds ({label})")
    write_json(args.summary, summary)
    write_json(args.headline, {key: summary[key] for key in HEADLINE if key in summary})
    print(f"report: {headline_line(summary)}")
    run.finish()


if __name__ == "__main__":
    main()
