"""Stages `baseline_real_only` and `baseline_all_real`: the reference rows every method is compared with.

Real data only (the few-shot clips) or all real training data (`--baseline`), one ST-GCN per seed of
`evaluate.seeds`: the same seeds, test set and protocol as each method's `evaluate` runs, so `report` can pair them
seed by seed. Neither depends on the teacher or the student, so DVC reuses them across every experiment that changes
only the generator; all real data reads the table before the few-shot draw (kinemic.target_set), so DVC also reuses
it across draws and shot counts, where it is nine tenths of the baselines' time.
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
    parser.add_argument("--baseline", required=True, choices=sorted(BASELINES), help="which reference row")
    parser.add_argument("--metrics", required=True, help="metrics/baseline_<name>.json")
    args = parse_stage_args(parser, argv)
    name, data = args.baseline, BASELINES[args.baseline]
    run = StageRun(f"baseline_{name}", args.params)

    config = dataclasses.replace(
        config_from_params(EvaluateConfig, load_section("evaluate", args.params), "evaluate"), train_data=data)
    target = PreparedTarget.load(Path(args.target), undrawn=data == "all_real")
    metrics: dict[str, float] = {}
    bar, advance = epoch_bar(f"baseline {name} ({len(config.seeds)} classifiers)",
                             len(config.seeds) * config.classifier.epochs)
    for seed in config.seeds:
        metrics[f"{name}.seed_{seed}"] = run_seed_on_backend(target, None, config, seed, advance).result.top1
    bar.close()
    write_json(args.metrics, metrics)
    print(f"baseline {name}: mean top-1 {100 * sum(metrics.values()) / len(metrics):.1f}% over {len(metrics)} seeds")
    run.finish(device=config.classifier.device)


if __name__ == "__main__":
    main()
