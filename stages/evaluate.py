"""Stage `evaluate` (one DVC matrix entry per seed): train the ST-GCN, measure top-1 on the real test set."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kinemic.backends import run_seed_on_backend
from kinemic.classifier import save_classifier
from kinemic.evaluation import EvaluateConfig
from kinemic.io import atomic_output_dir, write_json
from kinemic.params import config_from_params, load_section, parse_stage_args, stage_parser
from kinemic.progress import epoch_bar
from kinemic.runtime import StageRun
from kinemic.synthetic_set import SyntheticSet
from kinemic.target_set import PreparedTarget


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--target", required=True, help="prepared target (data/prepared/target)")
    parser.add_argument("--generated", required=True, help="generated data (data/generated)")
    parser.add_argument("--out", required=True, help="this seed's outputs (data/eval/seed_<s>)")
    parser.add_argument("--metrics", required=True, help="metrics/eval/seed_<s>.json")
    args = parse_stage_args(parser, argv)
    run = StageRun(f"evaluate_seed_{args.seed}", args.params)

    config = config_from_params(EvaluateConfig, load_section("evaluate", args.params), "evaluate")
    target = PreparedTarget.load(Path(args.target))
    synthetic = None
    if config.train_data in ("fewshot+synthetic", "synthetic"):
        synthetic = SyntheticSet.load(Path(args.generated) / "synthetic.npz")
    bar, advance = epoch_bar(f"evaluate[seed {args.seed}]", config.classifier.epochs)
    outcome = run_seed_on_backend(target, synthetic, config, args.seed, advance)
    bar.close()
    with atomic_output_dir(args.out) as tmp:
        save_classifier(outcome.classifier, tmp / "classifier.pt")
        test = target.split("test")
        np.savez(tmp / "predictions.npz", sample_id=test.samples["sample_id"].to_numpy(dtype=str),
                 labels=test.labels, predictions=outcome.result.predictions,
                 probabilities=outcome.result.probabilities, confusion=outcome.result.confusion)
    metrics = outcome.result.to_metrics()
    metrics.update(seed=args.seed, train_samples=outcome.train_size, train_data=config.train_data,
                   final_train_loss=outcome.classifier.history[-1].loss)
    write_json(args.metrics, metrics)
    print(f"evaluate[seed {args.seed}]: top-1 {100 * outcome.result.top1:.1f}% "
          f"(trained on {outcome.train_size} clips: {config.train_data})")
    run.finish(device=config.classifier.device)


if __name__ == "__main__":
    main()
