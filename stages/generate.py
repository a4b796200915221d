"""Stage `generate`: sample the synthetic training set from the student; PYSKL pickle and previews.

With `generate.nproc` > 1 the stage re-runs itself under torchrun in that many processes (kinemic.distributed); each
samples a share of the batches, and rank 0 alone writes, the same bytes as one process (kinemic.generation).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from kinemic.conditioning import TextSpec, default_cache_dir, text_embedder
from kinemic.devices import resolve_device
from kinemic.distributed import process_group, rank_device, relaunch, warn_cpu_processes
from kinemic.formats.pyskl import SkeletonSample, write_pyskl
from kinemic.generation import GenerateConfig, generate_composition, generate_synthetic, resample_frozen
from kinemic.io import atomic_output_dir, write_json
from kinemic.params import config_from_params, load_section, parse_stage_args, stage_parser
from kinemic.preview import Panel, render_gif
from kinemic.runtime import StageRun
from kinemic.student import StudentCheckpoint
from kinemic.target_set import PreparedTarget
from kinemic.travel_filter import drop_travellers, root_travel


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--student", required=True, help="student directory (models/student)")
    parser.add_argument("--target", required=True, help="prepared target (data/prepared/target)")
    parser.add_argument("--out", required=True, help="generated data (data/generated)")
    parser.add_argument("--plots", required=True, help="preview GIFs (plots/generate)")
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--text-cache", type=Path, default=default_cache_dir())
    args = parse_stage_args(parser, argv)
    config = config_from_params(GenerateConfig, load_section("generate", args.params), "generate")
    warn_cpu_processes("generate", config.nproc, resolve_device(config.device), "the output is the same")
    if relaunch(config.nproc, "stages.generate", sys.argv[1:] if argv is None else argv):
        return  # the torchrun processes did the work
    # Every rank keeps runtime.threads (no share_threads): the last bits of a CPU forward pass may depend on the
    # thread count, and the output must not depend on the number of processes.
    run = StageRun("generate", args.params)

    student = StudentCheckpoint.load(Path(args.student) / "student.pt")
    fewshot = PreparedTarget.load(Path(args.target)).split("fewshot")
    device = resolve_device(config.device)
    with process_group(device) as world:
        config = replace(config, device=str(rank_device(device, world)))  # under torchrun on CUDA: this rank's GPU
        bar = tqdm(total=0, desc=f"generate[{student.method}]", unit="motion", mininterval=2, disable=not world.is_main)

        def progress(done: float, total: int) -> None:  # this rank's share
            bar.total = total
            bar.update(int(done) - bar.n)

        synthetic = generate_synthetic(student, fewshot, config, progress, world)
        bar.close()
    run.facts.update(processes=world.size)
    if not world.is_main:
        return  # rank 0 writes the outputs
    synthetic, frozen = resample_frozen(student, synthetic, fewshot, config)  # 0 retries: counts only
    dropped = 0
    if config.travel_margin:
        synthetic, decision = drop_travellers(synthetic, fewshot.all_joints(), fewshot.labels, config.travel_margin)
        dropped = int((~decision.kept).sum())
    composition = None
    if config.composition_class and student.uses_action:
        text = text_embedder(TextSpec.from_dict(student.text_encoder), args.text_cache)([config.composition_text])[0]
        composition = generate_composition(student, text, fewshot, config)

    with atomic_output_dir(args.out) as tmp:
        synthetic.save(tmp / "synthetic.npz")
        real = [SkeletonSample(s, int(c), fewshot.sample_joints(i))
                for i, (s, c) in enumerate(zip(fewshot.samples["sample_id"], fewshot.labels, strict=True))]
        fake = [SkeletonSample(f"synthetic_{i:05d}", int(c), j)
                for i, (c, j) in enumerate(zip(synthetic.labels, synthetic.joints, strict=True))]
        write_pyskl(tmp / "fewshot_plus_synthetic.pkl", real + fake,
                    {"train": [s.frame_dir for s in real + fake], "real": [s.frame_dir for s in real]})
        if composition is not None:
            composition.save(tmp / "composition.npz")
    with atomic_output_dir(args.plots) as tmp:
        for c, name in enumerate(synthetic.class_names):
            picks = np.flatnonzero(synthetic.labels == c)[: config.previews_per_class]
            real_idx = int(np.flatnonzero(fewshot.labels == c)[0])
            panels = [Panel(fewshot.sample_joints(real_idx), f"real: {name}")]
            panels += [Panel(synthetic.joints[i], f"{student.method} #{k}") for k, i in enumerate(picks)]
            render_gif(panels, tmp / f"{name.replace(' ', '_')}.gif")
        if composition is not None:
            panels = [Panel(j, f"{config.composition_class} + '{config.composition_text}'")
                      for j in composition.joints[:3]]
            render_gif(panels, tmp / "composition.gif")

    lengths = np.array([len(f) for f in synthetic.features])
    write_json(args.metrics, {
        "samples": len(synthetic),
        "mean_length": round(float(lengths.mean()), 3),
        "method": student.method,
        "composition_samples": 0 if composition is None else len(composition),
        "frozen_first": frozen.frozen_first,  # frozen against the few-shot clips (kinemic.frozen), as first drawn
        "frozen_left": frozen.frozen_left,  # ... after generate.frozen_retries rounds of drawing them again
        "travel_dropped": dropped,  # by generate.travel_margin (kinemic.travel_filter)
        "root_travel_max": round(max(root_travel(j) for j in synthetic.joints), 3),  # metres; real clips: ~0.01
    })
    print(f"generate: {len(synthetic)} motions from the {student.method} student")
    run.finish(device=config.device)


if __name__ == "__main__":
    main()
