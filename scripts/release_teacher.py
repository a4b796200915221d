"""Train, score and publish the released embedded teacher (kinemic.teacher_release).

    # 1. train the recipe with resume, keeping EMA and raw weights every --every steps (kill and re-run at will)
    python scripts/release_teacher.py train [--recipe releases/teacher/recipe.yaml] [--until 16000] [--every 2000]
    #    a variant that changes the recipe from step S on (`teacher.velocity_from_step: S`, `high_noise_from_step`)
    #    can start from that run's resume checkpoint at S or before instead of step 0: --init-from PATH
    #    a recipe study from the released weights (a fresh optimizer; never published):
    #    --init-from releases/teacher/teacher.pt
    # 2. score every snapshot with the report card (EMA against raw weights, and where the card plateaus)
    python scripts/release_teacher.py cards [--snapshots .release/teacher] [--out .release/teacher/cards.tsv]
    # 3. publish one snapshot as releases/teacher/{teacher.pt,release.json}
    python scripts/release_teacher.py publish --snapshot .release/teacher/ema_016000.pt

Works on the prepared prior of the embedded default (`dvc repro prepare_prior` first). The snapshots and the resume
checkpoint stay under .release/ (ignored by git); only `publish` writes into releases/teacher.
"""

from __future__ import annotations

import stage_pins  # noqa: F401  (the stages' kernel pins, before numpy and torch load)

# isort: split
import argparse
import csv
import json
import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from kinemic.checkpoints import load_torch_file
from kinemic.conditioning import TextSpec, default_cache_dir, text_embedder
from kinemic.corpus import PreparedPrior
from kinemic.params import config_from_params
from kinemic.recogniser import RecogniserConfig
from kinemic.runtime import apply_threads, platform_facts
from kinemic.teacher import HIGH_NOISE_BAND, LoggedStep, TeacherCheckpoint, TeacherConfig
from kinemic.teacher_card import CardConfig, prepare_card, teacher_card
from kinemic.teacher_release import (
    check_fork,
    file_sha256,
    run_resume_path,
    seed_resume_from_weights,
    train_in_snapshots,
    write_release,
)

WORK = Path(".release/teacher")


def _recipe(path: Path) -> TeacherConfig:
    return config_from_params(TeacherConfig, yaml.safe_load(path.read_text())["teacher"], "teacher")


def _train(args: argparse.Namespace) -> None:
    config = _recipe(args.recipe)
    prior = PreparedPrior.load(args.prior)
    spec = config.text
    embed = text_embedder(spec, default_cache_dir())
    args.snapshots.mkdir(parents=True, exist_ok=True)
    log = open(args.snapshots / "train_log.tsv", "a")

    def progress(row: LoggedStep, total: int) -> None:
        log.write(f"{row.step}\t{row.loss:.6f}\t{time.time():.1f}\n")
        log.flush()

    facts_path = args.snapshots / "facts.json"
    started = json.loads(facts_path.read_text()).get("init_from") if facts_path.is_file() else None
    if args.init_from is not None:
        started = _seed_resume(args.init_from, args.snapshots / "resume", config, prior, embed) or started
    facts = {"hardware": platform_facts(config.device), "until": args.until,
             **({"init_from": started} if started else {})}
    facts_path.write_text(json.dumps(facts, indent=2))
    for snap in train_in_snapshots(prior, embed, config, spec.to_dict(), args.snapshots / "resume", args.snapshots,
                                   args.every, args.until, progress):
        print(f"step {snap.step}: {snap.raw} ({snap.seconds:.0f} s)", flush=True)


def _seed_resume(source: Path, resume_dir: Path, config: TeacherConfig, prior: PreparedPrior, embed
                 ) -> dict[str, Any] | None:
    """Start a recipe variant from another run's loop state (weights, optimizer, EMA, random streams) by writing it as
    this run's resume checkpoint; a run that already has one keeps it (and None is returned). The variant's steps up
    to the source's step are then the source's, so its snapshots' step counts stay total training steps.

    `source` may also be a teacher checkpoint (`releases/teacher/teacher.pt`, an `ema_*.pt` snapshot): the variant
    then fine-tunes those weights with a fresh optimizer (`kinemic.teacher_release.resume_state_from_weights`), which
    `publish` will not ship. Returns what the run started from, for facts.json."""
    target = run_resume_path(resume_dir, config, prior, embed)
    if target.is_file():
        print(f"{target} exists: resuming it, not {source}")
        return None
    loaded = load_torch_file(source)
    started = {"path": str(source), "sha256": file_sha256(source), "step": int(loaded["step"])}
    if "optimizer" not in loaded:  # a teacher checkpoint: weights only
        try:
            seed_resume_from_weights(target, TeacherCheckpoint.load(source), config)
        except ValueError as err:
            raise SystemExit(f"cannot fine-tune {source} with this recipe: {err}") from None
        print(f"fine-tuning the weights of {source} (step {started['step']}) with a fresh optimizer")
        return {**started, "kind": "weights"}
    try:
        check_fork(started["step"], config, str(source))
    except ValueError as err:
        raise SystemExit(f"{err} (e.g. the kept .release/teacher/resume_012500.pt)") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    print(f"starting from {source} (step {started['step']})")
    return {**started, "kind": "resume"}


def _card_inputs(prior: PreparedPrior, args: argparse.Namespace):
    return prepare_card(prior, args.primitives, RecogniserConfig())


def _cards(args: argparse.Namespace) -> None:
    prior = PreparedPrior.load(args.prior)
    inputs = _card_inputs(prior, args)
    rows = []
    for path in sorted(args.snapshots.glob("*_0*.pt")):
        teacher = TeacherCheckpoint.load(path)
        embed = text_embedder(TextSpec.from_dict(teacher.text_encoder), default_cache_dir())
        card = teacher_card(teacher, embed, inputs, CardConfig(sampling_steps=args.steps))
        overall = {k: v for k, v in card.to_metrics().items() if k.count(".") == 1}
        rows.append({"weights": path.stem.split("_")[0], "step": teacher.step, **overall})
        print(path.name, json.dumps({k: round(v, 4) for k, v in overall.items()}), flush=True)
    with open(args.out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.out}")


def _publish(args: argparse.Namespace) -> None:
    config = _recipe(args.recipe)
    prior = PreparedPrior.load(args.prior)
    teacher = TeacherCheckpoint.load(args.snapshot)
    embed = text_embedder(TextSpec.from_dict(teacher.text_encoder), default_cache_dir())
    card = teacher_card(teacher, embed, _card_inputs(prior, args), CardConfig())
    facts = json.loads((args.snapshot.parent / "facts.json").read_text())
    _refuse_fine_tunes_of_weights(facts, [json.loads((run / "facts.json").read_text()) for run in args.lineage
                                          if (run / "facts.json").is_file()])
    logs = [run / "train_log.tsv" for run in [*args.lineage, args.snapshot.parent]]
    missing = [str(path) for path in logs if not path.is_file()]
    if missing:
        raise SystemExit(f"no training log at {', '.join(missing)}: --lineage names the snapshot folders of the runs "
                         "this one started from (--init-from), oldest first")
    log_rows = _log_rows(logs, teacher.step)
    manifest = write_release(args.release, teacher, prior, config, facts["hardware"], _wall_seconds(log_rows),
                             {k: round(v, 6) for k, v in card.to_metrics().items()},
                             [(step, loss) for step, loss, _ in log_rows])
    cards = args.snapshot.parent / "cards.tsv"
    (args.release / "CARD.md").write_text(_card_text(manifest, card.table(), cards.read_text() if cards.is_file()
                                                      else ""))
    print(card.table())
    print(f"published step {manifest.step} to {args.release} (sha256 {manifest.sha256[:12]}...)")


def _refuse_fine_tunes_of_weights(facts: dict[str, Any], lineage: list[dict[str, Any]]) -> None:
    """A release must be what `teacher.source: pretrain` replays from its recipe; a run started from bare weights
    (`train --init-from teacher.pt`) restarted its optimizer there, which no recipe describes."""
    for run in [*lineage, facts]:
        started = run.get("init_from") or {}
        if started.get("kind") == "weights":
            raise SystemExit(f"this run (or one it started from) fine-tuned the weights of {started['path']} with a "
                             "fresh optimizer: `teacher.source: pretrain` cannot reproduce it, so it is not published. "
                             "Train the recipe as one run (--init-from a resume checkpoint of its parent run, or from "
                             "step 0) to release it.")


def _card_text(manifest, table: str, cards_tsv: str) -> str:
    """The release's card in words: what it is, how it was trained, how good it is, how to check it."""
    hw = manifest.hardware
    lines = [
        "# The released embedded teacher", "",
        f"An MDM ({manifest.recipe['model']}) pretrained by `python scripts/release_teacher.py train` on the embedded "
        "default prior, for `teacher.source: release`.", "",
        f"- steps: {manifest.step} (batch {manifest.recipe['batch_size']}, lr {manifest.recipe['lr']} "
        f"{manifest.recipe['lr_schedule']} after {manifest.recipe['warmup_steps']} warmup steps, EMA "
        f"{manifest.recipe['ema_decay']}, crops up to {manifest.recipe['max_frames']} frames"
        f"{_later_terms_words(manifest)}); recipe: `recipe.yaml`",
        f"- hardware: {hw.get('cpu')}, {hw.get('torch_threads')} torch threads, torch {hw.get('torch')}, "
        f"device {hw.get('device')}; training wall time {manifest.wall_seconds / 3600:.2f} h",
        f"- sha256 of teacher.pt: `{manifest.sha256}`",
        f"- trained on the prepared prior with hash `{manifest.prior_hash[:16]}...` (checked on load; a prior with "
        f"other bytes passes when its tables hash to `{manifest.prior_fingerprint.get('tables', '')[:16]}...` and "
        "its statistics and frame-order summary equal the release's within float rounding: the same world on "
        "another CPU)", "",
        "## Report card (kinemic.teacher_card, 10 prompts per primitive, ancestral sampler, 50 steps)", "", table, "",
    ]
    if cards_tsv:
        lines += ["## Card of every snapshot (EMA and raw weights)", "", "```", cards_tsv.strip(), "```", ""]
    lines += ["Re-score it: `python scripts/teacher_card.py --teacher releases/teacher/teacher.pt`.", ""]
    return "\n".join(lines)


def _later_terms_words(manifest) -> str:
    """The recipe's terms that start at a later step (`teacher.LATER_FIELDS`), in words; "" when none is on."""
    recipe, words = manifest.recipe, ""
    if recipe.get("velocity_weight", 0.0):
        words += f", velocity term {recipe['velocity_weight']} from step {recipe.get('velocity_from_step', 0)}"
    if recipe.get("acceleration_weight", 0.0):
        words += (f", acceleration term {recipe['acceleration_weight']} from step "
                  f"{recipe.get('acceleration_from_step', 0)}")
    if recipe.get("position_weight", 0.0):
        words += (f", joint-column term {recipe['position_weight']} from step "
                  f"{recipe.get('position_from_step', 0)}")
    if recipe.get("high_noise_share", 0.0):
        words += (f", {recipe['high_noise_share']} of every batch at the top {HIGH_NOISE_BAND:.0%} of the noise "
                  f"schedule from step {recipe.get('high_noise_from_step', 0)}")
    return words


def _log_rows(log_paths: Sequence[Path], step: int) -> list[tuple[int, float, float]]:
    """(step, loss, time) up to `step`, once per step, from the logs oldest first: a later line of a step replaces an
    earlier one, as a resumed run logs again the steps after its checkpoint and a variant (--init-from) logs its own
    steps after the run it started from."""
    rows: dict[int, tuple[float, float]] = {}
    for log_path in log_paths:
        for line in log_path.read_text().splitlines():
            logged_step, loss, stamp = line.split("\t")
            if int(logged_step) <= step:
                rows[int(logged_step)] = (float(loss), float(stamp))
    return [(s, loss, stamp) for s, (loss, stamp) in sorted(rows.items())]


def _wall_seconds(rows: list[tuple[int, float, float]]) -> float:
    """Training wall time from the log's timestamps; pauses between re-runs (over 30 s a step) are not counted."""
    total = 0.0
    for (step_a, _, time_a), (step_b, _, time_b) in zip(rows, rows[1:], strict=False):
        gap = time_b - time_a
        total += gap if 0 < gap / (step_b - step_a) < 30 else 0.0
    return total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("train", "cards", "publish"))
    parser.add_argument("--recipe", type=Path, default=Path("releases/teacher/recipe.yaml"))
    parser.add_argument("--prior", type=Path, default=Path("data/prepared/prior"))
    parser.add_argument("--primitives", type=Path, default=Path("data/raw/synthetic/prior/primitives.parquet"))
    parser.add_argument("--snapshots", type=Path, default=WORK)
    parser.add_argument("--until", type=int, default=16000)
    parser.add_argument("--every", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=CardConfig.sampling_steps, help="card sampling steps")
    parser.add_argument("--out", type=Path, default=WORK / "cards.tsv")
    parser.add_argument("--snapshot", type=Path, help="the snapshot to publish")
    parser.add_argument("--release", type=Path, default=Path("releases/teacher"))
    parser.add_argument("--init-from", type=Path, help="train: start from this resume checkpoint of another run "
                        "(a recipe variant fine-tuned from it), or fine-tune a teacher checkpoint's weights")
    parser.add_argument("--lineage", type=Path, nargs="*", default=[],
                        help="publish: snapshot folders of the runs the snapshot's run started from (--init-from), "
                        "oldest first; their logs give the steps before the fork (loss curve and wall time)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    apply_threads(args.threads)
    {"train": _train, "cards": _cards, "publish": _publish}[args.command](args)


if __name__ == "__main__":
    main()
