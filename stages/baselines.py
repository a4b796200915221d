"""Stage `baselines`: the reference rows every method is compared with, on the same classifier seeds.

Real data only (the few-shot clips) and all real training data, one ST-GCN per seed of `evaluate.seeds`: the same
seeds, test set and protocol as each method's `evaluate` runs, so `report` can pair them seed by seed. It depends on
neither the teacher nor the student, so DVC reuses it across every experiment that changes only the generator.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from kinemic.backends import run_seed_on_backend
from kinemic.evaluation import BASELINES, EvaluateConfig
from kinemic.io import write_json
from kinemic.params import config_from_params, load_section, parse_stage_args, stage_parser
from kinemic.progress import epoch_bar
from kinemic.runtime import StageRun
from kinemic.target_set import PreparedTarget


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--target", required=True, help="prepared target (data/prepared/target)")
    parser.add_argument("--metrics", required=True, help="metrics/baselines.json")
    args = parse_stage_args(parser, argv)
    run = StageRun("baselines", args.params)

    config = config_from_params(EvaluateConfig, load_section("evaluate", args.params), "evaluate")
    target = PreparedTarget.load(Path(args.target))
    metrics: dict[str, float] = {}
    jobs = [(name, data, seed) for name, data in BASELINES.items() for seed in config.seeds]
    bar, advance = epoch_bar(f"baselines ({len(jobs)} classifiers)", len(jobs) * config.classifier.epochs)
    for name, data, seed in jobs:
        outcome = run_seed_on_backend(target, None, dataclasses.replace(config, train_data=data), seed, advance)
        metrics[f"{name}.seed_{seed}"] = outcome.result.top1
    bar.close()
    write_json(args.metrics, metrics)
    for name in BASELINES:
        values = [metrics[f"{name}.seed_{seed}"] for seed in config.seeds]
        print(f"baselines: {name} mean top-1 {100 * sum(values) / len(values):.1f}% over {len(values)} seeds")
    run.finish(device=config.classifier.device)


if __name__ == "__main__":
    main()
