"""Stage `prepare_target`: raw target clips (24-joint arrays, VIBE outputs or a HumanML3D directory) -> splits."""

from __future__ import annotations

import time

from kinemic.formats.pyskl import SkeletonSample, smpl22_graph, write_pyskl
from kinemic.io import atomic_output_dir, write_json
from kinemic.params import config_from_params, load_section, parse_stage_args, stage_parser
from kinemic.runtime import StageRun
from kinemic.target_prep import TargetConfig, prepare_target


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", required=True, help="output directory (data/prepared/target)")
    parser.add_argument("--metrics", required=True, help="flat JSON metrics file")
    args = parse_stage_args(parser, argv)
    run = StageRun("prepare_target", args.params)
    start = time.perf_counter()

    config = config_from_params(TargetConfig, load_section("prepare_target", args.params), "prepare_target")
    target, report = prepare_target(config)
    samples = target.samples
    with atomic_output_dir(args.out) as tmp:
        target.save(tmp)
        # The real clips as a PYSKL annotation file (labels are the 0-based class indices of this set).
        pyskl = [SkeletonSample(s, int(c), target.sample_joints(i))
                 for i, (s, c) in enumerate(zip(samples["sample_id"], samples["class_index"], strict=True))]
        split = {name: samples.loc[samples["split"] == name, "sample_id"].tolist() for name in ("fewshot", "test")}
        write_pyskl(tmp / "real.pkl", pyskl, split)
        write_json(tmp / "graph.json", smpl22_graph().as_dict())

    metrics = {
        "clips": len(samples),
        "skipped": len(report.skipped),
        "other_classes": report.other_classes,
        "fewshot_on_test_side": report.fewshot_on_test_side,
        "mean_length": round(float(samples["length"].mean()), 3),
        "min_length": int(samples["length"].min()),
    }
    for (name, split_name), n in samples.groupby(["class_name", "split"]).size().items():
        metrics[f"{split_name}.{name}"] = int(n)
    write_json(args.metrics, metrics)
    counts = samples["split"].value_counts().to_dict()
    print(f"prepare_target: {len(samples)} clips {counts} in {time.perf_counter() - start:.1f} s")
    run.finish()


if __name__ == "__main__":
    main()
