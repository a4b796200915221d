"""Stage `teacher`: import the official MDM checkpoint, or pretrain an MDM on the prepared prior; render previews.

With `teacher.nproc` > 1 pretraining runs data-parallel: the stage re-runs itself under torchrun in that many
processes (kinemic.distributed), and rank 0 alone writes the teacher, plots and metrics.

The loss curve (and learning rate) goes through DVCLive to `--live` as pretraining goes, so `dvc exp show` follows a
running experiment; step times go to runs/live/teacher only (kinemic.live). A released teacher's curve is replayed
there from the release, so both sources give the same files.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from kinemic.checkpoint_import import load_official_mdm
from kinemic.conditioning import TextSpec, default_cache_dir, text_embedder
from kinemic.corpus import PreparedPrior
from kinemic.devices import resolve_device
from kinemic.distributed import current_world, relaunch, share_threads, warn_cpu_processes
from kinemic.io import atomic_output_dir, write_json
from kinemic.live import CurveLog, run_facts_dir, write_curves_live
from kinemic.params import config_from_params, load_section, parse_stage_args, stage_parser
from kinemic.preview import Panel, render_gif
from kinemic.recogniser import UnlabelledPrior
from kinemic.report import plot_curves
from kinemic.runtime import StageRun
from kinemic.sampling import SampleRequest, sample_motions
from kinemic.teacher import LoggedStep, TeacherCheckpoint, TeacherConfig, logged_curve, pretrain_teacher
from kinemic.teacher_card import CardConfig, prepare_card, teacher_card, write_card_plot
from kinemic.teacher_release import load_release, read_losses


def _official(config: TeacherConfig, prior: PreparedPrior, spec: TextSpec) -> TeacherCheckpoint:
    model, info = load_official_mdm(config.official_checkpoint, config.official_args or None)
    print(f"teacher: imported {info.path} ({info.weights}, config from {info.config_source}, "
          f"{info.diffusion_steps} steps)")
    return TeacherCheckpoint(model, prior.stats, info.diffusion_steps, config.noise_schedule, spec.to_dict(),
                             config.max_frames, "official")


def _previews(teacher: TeacherCheckpoint, prior: PreparedPrior, config: TeacherConfig, embed, out: Path) -> list[str]:
    """A few teacher samples for prior captions: should show the right primitive."""
    captions = list(config.preview_captions)
    if not captions:
        return []
    lengths = np.full(len(captions), min(config.max_frames, 120))
    request = SampleRequest(lengths=lengths, text_emb=embed(captions))
    steps = config.preview_steps or None
    if config.preview_sampler == "ancestral":  # the official respacing, as the previews have always been drawn
        diffusion, sampler_steps = teacher.diffusion(steps), None
    else:
        diffusion, sampler_steps = teacher.diffusion(), steps
    samples = sample_motions(teacher.model, diffusion, teacher.stats, request, guidance=config.guidance,
                             pad_to=teacher.max_frames, seed=config.seed, device=resolve_device(config.device),
                             sampler=config.preview_sampler, steps=sampler_steps)
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for i, (caption, joints) in enumerate(zip(captions, samples.joints, strict=True)):
        name = f"teacher_{i:02d}.gif"
        render_gif(Panel(joints, caption), out / name)
        names.append(name)
    return names


def _card(teacher: TeacherCheckpoint, prior: PreparedPrior, config: TeacherConfig, embed, labels: Path,
          plots: Path) -> dict[str, float]:
    """The report card (kinemic.teacher_card): overall keys for metrics/teacher.json, the per-primitive table and
    chart in plots/teacher. A prior without primitive labels (real HumanML3D) skips it, saying why."""
    try:
        inputs = prepare_card(prior, labels / "primitives.parquet")
    except UnlabelledPrior as err:
        print(f"teacher: report card skipped: {err}")
        return {}
    bar = tqdm(total=0, desc="teacher card", unit="motion", mininterval=2)

    def progress(done: float, total: int) -> None:
        bar.total = total
        bar.update(int(done) - bar.n)

    card_config = CardConfig(**{"device": str(resolve_device(config.device)), **(config.card or {})})
    card = teacher_card(teacher, embed, inputs, card_config, progress)
    bar.close()
    write_card_plot(card, plots / "card.tsv", plots / "card.png")
    print(card.table())
    # Per-primitive values stay in card.tsv: 63 more columns would bury the headline in `dvc exp show`.
    return {k: v for k, v in card.to_metrics().items() if k.count(".") == 1}


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--prior", required=True, help="prepared prior (data/prepared/prior)")
    parser.add_argument("--out", required=True, help="teacher directory (models/teacher)")
    parser.add_argument("--plots", required=True, help="loss curve, report card and previews (plots/teacher)")
    parser.add_argument("--labels", type=Path, default=None,
                        help="the raw prior folder holding primitives.parquet (the embedded world's labels)")
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--live", required=True, help="DVCLive curves: loss and lr per logged step (dvclive/teacher)")
    parser.add_argument("--resume-dir", default=".checkpoints/teacher", help="resume checkpoints (not a DVC output)")
    parser.add_argument("--text-cache", type=Path, default=default_cache_dir())
    args = parse_stage_args(parser, argv)
    config = config_from_params(TeacherConfig, load_section("teacher", args.params), "teacher")
    if config.source == "pretrain":  # a released or official teacher trains nothing: one process
        warn_cpu_processes("teacher", config.nproc, resolve_device(config.device),
                           "the weights are the same up to float summation order")
        if relaunch(config.nproc, "stages.teacher", sys.argv[1:] if argv is None else argv):
            return  # the torchrun processes did the work
    run = StageRun("teacher", args.params)
    share_threads(run.config.threads)  # under torchrun: runtime.threads split between the processes

    spec = config.text
    embed = text_embedder(spec, args.text_cache)
    prior = PreparedPrior.load(Path(args.prior))
    metrics: dict[str, float] = {}
    losses: list[tuple[int, float]] = []
    recipe = config  # whose learning-rate schedule the logged curve shows
    if config.source == "official":
        teacher = _official(config, prior, spec)
    elif config.source == "release":
        teacher, manifest = load_release(Path(config.release), prior, spec.to_dict(), resolve_device(config.device))
        losses = read_losses(Path(config.release))
        recipe = manifest.trained_with()
        metrics.update(final_loss=losses[-1][1] if losses else float("nan"), steps=teacher.step)
        print(f"teacher: the released teacher from {config.release} (step {teacher.step}, trained in "
              f"{manifest.wall_seconds / 3600:.1f} h on {manifest.hardware.get('cpu', '?')})")
    else:
        world = current_world()
        bar = tqdm(total=config.steps, desc="teacher", unit="step", mininterval=5, disable=not world.is_main)
        # Rank 0 alone logs (only it gets progress calls): the curve to --live, the step times to runs/ only.
        curve = CurveLog(args.live) if world.is_main else None
        timing = CurveLog(run_facts_dir(args.params, "teacher"), timestamps=True) if world.is_main else None
        last = [bar.n, time.perf_counter()]

        def progress(row: LoggedStep, total: int) -> None:
            bar.n = row.step
            bar.set_postfix(loss=f"{row.loss:.4f}", refresh=False)
            bar.refresh()
            now = time.perf_counter()
            curve.log(row._asdict())  # step, loss and the rate the loop applied
            window = max(min(row.step - last[0], config.log_every), 1)  # a resumed run's first window: log_every steps
            timing.log({"step": row.step, "step_seconds": (now - last[1]) / window})
            last[:] = [row.step, now]

        result = pretrain_teacher(prior, embed, config, spec.to_dict(), Path(args.resume_dir), progress)
        bar.close()
        if not world.is_main:
            return  # rank 0 writes the outputs
        curve.close()
        timing.close()
        teacher, losses = result.teacher, result.losses
        metrics.update(final_loss=losses[-1][1], steps=result.teacher.step)
        run.facts.update(resumed_from=result.resumed_from, pretrain_seconds=round(result.seconds, 1),
                         processes=world.size)

    plots = Path(args.plots)
    with atomic_output_dir(args.out) as tmp:
        teacher.save(tmp / "teacher.pt")
        write_json(tmp / "config.json", {"mdm": teacher.model.config.to_dict(), "text": spec.to_dict(),
                                          "diffusion_steps": teacher.diffusion_steps, "source": teacher.source})
    # The whole curve, rewritten: a resumed run logged only the steps after its checkpoint as it went.
    write_curves_live(args.live, [row._asdict() for row in logged_curve(losses, recipe)])
    with atomic_output_dir(plots) as tmp:
        if losses:
            rows = [{"step": step, "loss": loss} for step, loss in losses]
            plot_curves(rows, tmp / "loss.png", "teacher pretraining (masked x0 MSE)")
        previews = _previews(teacher, prior, config, embed, tmp / "previews")
        if config.card is not None and args.labels is not None:
            metrics.update(_card(teacher, prior, config, embed, args.labels, tmp))
    metrics["previews"] = len(previews)
    write_json(args.metrics, metrics)
    print(f"teacher: {teacher.source}, {sum(p.numel() for p in teacher.model.parameters()) / 1e6:.2f} M parameters")
    run.finish(device=resolve_device(config.device))


if __name__ == "__main__":
    main()
