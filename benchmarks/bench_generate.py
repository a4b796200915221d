"""Benchmark: wall time of the `generate` stage itself with each sampler setting, interleaved (run on purpose).

    .venv/bin/python benchmarks/bench_generate.py [--repeats 2] [--contender ancestral:50:official ...]

The stage runs end to end, as `dvc repro` runs it (`python -m stages.generate`, a fresh process: imports, student
load, sampling, composition, PYSKL pickle, preview GIFs), on the workspace's student and few-shot set, for each
contender `sampler:steps:spacing` in turn within each repeat, same threads, outputs into a temporary folder (the
workspace's outputs are not touched). The first contender is the baseline: its median is divided by each other's.
Defaults: the 50-step ancestral sampler the stage used before (official spacing) against params.yaml's `generate`.

`--baseline-rev REV` makes the baseline the stage as it was at that git revision, with that revision's params.yaml
(its code in a temporary `git worktree`, reading this workspace's student and few-shot set): "how much faster is the
stage than it was", where the default baseline answers "how much faster is the sampler, with today's code".
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def contender_params(params: dict, contender: str) -> dict:
    """params.yaml with `generate.sampler`, `sampling_steps` and `spacing` set from 'sampler:steps:spacing'."""
    sampler, steps, spacing = contender.split(":")
    changed = {**params, "generate": {**params["generate"], "sampler": sampler, "sampling_steps": int(steps),
                                      "spacing": spacing}}
    return changed


def run_stage(params_path: Path, out: Path, code: Path = ROOT) -> float:
    """One run of the stage with the code in `code`, on this workspace's student and few-shot set."""
    command = [sys.executable, "-m", "stages.generate", "--params", str(params_path),
               "--student", str(ROOT / "models/student"), "--target", str(ROOT / "data/prepared/target"),
               "--out", str(out / "generated"), "--plots", str(out / "plots"), "--metrics", str(out / "generate.json")]
    start = time.perf_counter()
    subprocess.run(command, cwd=code, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


@contextlib.contextmanager
def worktree(rev: str, folder: Path):
    """A detached `git worktree` of `rev` in `folder`, removed afterwards."""
    subprocess.run(["git", "worktree", "add", "--detach", str(folder), rev], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield folder
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(folder)], cwd=ROOT, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--contender", action="append",
                        help="sampler:steps:spacing (repeatable; the first is the baseline)")
    parser.add_argument("--baseline-rev", help="baseline: the stage at this git revision, with its own params.yaml")
    args = parser.parse_args()
    if args.baseline_rev:
        with tempfile.TemporaryDirectory() as tmp, worktree(args.baseline_rev, Path(tmp) / "code") as code:
            compare_revision(args, code, Path(tmp))
        return
    params = yaml.safe_load(args.params.read_text())
    own = params["generate"]
    contenders = args.contender or [
        "ancestral:50:official",
        f"{own['sampler']}:{own['sampling_steps']}:{own.get('spacing', 'default')}",
    ]
    if not (ROOT / "models/student/student.pt").exists():
        sys.exit("no models/student/student.pt in the workspace: run `dvc repro train` (or `dvc pull`) first")
    seconds: dict[str, list[float]] = {c: [] for c in contenders}
    with tempfile.TemporaryDirectory() as tmp:
        for contender in contenders:
            (Path(tmp) / contender.replace(":", "_")).mkdir()
            path = Path(tmp) / contender.replace(":", "_") / "params.yaml"
            path.write_text(yaml.safe_dump(contender_params(params, contender), sort_keys=False))
        for repeat in range(args.repeats):
            for contender in contenders:
                folder = Path(tmp) / contender.replace(":", "_")
                seconds[contender].append(run_stage(folder / "params.yaml", folder / f"run{repeat}"))
                print(f"repeat {repeat}: {contender} {seconds[contender][-1]:.1f} s", flush=True)
    baseline = statistics.median(seconds[contenders[0]])
    print(f"\ngenerate stage wall time, median of {args.repeats} (runtime.threads from params, interleaved):")
    for contender in contenders:
        median = statistics.median(seconds[contender])
        print(f"  {contender:28s} {median:7.1f} s   {baseline / median:5.1f}x the first")


def compare_revision(args: argparse.Namespace, code: Path, tmp: Path) -> None:
    """The stage at `args.baseline_rev` (its params) against this workspace's stage and params, interleaved."""
    runs = {f"at {args.baseline_rev}": (code / "params.yaml", code), "this workspace": (args.params, ROOT)}
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for repeat in range(args.repeats):
        for i, (name, (params, where)) in enumerate(runs.items()):
            seconds[name].append(run_stage(params, tmp / f"run{i}_{repeat}", where))
            print(f"repeat {repeat}: {name} {seconds[name][-1]:.1f} s", flush=True)
    baseline = statistics.median(seconds[f"at {args.baseline_rev}"])
    print(f"\ngenerate stage wall time, median of {args.repeats} (each with its own params.yaml, interleaved):")
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"  {name:28s} {median:7.1f} s   {baseline / median:5.1f}x the first")


if __name__ == "__main__":
    main()
