"""Stage `train`: fit the student (KineMIC or a baseline) on the few-shot set, the soft pairs and the teacher.

With `train.nproc` > 1 training runs data-parallel: the stage re-runs itself under torchrun in that many processes
(kinemic.distributed), and rank 0 alone writes the student, curves, plots and metrics (kinemic.training).

The losses and learning rate go through DVCLive to `--live` as training goes (`dvc exp show` follows a running
experiment); step times go to runs/live/train only (kinemic.live). For kinemic, `--plots` also gets windows.parquet:
every step's crops of the prior motions and the windows MIC picked in them (scripts/window_recognition.py scores them).
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from kinemic.conditioning import TextSpec, default_cache_dir, text_embedder
from kinemic.corpus import PreparedPrior
from kinemic.devices import resolve_device
from kinemic.distributed import current_world, rank_device, relaunch, share_threads, warn_cpu_processes
from kinemic.io import atomic_output_dir, write_json
from kinemic.live import CurveLog, run_facts_dir, write_curves_live
from kinemic.params import config_from_params, load_section, parse_stage_args, stage_parser
from kinemic.preview import Panel, render_gif
from kinemic.report import plot_curves
from kinemic.runtime import StageRun
from kinemic.stage_files import read_stage_file
from kinemic.target_set import PreparedTarget
from kinemic.teacher import TeacherCheckpoint
from kinemic.training import LOSS_COLUMNS, TrainConfig, build_training_data, train_student
from kinemic.window_previews import mine_windows


def _mining_previews(result, teacher, data, out: Path, count: int, seed: int) -> int:
    """The paper's Fig. 1 per pair: the prior motion with the mined window in orange, beside the target sample."""
    if result.parts is None or result.parts.mic is None:
        return 0
    from kinemic.motion import features_to_joints

    out.mkdir(parents=True, exist_ok=True)
    windows = mine_windows(result.parts, teacher, data, count, seed)
    for i, w in enumerate(windows):
        prior_joints = features_to_joints(data.prior.motion(w.prior_index))
        target_joints = features_to_joints(data.target_features[w.target_index])
        prior_id = data.prior.motions["motion_id"].iloc[w.prior_index]
        panels = [Panel(prior_joints, f"prior {prior_id}", (w.start, w.start + w.length)),
                  Panel(target_joints, f"target: {w.class_name}")]
        render_gif(panels, out / f"pair_{i:02d}.gif")
    return len(windows)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--teacher", required=True, help="teacher directory (models/teacher)")
    parser.add_argument("--target", required=True, help="prepared target (data/prepared/target)")
    parser.add_argument("--prior", required=True, help="prepared prior (data/prepared/prior)")
    parser.add_argument("--pairs", required=True, help="soft pairs parquet (data/mining/soft_pairs.parquet)")
    parser.add_argument("--out", required=True, help="student directory (models/student)")
    parser.add_argument("--plots", required=True, help="curves and mining previews (plots/train)")
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--live", required=True, help="DVCLive curves: losses and lr per logged step (dvclive/train)")
    parser.add_argument("--resume-dir", default=".checkpoints/train")
    parser.add_argument("--text-cache", type=Path, default=default_cache_dir())
    parser.add_argument("--previews", type=int, default=3)
    args = parse_stage_args(parser, argv)
    config = config_from_params(TrainConfig, load_section("train", args.params), "train")
    device = resolve_device(config.device)
    if config.method != "zeroshot":  # zero-shot trains nothing: one process, whatever train.nproc says
        warn_cpu_processes("train", config.nproc, device, "the weights are the same up to float summation order")
        if relaunch(config.nproc, "stages.train", sys.argv[1:] if argv is None else argv):
            return  # the torchrun processes did the work
    run = StageRun("train", args.params)
    share_threads(run.config.threads)  # under torchrun: runtime.threads split between the processes
    world = current_world()
    device = rank_device(device, world)  # under torchrun on CUDA: this rank's GPU, where its teacher copy goes
    teacher = TeacherCheckpoint.load(Path(args.teacher) / "teacher.pt", device)
    embed = text_embedder(TextSpec.from_dict(teacher.text_encoder), args.text_cache)
    fewshot = PreparedTarget.load(Path(args.target)).split("fewshot")
    pairs = read_stage_file(args.pairs, "mine", pd.read_parquet)
    prior = PreparedPrior.load(Path(args.prior)) if config.uses_prior else None
    data = build_training_data(fewshot, pairs, prior, embed, config.extra_templates)

    bar = tqdm(total=config.steps if config.method != "zeroshot" else 0, desc=f"train[{config.method}]", unit="step",
               mininterval=5, disable=not world.is_main)
    # Rank 0 alone logs (only it gets progress calls): the curve to --live, the step times to runs/ only.
    curve = CurveLog(args.live) if world.is_main else None
    timing = CurveLog(run_facts_dir(args.params, "train"), timestamps=True) if world.is_main else None
    last = [0, time.perf_counter()]

    def progress(step: int, total: int, row: dict) -> None:
        bar.n = step
        bar.set_postfix(loss=f"{row['loss']:.4f}", refresh=False)
        bar.refresh()
        now = time.perf_counter()
        curve.log(row)  # the losses and the learning rate the loop applied
        window = max(min(step - last[0], config.log_every), 1)  # a resumed run's first window: log_every steps
        timing.log({"step": step, "step_seconds": (now - last[1]) / window})
        last[:] = [step, now]

    result = train_student(teacher, data, config, Path(args.resume_dir), progress)
    bar.close()
    if not world.is_main:
        return  # rank 0 writes the outputs
    curve.close()
    timing.close()
    # The whole curve, rewritten: a resumed run logged only the steps after its checkpoint as it went.
    write_curves_live(args.live, result.losses)

    provenance = {
        "method": config.method,
        "fewshot_ids": fewshot.samples["sample_id"].tolist(),
        "soft_pairs_sha256": hashlib.sha256(Path(args.pairs).read_bytes()).hexdigest(),
        "teacher_step": teacher.step,
        "class_prompts": data.class_prompts,  # what generation conditions on
    }
    if data.step_prompts:  # train.extra_templates: what training drew from, by class
        provenance["train_prompts"] = {name: data.step_prompts[c :: len(data.class_names)]
                                       for c, name in enumerate(data.class_names)}
    with atomic_output_dir(args.out) as tmp:
        result.checkpoint.save(tmp / "student.pt")
        write_json(tmp / "provenance.json", provenance)
    with atomic_output_dir(args.plots) as tmp:
        if result.losses:
            plot_curves(result.losses, tmp / "losses.png", f"student training ({config.method})", columns=LOSS_COLUMNS)
        previews = _mining_previews(result, teacher, data, tmp / "mining", args.previews, config.seed)
        if result.windows is not None:
            result.windows.to_parquet(tmp / "windows.parquet", index=False)

    final = result.losses[-1] if result.losses else {}
    metrics = {f"final.{k}": round(float(v), 6) for k, v in final.items() if k not in ("step", "lr")}  # lr: a param
    metrics.update(method=config.method, steps=int(final.get("step", 0)), mining_previews=previews)
    run.facts.update(resumed_from=result.resumed_from, train_seconds=round(result.seconds, 1), processes=world.size)
    write_json(args.metrics, metrics)
    print(f"train[{config.method}]: {metrics.get('steps')} steps in {result.seconds:.0f} s")
    run.finish(device=device)


if __name__ == "__main__":
    main()
