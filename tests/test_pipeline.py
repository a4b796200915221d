"""The whole pipeline on a tiny world: every stage's main() in dvc.yaml order, and dvc.yaml's contract.

The stages run in-process on tiny params (a dozen prior motions, two shots per class, a one-layer teacher, a few
steps everywhere), so this checks the wiring between stages (paths, file formats, params sections), not quality.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from kinemic.formats.pyskl import read_pyskl
from kinemic.stage_deps import code_deps, is_code_dep, stage_script, synced_dvc_yaml
from kinemic.student import StudentCheckpoint
from kinemic.synthetic_set import SyntheticSet
from kinemic.window_recognition import check_windows

REPO = Path(__file__).resolve().parents[1]

TINY_PARAMS = {
    "synthetic": {"seed": 3, "prior": {"num_motions": 16}, "target": {"num_performers": 4, "clips_per_class": 12},
                  "previews": {"num_prior": 1, "frame_step": 8}},
    "prepare_prior": {"source": "RAW/prior"},
    "prepare_target": {"kind": "smpl24", "source": "RAW/target", "shots": 2, "classes": [99, 102, 104]},
    "mining": {"k": 5, "encoder": "minilm"},
    "teacher": {"model": {"latent_dim": 32, "ff_size": 64, "num_layers": 1, "num_heads": 2, "mask_frames": True},
                "diffusion_steps": 10, "steps": 4, "batch_size": 4, "max_frames": 40, "log_every": 2,
                "checkpoint_every": 2, "device": "cpu", "preview_captions": ["a person jogs in place"],
                "preview_steps": 3,
                "card": {"samples_per_primitive": 1, "sampling_steps": 2, "real_per_primitive": 2}},
    "train": {"steps": 2, "lr": 1e-3, "lora": {"rank": 2, "alpha": 4.0, "dropout": 0.0}, "mic_hidden": 8,
              "mic_output": 8, "log_every": 1, "device": "cpu"},
    "generate": {"samples_per_class": 2, "sampling_steps": 3, "batch_size": 8, "device": "cpu",
                 "previews_per_class": 1, "composition_class": "stretch oneself", "composition_samples": 1},
    "evaluator": {"seed": 0, "epochs": 1, "batch_size": 8, "clip_len": 8, "base_channels": 4, "device": "cpu"},
    "evaluate": {"seeds": [1, 2], "classifier": {"epochs": 1, "batch_size": 8, "clip_len": 8, "base_channels": 4,
                                                  "device": "cpu"}},
}


def _run(module: str, *args: str) -> None:
    import importlib

    importlib.import_module(f"stages.{module}").main(list(args))


DATA_STAGES = ("synthesize", "prepare_prior", "prepare_target", "mine")


def _run_pipeline(root: Path, params: dict, cache: Path, stages: tuple[str, ...] | None = None) -> None:
    """Every stage's main() in dvc.yaml order (or the named ones), with paths relative to `root` as DVC gives them,
    so that two runs in two folders can be compared byte for byte."""
    os.chdir(root)
    Path("params.yaml").write_text(yaml.safe_dump(params))
    p, c = ["--params", "params.yaml"], ["--text-cache", str(cache)]
    steps = {
        "validate": lambda: _run("validate", *p, "--out", "validated.json"),
        "synthesize": lambda: _run("synthesize", *p, "--out", "raw", "--metrics", "m/synth.json"),
        "prepare_prior": lambda: _run("prepare_prior", *p, "--out", "prior", "--metrics", "m/prior.json"),
        "prepare_target": lambda: _run("prepare_target", *p, "--out", "target", "--metrics", "m/target.json"),
        "mine": lambda: _run("mine", *p, "--prior", "prior", "--target", "target", "--out", "mining", "--plots",
                             "plots/mining", "--metrics", "m/mining.json", *c),
        "teacher": lambda: _run("teacher", *p, "--prior", "prior", "--labels", "raw/prior", "--out", "teacher",
                                "--plots", "plots/teacher", "--metrics", "m/teacher.json", "--live", "dvclive/teacher",
                                "--resume-dir", "resume", *c),
        "train": lambda: _run("train", *p, "--teacher", "teacher", "--target", "target", "--prior", "prior", "--pairs",
                              "mining/soft_pairs.parquet", "--out", "student", "--plots", "plots/train", "--metrics",
                              "m/train.json", "--live", "dvclive/train", "--resume-dir", "resume", *c),
        "generate": lambda: _run("generate", *p, "--student", "student", "--target", "target", "--out", "generated",
                                 "--plots", "plots/generate", "--metrics", "m/generate.json", *c),
        "export": lambda: _run("export", *p, "--target", "target", "--generated", "generated", "--out",
                               "exports/mmaction2"),
        "evaluator": lambda: _run("evaluator", *p, "--target", "target", "--out", "evaluator", "--metrics",
                                  "m/evaluator.json"),
        "evaluate": lambda: [_run("evaluate", *p, "--seed", str(seed), "--target", "target", "--generated",
                                  "generated", "--out", f"eval/seed_{seed}", "--metrics", f"m/eval/seed_{seed}.json")
                             for seed in params["evaluate"]["seeds"]],
        "baseline_real_only": lambda: _run("baselines", *p, "--baseline", "real_only", "--target", "target",
                                           "--metrics", "m/baseline_real_only.json"),
        "baseline_all_real": lambda: _run("baselines", *p, "--baseline", "all_real", "--target", "target",
                                          "--metrics", "m/baseline_all_real.json"),
        "report": lambda: _run("report", *p, "--eval-metrics", "m/eval", "--eval-outputs", "eval", "--target",
                               "target", "--generated", "generated", "--evaluator", "evaluator", "--plots",
                               "plots/report", "--baselines", "m/baseline_real_only.json", "--baselines",
                               "m/baseline_all_real.json", "--summary", "m/summary.json",
                               "--headline", "m/headline.json"),
    }
    for name in stages or tuple(steps):
        steps[name]()


def _tiny_params(threads: int = 2) -> dict:
    params = json.loads(json.dumps(TINY_PARAMS).replace("RAW", "raw"))
    params["runtime"] = {"threads": threads}
    return params


def _hashes(root: Path, skip: tuple[str, ...] = ("runs", "resume", "params.yaml")) -> dict[str, str]:
    """sha256 of every file under `root` (the run facts in runs/ are meant to differ)."""
    return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(root.rglob("*"))
            if f.is_file() and f.relative_to(root).parts[0] not in skip}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One whole run of the tiny pipeline, shared by the checks below."""
    root, cache = tmp_path_factory.mktemp("run_a"), tmp_path_factory.mktemp("cache_a")
    cwd = os.getcwd()
    try:
        _run_pipeline(root, _tiny_params(), cache)
    finally:
        os.chdir(cwd)
    return root


@pytest.mark.slow
def test_every_stage_on_a_tiny_world(tiny_run):
    d = tiny_run
    summary = json.loads((d / "m/summary.json").read_text())
    assert summary["seeds"] == 2 and 0.0 <= summary["top1.median"] <= 1.0
    assert {"gen.fid", "gen.diversity", "gen.multimodality", "top1.seed_1"} <= set(summary)
    headline = json.loads((d / "m/headline.json").read_text())
    assert list(headline)[0] != "seeds" and {k: summary[k] for k in headline} == headline and len(headline) >= 8
    baselines = {**json.loads((d / "m/baseline_real_only.json").read_text()),
                 **json.loads((d / "m/baseline_all_real.json").read_text())}
    assert set(baselines) == {f"{name}.seed_{s}" for name in ("real_only", "all_real") for s in (1, 2)}
    assert summary["top1.mean.ci_low"] <= summary["top1.mean"] <= summary["top1.mean.ci_high"]
    real_only = np.mean([baselines["real_only.seed_1"], baselines["real_only.seed_2"]])
    assert summary["vs_real_only"] == pytest.approx(summary["top1.mean"] - real_only)
    assert summary["vs_real_only.ci_low"] <= summary["vs_real_only"] <= summary["vs_real_only.ci_high"]
    assert "gap_closure" in summary and summary["real_only.mean"] == pytest.approx(real_only)
    student = StudentCheckpoint.load(d / "student/student.pt")
    assert student.method == "kinemic" and student.uses_action
    synthetic = SyntheticSet.load(d / "generated/synthetic.npz")
    assert len(synthetic) == 6 and synthetic.class_names == student.class_names
    pyskl = read_pyskl(d / "generated/fewshot_plus_synthetic.pkl")
    labels = sorted(s.label for s in pyskl.samples)
    assert len(pyskl.by_split("real")) == 6 and labels == sorted([0, 1, 2] * 4)
    card = json.loads((d / "m/teacher.json").read_text())
    assert 0.0 <= card["card.recognition"] <= 1.0 and "card.recogniser_heldout" in card
    assert (d / "plots/teacher/card.tsv").is_file()
    exported = (d / "exports/mmaction2/fewshot_plus_synthetic.py").read_text()
    assert "fewshot_plus_synthetic.pkl" in exported and "num_person=1" in exported.replace(" ", "")
    assert (d / "exports/mmaction2/real_fewshot.py").is_file()
    for plot in ("teacher/loss.png", "teacher/previews/teacher_00.gif", "train/losses.png", "train/mining/pair_00.gif",
                 "mining/similarity.csv", "report/accuracy.tsv", "report/confusion.csv", "report/confusion.png",
                 "generate/composition.gif"):
        assert (d / "plots" / plot).is_file(), plot
    windows = pd.read_parquet(d / "plots/train/windows.parquet")  # MIC's windows, for scripts/window_recognition.py
    check_windows(windows)
    assert sorted(windows["step"].unique()) == [1, 2]
    for stage, steps in (("teacher", 4), ("train", 2)):  # DVCLive's curves: the last logged step, no timestamps
        live = json.loads((d / "dvclive" / stage / "metrics.json").read_text())
        assert live["step"] == steps and np.isfinite(live["loss"]) and live["lr"] > 0
        assert (d / "dvclive" / stage / "plots/metrics/loss.tsv").read_text().startswith("step\tloss\n")
        assert "timestamp" in (d / "runs/live" / stage / "plots/metrics/step_seconds.tsv").read_text()
    assert np.isfinite(summary["gen.fid"])
    assert not any((d / "resume").rglob("last.pt")), "finished runs leave no resume checkpoint behind"
    facts = json.loads((d / "runs/teacher.json").read_text())
    assert facts["platform"]["torch_threads"] == 2 and facts["platform"]["device"] == "cpu"
    assert "NPY_DISABLE_CPU_FEATURES" in facts["platform"]["kernel_settings"]  # what chose the kernels, recorded
    assert facts["wall_seconds"] > 0 and "resumed_from" in facts
    assert {path.stem for path in (d / "runs").glob("*.json")} >= {"synthesize", "evaluate_seed_1", "report"}


@pytest.mark.slow
def test_plot_definitions_name_fields_the_files_have(tiny_run):
    """Every data-series plot in dvc.yaml names an x and y that exist in the file the pipeline writes, with numbers
    on the value axis: what `dvc plots show` renders (the per-seed chart once had its axes swapped)."""
    checked = 0
    for entry in yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]:
        if not isinstance(entry, dict):
            continue  # an image or a folder of images
        (plot_id, spec), = entry.items()
        ys = spec["y"] if isinstance(spec["y"], dict) else {plot_id: spec["y"]}
        for path, columns in ys.items():
            text = (tiny_run / path).read_text().splitlines()
            sep = "\t" if path.endswith(".tsv") else ","
            header, first = text[0].split(sep), text[1].split(sep)
            columns = [columns] if isinstance(columns, str) else columns
            assert spec["x"] in header, (plot_id, spec["x"], header)
            for column in columns:
                assert column in header, (plot_id, column, header)
                checked += 1
            value_axis = spec["x"] if spec.get("template") == "bar_horizontal" else columns[0]
            if spec.get("template") != "confusion":
                float(first[header.index(value_axis)])  # a number, not a category
    assert checked >= 10


@pytest.mark.slow
def test_same_params_give_the_same_bytes(tiny_run, tmp_path):
    """A second run in another folder, whose text cache already holds other captions, reproduces every output file
    of every stage byte for byte: nothing depends on wall time, cache history or the folder."""
    cache = tmp_path / "cache"
    from kinemic.conditioning import TextSpec, text_embedder

    text_embedder(TextSpec(), cache)(["a person waves", "someone sits down slowly", "a person jogs in place"])
    (tmp_path / "run").mkdir()
    cwd = os.getcwd()
    try:
        _run_pipeline(tmp_path / "run", _tiny_params(), cache)
    finally:
        os.chdir(cwd)
    first, second = _hashes(tiny_run), _hashes(tmp_path / "run")
    assert sorted(first) == sorted(second) and len(first) > 40
    assert any(path.startswith("eval/seed_1/") for path in first) and "student/student.pt" in first
    differing = sorted(path for path in first if first[path] != second[path])
    assert not differing, f"outputs differ between two runs of the same params: {differing}"


@pytest.mark.slow
def test_data_stages_do_not_depend_on_the_thread_count(tiny_run, tmp_path):
    """The data stages give the same bytes with 1 thread as with 2 (their hashes must hold on any machine)."""
    cwd = os.getcwd()
    try:
        _run_pipeline(tmp_path, _tiny_params(threads=1), tmp_path / "cache", DATA_STAGES)
    finally:
        os.chdir(cwd)
    single = _hashes(tmp_path, skip=("runs", "cache", "params.yaml"))
    both = {path: digest for path, digest in _hashes(tiny_run).items() if path in single}
    assert sorted(single) == sorted(both) and single == both
    assert any(path.startswith("mining/") for path in single) and any(path.startswith("raw/") for path in single)


# ------------------------------------------------------------------------------------------------------ dvc.yaml


def _dvc_stages():
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def _paths(entries) -> list[str]:
    return [next(iter(e)) if isinstance(e, dict) else e for e in entries or []]


def _stage_script(stage: dict) -> Path:
    return stage_script(REPO, stage)


def test_dvc_yaml_names_every_path_a_stage_writes_or_reads():
    """Scripts never write where dvc.yaml does not say: every path in a stage's command is a dep or an out."""
    for name, stage in _dvc_stages().items():
        cmd = " ".join(stage["cmd"]) if isinstance(stage["cmd"], list) else stage["cmd"]
        tokens = shlex.split(cmd)
        assert tokens[:2] == ["python", "-m"] and _stage_script(stage).is_file(), name
        assert str(_stage_script(stage).relative_to(REPO)) in _paths(stage.get("deps")), name
        declared = _paths(stage.get("deps")) + _paths(stage.get("outs")) + _paths(stage.get("metrics"))
        for flag, value in zip(tokens[3:], tokens[4:], strict=False):
            if flag.startswith("--") and not value.startswith("--") and flag not in ("--seed", "--baseline"):
                inside = any(path.startswith(value.rstrip("/") + "/") for path in declared)  # DVCLive's folder
                assert value in declared or inside, f"stage {name}: {flag} {value} is not declared in dvc.yaml"
        for dep in _paths(stage.get("deps")):
            if dep.startswith(("kinemic", "stages")):
                assert (REPO / dep).exists(), f"stage {name}: dependency {dep} does not exist"


def test_each_stage_depends_on_exactly_the_code_it_runs():
    """A stage re-runs when, and only when, code it runs changed: its code deps in dvc.yaml are exactly its script,
    stages/__init__.py and every kinemic file its imports execute (`python scripts/sync_stage_deps.py` writes them)."""
    for name, stage in _dvc_stages().items():
        listed = [d for d in _paths(stage.get("deps")) if is_code_dep(d)]
        assert listed == code_deps(REPO, stage), f"stage {name}: run `python scripts/sync_stage_deps.py`"


def test_what_trains_on_all_real_data_does_not_depend_on_the_few_shot_draw():
    """A benchmark's draws (prepare_target.seed) reuse the all-real baseline and the evaluator only if their data deps
    are the prepared target's draw-free files (tests/test_target_prep.py checks that those bytes hold)."""
    undrawn = ["data/prepared/target/features.npy", "data/prepared/target/joints.npy",
               "data/prepared/target/undrawn.parquet"]
    stages = _dvc_stages()
    for name in ("baseline_all_real", "evaluator"):
        assert [d for d in _paths(stages[name]["deps"]) if not is_code_dep(d)] == undrawn, name
        assert not any(p.startswith("prepare_target") for p in stages[name].get("params", [])), name
    assert "data/prepared/target" in _paths(stages["baseline_real_only"]["deps"])


def test_dep_sync_rewrites_only_code_deps(tmp_path):
    """The generator keeps data deps, comments and the rest of the file; it adds what is missing, drops what is not
    run."""
    text = (REPO / "dvc.yaml").read_text()
    stale = text.replace("      - kinemic/io.py\n", "", 1).replace("      - stages/__init__.py\n",
                                                                     "      - kinemic/objectives.py\n", 1)
    assert synced_dvc_yaml(REPO, stale) == synced_dvc_yaml(REPO, text) == text


def test_every_params_section_builds_its_config():
    """params.yaml is read by frozen configs that reject unknown keys: a typo there must fail here, not mid-repro."""
    from kinemic.validation import validate_params

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert set(validate_params(params)) == set(params)
    stage_params = {p.split(".")[0] for s in _dvc_stages().values() for p in s.get("params", []) if isinstance(p, str)}
    assert stage_params == set(params), "every params section belongs to a stage, and every stage's section exists"


@pytest.mark.parametrize("section, key, value, message", [
    ("train", "method", "foo", "train.method"),
    ("mining", "k", 0, "k"),
    ("runtime", "threads", 0, "runtime.threads"),
    ("evaluate", "train_data", "everything", "evaluate.train_data"),
    ("evaluate", "backend", "pytorch", "evaluate.backend"),
    ("generate", "sampler", "euler", "generate.sampler"),
    ("teacher", "lerning_rate", 1.0, "unknown keys"),
])
def test_a_bad_value_fails_validation_naming_it(section, key, value, message):
    """What stage `validate` runs before anything else: the error names the section and what to fix."""
    from kinemic.validation import validate_params

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params[section][key] = value
    with pytest.raises(ValueError, match=rf"section '{section}'.*{message}") as err:
        validate_params(params)
    assert "git checkout params.yaml" in str(err.value)


def test_a_stage_imports_the_code_of_its_own_checkout(tmp_path):
    """dvc.yaml's commands import `kinemic` from the folder they run in: a queued experiment (DVC runs it in a copy
    under .dvc/tmp/exps) uses its own code, never the workspace's through the editable install."""
    import shutil
    import subprocess
    import sys

    copy = tmp_path / "checkout"
    for name in ("kinemic", "stages"):
        shutil.copytree(REPO / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "params.yaml", copy / "params.yaml")
    with (copy / "kinemic" / "__init__.py").open("a") as fh:
        fh.write('\nprint("kinemic imported from", __file__)\n')
    cmd = shlex.split(_dvc_stages()["validate"]["cmd"])
    done = subprocess.run([sys.executable, *cmd[1:]], cwd=copy, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"kinemic imported from {copy / 'kinemic' / '__init__.py'}" in done.stdout
    assert (copy / "data" / "validated.json").is_file()


def test_paper_profile_only_names_existing_keys(tmp_path):
    from kinemic.profiles import apply

    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    changed = apply("paper", params)
    assert "teacher.source" in changed and "mining.encoder" in changed
    after = yaml.safe_load(params.read_text())
    assert after["teacher"]["source"] == "official" and after["generate"]["samples_per_class"] == 383
    assert after["train"]["lambda_rec"] == 1.0  # untouched keys stay
    assert re.search(r"# kinemic parameters", params.read_text()), "comments survive"


def _scalar_keys(node: dict, prefix: str = ""):
    for key, value in node.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            yield from _scalar_keys(value, dotted)
        elif isinstance(value, (bool, int, float, str)):
            yield dotted, value


def test_dvc_set_changes_one_line_of_params(tmp_path):
    """params.yaml is kept in the layout `dvc exp run -S` writes back (DVC's own hydra override path, which turns flow
    lists into block lists and drops a blank line after a list that ends a section), so setting any scalar key
    changes exactly that line."""
    from dvc.utils.hydra import apply_overrides

    original = (REPO / "params.yaml").read_text()
    copy = tmp_path / "params.yaml"
    checked = 0
    for key, value in _scalar_keys(yaml.safe_load(original)):
        if isinstance(value, str) and (not value or not value.replace("_", "").replace("/", "").isalnum()):
            continue  # values the override grammar would need quoted
        new = str(not value).lower() if isinstance(value, bool) else (value + 1 if not isinstance(value, str)
                                                                      else value + "x")
        copy.write_text(original)
        apply_overrides(copy, [f"{key}={new}"])
        before, after = original.splitlines(), copy.read_text().splitlines()
        changed = [(a, b) for a, b in zip(before, after, strict=False) if a != b]
        assert len(before) == len(after) and len(changed) == 1, (key, changed[:3])
        checked += 1
    assert checked > 60
