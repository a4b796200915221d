"""The results table from hand-built runs: grouping into rows, generator seeds, paired comparisons."""

from __future__ import annotations

import numpy as np
import pytest

from kinemic.params import load_params
from kinemic.results import (
    ALL_REAL,
    FULL,
    REAL_ONLY,
    Run,
    comparable_runs,
    dvc_runs,
    group_runs,
    load_runs,
    markdown,
    method_label,
    outputs_not_in_cache,
    read_runs,
    row_stats,
    save_runs,
    unique_runs,
)
from tests.script_modules import REPO, load_module

SEEDS = (1, 2, 3)
BASE = {1: 0.60, 2: 0.50, 3: 0.55}


def _params(method="kinemic", dist=True, dww=True, data="fewshot+synthetic", seed=42):
    return {"train": {"method": method, "use_dist": dist, "use_dww": dww, "seed": seed},
            "evaluate": {"train_data": data}}


def _summary(offset: float, fid: float = 100.0) -> dict:
    out = {f"top1.seed_{s}": v + offset for s, v in BASE.items()}
    out.update({"gen.fid": fid, "gen.recognition_accuracy": 0.5, "gen.speed": 0.3, "gen.real.speed": 0.6,
                "gen.acceleration": 5.0, "gen.real.acceleration": 10.0})
    return out


BASELINES = {**{f"real_only.seed_{s}": v for s, v in BASE.items()},
             **{f"all_real.seed_{s}": v + 0.40 for s, v in BASE.items()}}


def test_labels_follow_the_paper_rows():
    assert method_label(_params(data="fewshot")) == REAL_ONLY
    assert method_label(_params(data="all_real")) == ALL_REAL
    assert method_label(_params()) == FULL
    assert method_label(_params(dist=False, dww=False)) == "KineMIC (Base)"
    assert method_label(_params(method="lora")) == "MDM + LoRA"


def test_generator_seeds_pool_into_one_row_paired_with_the_baselines():
    runs = [Run("full-42", _params(seed=42), _summary(0.20, fid=90.0), BASELINES),
            Run("full-43", _params(seed=43), _summary(0.10, fid=110.0), BASELINES),
            Run("full-43-again", _params(seed=43), _summary(0.30), BASELINES),  # same generator seed: first wins
            Run("lora", _params(method="lora"), _summary(0.10), BASELINES)]
    rows = group_runs(runs)
    assert set(rows) == {FULL, "MDM + LoRA"} and rows[FULL].names == ("full-42", "full-43")
    assert rows[FULL].generative["gen.fid"] == pytest.approx(100.0)
    stats = {s.row.label: s for s in row_stats(rows, runs)}
    full = stats[FULL]
    assert full.mean == pytest.approx(sum(BASE.values()) / 3 + 0.15)
    assert full.vs_real_only.estimate == pytest.approx(0.15)  # from the baseline metrics: no real-only experiment ran
    assert full.gap.estimate == pytest.approx(0.15 / 0.40)
    assert full.generator_std > 0 and full.vs_full is None
    lora = stats["MDM + LoRA"]
    assert lora.vs_full.estimate == pytest.approx(-0.05) and lora.vs_real_only.low == pytest.approx(0.10)
    assert stats[REAL_ONLY].row.names == ("baselines",) and stats[ALL_REAL].mean == pytest.approx(0.95)
    table = markdown(list(stats.values()))
    assert table.count("\n") == 5 and "| KineMIC (full) | 2 x 3 |" in table and "+10.0 [+10.0, +10.0]" in table
    assert table.index(REAL_ONLY) < table.index(FULL) < table.index(ALL_REAL)


def test_study_runs_stay_out_of_the_method_rows():
    reference = {**_params(), "mining": {"k": 250}, "generate": {"seed": 10}}

    def run(name, k=250, **kw):
        params = _params(**kw)
        params["mining"] = {"k": k}
        return Run(name, params, _summary(0.0), BASELINES)

    older = Run("older-commit", _params(), _summary(0.0), BASELINES)  # lacks mining.k: not a difference
    runs = [run("full"), run("lora", method="lora"), run("g43", seed=43), run("k25", k=25), older]
    kept, left_out = comparable_runs(runs, reference)
    assert [r.name for r in kept] == ["full", "lora", "g43", "older-commit"]
    assert left_out == ["k25"]
    scaled = {**reference, "teacher": {"nproc": 4}}  # process counts give the same outputs by design
    assert comparable_runs([run("full")], scaled)[1] == []


def test_own_real_only_experiment_takes_precedence():
    runs = [Run("real", _params(data="fewshot"), {f"top1.seed_{s}": v - 0.05 for s, v in BASE.items()}),
            Run("full", _params(), _summary(0.10), BASELINES)]
    stats = {s.row.label: s for s in row_stats(group_runs(runs), runs)}
    assert stats[FULL].vs_real_only.estimate == pytest.approx(0.15)
    assert stats[REAL_ONLY].vs_real_only is None and stats[REAL_ONLY].vs_full.estimate == pytest.approx(-0.15)


def test_the_results_queue_covers_every_method_and_generator_seed():
    module = load_module("scripts/queue_results.py")
    commands = module.queue_commands([42, 43])
    names = [c[c.index("-n") + 1] for c in commands]
    assert "full-g42" not in names and "full-g43" in names and len(commands) == 2 * 7 - 1
    lora = commands[names.index("lora-g43")]
    assert lora[:4] == ["dvc", "exp", "run", "--queue"] and "train.method=lora" in lora and "train.seed=43" in lora
    base = commands[names.index("base-g42")]
    assert "train.use_dist=false" in base and "train.use_dww=false" in base
    assert "generate.seed=43" in commands[names.index("zeroshot-g43")]
    # every -S value names a key of params.yaml
    import yaml

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for command in commands:
        for key in (command[i + 1].split("=")[0] for i, a in enumerate(command) if a == "-S"):
            section, name = key.split(".")
            assert name in params[section], key


def _draw_run(name, draw, offset, **kw):
    """A run on few-shot draw `draw`, whose real-only baseline sits `draw` x 10 points above BASE."""
    params = _params(**kw)
    params["prepare_target"] = {"seed": draw}
    shift = 0.10 * draw
    baselines = {**{f"real_only.seed_{s}": v + shift for s, v in BASE.items()},
                 **{f"all_real.seed_{s}": v + 0.40 for s, v in BASE.items()}}
    summary = _summary(shift + offset)
    return Run(name, params, summary, baselines)


def test_few_shot_draws_pair_with_their_own_real_only_baseline():
    runs = [_draw_run(f"full-d{d}", d, 0.05) for d in (0, 1, 2)]
    runs += [_draw_run(f"zs-d{d}", d, 0.02, method="zeroshot") for d in (0, 1)]  # one draw short
    kept, left_out = comparable_runs(runs, {**_params(), "prepare_target": {"seed": 0}})
    assert left_out == [] and len(kept) == 5  # the draw is not a study parameter
    rows = group_runs(kept)
    assert rows[FULL].shape == (3, 1, 3) and rows["MDM zero-shot"].shape == (2, 1, 3)
    stats = {s.row.label: s for s in row_stats(rows, kept)}
    full, zeroshot = stats[FULL], stats["MDM zero-shot"]
    # paired by draw: exactly +5 points although the draws' levels differ by 20
    assert full.vs_real_only.estimate == pytest.approx(0.05) and full.vs_real_only.low == pytest.approx(0.05)
    assert stats[REAL_ONLY].row.shape == (3, 1, 3) and stats[REAL_ONLY].draw_std == pytest.approx(0.10)
    # zero-shot ran on draws 0 and 1 only: compared on those, with the full method's same draws
    assert zeroshot.vs_real_only.estimate == pytest.approx(0.02) and zeroshot.vs_full.estimate == pytest.approx(-0.03)
    table = markdown(list(stats.values()))
    assert "runs (draws x generators x seeds)" in table and "| KineMIC (full) | 3 x 1 x 3 |" in table
    assert "generator / classifier / draw" in table


def test_a_draw_with_more_generators_than_another_keeps_its_generator_spread():
    """Full ran two generators on draw 0 and one on draw 1 (a study adds generators where it can): the generator
    spread comes from draw 0 alone, and the runs column says 1-2 rather than the first draw's count."""
    runs = [_draw_run("full-d0-g42", 0, 0.05), _draw_run("full-d0-g43", 0, 0.01, seed=43),
            _draw_run("full-d1-g42", 1, 0.04)]
    rows = group_runs(runs)
    assert rows[FULL].generator_counts == (2, 1)
    stats = {s.row.label: s for s in row_stats(rows, runs)}
    full = stats[FULL]
    assert full.generator_std == pytest.approx(np.std([0.05, 0.01], ddof=1))  # from draw 0, the only one with two
    assert np.isfinite(full.classifier_std) and full.draw_std > 0
    base = np.mean(list(BASE.values()))
    draw_weighted = base + np.mean([(0.05 + 0.01) / 2, 0.14])  # each draw weighs alike, not each run
    assert full.mean_ci.estimate == pytest.approx(draw_weighted)
    assert full.mean == pytest.approx(draw_weighted)  # the mean column is the interval's estimate
    assert full.mean != pytest.approx(base + np.mean([0.05, 0.01, 0.14]))  # (the run-pooled mean differs here)
    assert "| KineMIC (full) | 2 x 1-2 x 3 |" in markdown(list(stats.values()))


def test_the_benchmark_queue_runs_every_method_on_every_draw():
    module = load_module("scripts/queue_results.py")
    profile = ["-S", "prepare_target.classes=[10,23]"]
    commands = module.queue_commands([42], ["full", "zeroshot"], profile, [0, 1, 2], "benchmark-")
    names = [c[c.index("-n") + 1] for c in commands]
    assert names == [f"benchmark-{m}-d{d}-g42" for d in (0, 1, 2) for m in ("full", "zeroshot")]
    for command, draw in zip(commands, (0, 0, 1, 1, 2, 2), strict=True):
        assert command[6:8] == profile and f"prepare_target.seed={draw}" in command


def test_a_study_queue_adds_its_override_to_every_run_and_refuses_the_scripts_own_keys():
    module = load_module("scripts/queue_results.py")
    commands = module.queue_commands([42, 43], ["full"], None, [0], "frozen3-", ["generate.frozen_retries=3"])
    names = [c[c.index("-n") + 1] for c in commands]
    assert names == ["frozen3-full-d0-g42", "frozen3-full-d0-g43"]  # the default run is queued too: it differs
    assert all("generate.frozen_retries=3" in c and "prepare_target.seed=0" in c for c in commands)
    params = load_params(REPO / "params.yaml")
    module.check_extra_sets(["generate.frozen_retries=3", "train.window_speed_ratio=3.0"], params)
    for bad, says in [("train.seed=7", "sets it per run"), ("train.use_dww=false", "sets it per run"),
                      ("generate.frozen_retries", "KEY=VALUE"), ("generate.no_such=1", "no such param")]:
        with pytest.raises(SystemExit, match=says):
            module.check_extra_sets([bad], params)


def test_outputs_missing_from_the_cache_are_named_and_others_are_not():
    """`dvc status --json` of a checkout whose lock outputs were never made here, beside changes that are fine."""
    status = {
        "synthesize": [{"changed outs": {"data/raw/synthetic": "not in cache"}}],
        "train": [{"changed deps": {"data/mining": "modified"}},
                  {"changed outs": {"models/student": "not in cache", "plots/train": "deleted"}}],
        "report": [{"changed deps": {"data/eval": "modified"}}],
        "data.dvc": [{"changed outs": {"data": "modified"}}],
        "always": ["always changed"],
    }
    assert outputs_not_in_cache(status) == ["synthesize: data/raw/synthetic", "train: models/student"]
    assert outputs_not_in_cache({"train": [{"changed outs": {"models/student": "deleted"}}]}) == []
    assert outputs_not_in_cache({}) == []


def test_saved_runs_read_back_equal_and_pool_without_doubles(tmp_path):
    """A table's runs survive their experiments: saved, read back and pooled with the live runs, each run once."""
    runs = [Run("full-42", _params(seed=42), _summary(0.20), BASELINES, {"purity": 0.8}, "a" * 40),
            Run("lora", _params(method="lora"), _summary(0.10), BASELINES)]
    save_runs(runs, tmp_path / "study" / "runs.jsonl")
    saved = load_runs(tmp_path / "study" / "runs.jsonl")
    assert saved == runs
    later = Run("full-43", _params(seed=43), _summary(0.10), BASELINES)
    pooled = unique_runs([later, runs[0], *saved])
    assert [run.name for run in pooled] == ["full-43", "full-42", "lora"]
    assert group_runs(pooled)[FULL].names == ("full-43", "full-42")


def test_a_line_that_is_not_a_saved_run_names_file_and_line(tmp_path):
    path = tmp_path / "runs.jsonl"
    save_runs([Run("full", _params(), _summary(0.1))], path)
    path.write_text(path.read_text() + "\n{\"name\": \"x\", \"params\": {}}\n")
    with pytest.raises(ValueError, match=r"runs.jsonl:3 is not a saved run.*summary"):
        load_runs(path)


def test_saving_to_an_existing_file_extends_it_and_never_cuts_it(tmp_path):
    """`--runs a.jsonl --save-runs a.jsonl` on a narrower table must not erase the runs it left out."""
    path = tmp_path / "runs.jsonl"
    first = [Run("full-42", _params(seed=42), _summary(0.20), BASELINES, rev="a" * 40),
             Run("lora", _params(method="lora"), _summary(0.10), BASELINES, rev="b" * 40)]
    assert save_runs(first, path) == (2, 2)
    later = Run("full-43", _params(seed=43), _summary(0.15), BASELINES, rev="c" * 40)
    assert save_runs([first[0], later], path) == (1, 3)
    assert [run.name for run in load_runs(path)] == ["full-42", "lora", "full-43"]


def test_an_uncommitted_workspace_run_is_saved_without_a_rev(tmp_path):
    """Its outputs on disk will be another run's later: a saved workspace run must never be read from there."""
    path = tmp_path / "runs.jsonl"
    save_runs([Run("workspace", _params(), _summary(0.2), BASELINES, rev="workspace")], path)
    assert load_runs(path)[0].rev == ""


@pytest.mark.parametrize("line, why", [("[1, 2]", "a JSON list"), ("7", "a JSON int"),
                                       ('{"name": "x", "params": null, "summary": {}}', r"\['params'\].*wrong type")])
def test_a_saved_run_of_the_wrong_shape_names_file_line_and_why(tmp_path, line, why):
    path = tmp_path / "runs.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(ValueError, match=rf"runs.jsonl:1 is not a saved run.*{why}"):
        load_runs(path)


def test_a_failing_dvc_exp_show_says_what_dvc_said(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not a DVC repository
    with pytest.raises(RuntimeError, match=r"dvc exp show --json --rev nosuchrev` failed: .*\S"):
        read_runs(["--rev", "nosuchrev"])


def test_a_committed_run_and_its_workspace_are_one_run():
    entry = {"params": {"params.yaml": {"data": _params()}},
             "metrics": {"metrics/summary.json": {"data": _summary(0.1)}}}
    shown = [{"rev": "workspace", "data": entry}, {"rev": "b" * 40, "data": entry, "experiments": []}]
    assert [run.name for run in dvc_runs(shown)] == ["bbbbbbb"]
