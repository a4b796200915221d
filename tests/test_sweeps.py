"""One-param sweeps from hand-built runs: grouping by value, the paired reference, runs that differ elsewhere."""

from __future__ import annotations

import pytest

from kinemic.results import Run, dvc_runs
from kinemic.sweeps import markdown, param_value, sweep

BASE = {1: 0.60, 2: 0.50, 3: 0.55}
BASELINES = {f"real_only.seed_{s}": v - 0.10 for s, v in BASE.items()}


def _params(k=250, seed=42, sampler="ancestral", steps=50):
    return {"mining": {"k": k}, "train": {"seed": seed, "method": "kinemic"},
            "generate": {"sampler": sampler, "sampling_steps": steps, "seed": 10}}


def _summary(offset: float, noise: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> dict:
    return {f"top1.seed_{s}": v + offset + n for (s, v), n in zip(BASE.items(), noise, strict=True)}


def test_values_become_rows_paired_with_the_reference():
    runs = [Run("k250", _params(), _summary(0.0), BASELINES),
            Run("k50", _params(k=50), _summary(-0.05), BASELINES, {"similarity_mean": 0.8}),
            Run("k50-g43", _params(k=50, seed=43), _summary(-0.03), BASELINES, {"similarity_mean": 0.6}),
            Run("k1000", _params(k=1000), _summary(0.02, (0.03, -0.04, 0.02)), BASELINES)]
    result = sweep(runs, "mining.k", 250, extra=["similarity_mean"])
    assert [p.value for p in result.points] == [50, 250, 1000]
    k50, k250, k1000 = result.points
    assert k50.names == ("k50", "k50-g43") and len(k50.table) == 2
    assert k50.vs_reference.estimate == pytest.approx(-0.04) and not k50.vs_reference.contains_zero
    assert k250.vs_reference is None and k250.vs_real_only.estimate == pytest.approx(0.10)
    assert k1000.vs_reference.contains_zero  # +2 points with seed noise of 3-4 points: a tie
    assert k50.extra == {"similarity_mean": pytest.approx(0.7)} and k250.extra == {}
    text = markdown(result)
    assert "| 1000 |" in text and "tie" in text and "similarity_mean" in text


def test_runs_that_differ_in_another_param_are_left_out_by_name():
    runs = [Run("ref", _params(), _summary(0.0)), Run("k50", _params(k=50), _summary(0.01)),
            Run("k50-ddim", _params(k=50, sampler="ddim"), _summary(0.2))]
    result = sweep(runs, "mining.k", 250)
    assert result.left_out == ("k50-ddim (generate.sampler)",)
    assert [p.names for p in result.points] == [("k50",), ("ref",)]
    assert result.members() == runs[:2]  # what --save-runs keeps: the pooled runs, not the left-out one
    sampler = sweep(runs[:1] + runs[2:], "generate.sampler", "ancestral")
    assert sampler.left_out == ("k50-ddim (mining.k)",)  # k differs too: not a sampler comparison


def _drawn(params: dict, draw: int) -> dict:
    return {**params, "prepare_target": {"seed": draw}}


def test_runs_of_another_few_shot_draw_are_not_pooled_as_generators():
    """A sweep pairs on one draw and its real-only baseline: a second draw's runs are left out, saying why."""
    other = {f"real_only.seed_{s}": v - 0.30 for s, v in BASE.items()}
    runs = [Run("ref-d0", _params(), _summary(0.0), BASELINES),
            Run("ref-d1", _drawn(_params(), 1), _summary(-0.2), other),
            Run("k50-d0", _params(k=50), _summary(-0.10), BASELINES),
            Run("k50-d1", _drawn(_params(k=50, seed=43), 1), _summary(-0.3), other)]
    result = sweep(runs, "mining.k", 250)
    k50, k250 = result.points
    assert k50.names == ("k50-d0",) and k250.names == ("ref-d0",)
    assert k50.vs_reference.estimate == pytest.approx(-0.10)
    assert k250.vs_real_only.estimate == pytest.approx(0.10)  # draw 0's baseline
    assert result.left_out == ("ref-d1 (few-shot draw 1, the reference run's is 0)",
                               "k50-d1 (few-shot draw 1, the reference run's is 0)")


def test_a_second_run_of_a_value_and_generator_is_named_not_dropped_silently():
    runs = [Run("ref", _params(), _summary(0.0)), Run("k50", _params(k=50), _summary(-0.1)),
            Run("k50-again", _params(k=50), _summary(0.1))]
    result = sweep(runs, "mining.k", 250)
    assert result.points[0].names == ("k50",)
    assert result.left_out == ("k50-again (the same value and train.seed as k50)",)
    assert "Left out: k50-again" in markdown(result)


def test_a_left_out_run_with_a_pooled_runs_name_is_not_saved():
    """Two commits' experiments may share a name: only the pooled one goes to --save-runs."""
    runs = [Run("ref", _params(), _summary(0.0)), Run("k50", _params(k=50), _summary(-0.1)),
            Run("k50", _params(k=50, sampler="ddim"), _summary(0.3), rev="older")]
    result = sweep(runs, "mining.k", 250)
    assert result.left_out == ("k50 (generate.sampler)",)
    assert result.members() == runs[:2] and all(run is not runs[2] for run in result.members())


def test_the_reference_run_is_the_one_that_matches_params_yaml():
    """Listed first, an older commit's reference run (other steps) would make every new run 'differ'."""
    older = {**_params(), "train": {"seed": 42, "method": "kinemic", "steps": 100}}
    current = {**_params(), "train": {"seed": 42, "method": "kinemic", "steps": 250}}
    runs = [Run("old-ref", older, _summary(0.3)), Run("ref", current, _summary(0.0)),
            Run("k50", {**current, "mining": {"k": 50}}, _summary(-0.1))]
    result = sweep(runs, "mining.k", 250, base=current)
    assert [p.names for p in result.points] == [("k50",), ("ref",)]
    assert result.left_out == ("old-ref (train.steps)",)
    assert sweep(runs, "mining.k", 250).left_out == ("ref (train.steps)", "k50 (train.steps)")  # without base


def test_params_swept_together_are_one_value():
    """A sampler with its step count: the pair is the value, and neither param counts as another difference."""
    runs = [Run("ref", _params(), _summary(0.0), BASELINES),
            Run("fast", _params(sampler="dpmpp_2m", steps=7), _summary(0.05), BASELINES),
            Run("fast-g43", _params(sampler="dpmpp_2m", steps=7, seed=43), _summary(0.07), BASELINES),
            Run("fast-k50", _params(k=50, sampler="dpmpp_2m", steps=7), _summary(0.2), BASELINES)]
    result = sweep(runs, "generate.sampler,generate.sampling_steps", ["ancestral", 50])
    assert [p.value for p in result.points] == [("ancestral", 50), ("dpmpp_2m", 7)]
    assert result.left_out == ("fast-k50 (mining.k)",)
    fast = result.points[1]
    assert fast.names == ("fast", "fast-g43") and fast.vs_reference.estimate == pytest.approx(0.06)
    assert param_value(_params(), "generate.sampler,train.seed") == ("ancestral", 42)
    assert param_value({"generate": {}}, "generate.sampler,generate.spacing", missing=("a", "b")) == ("a", "b")
    with pytest.raises(ValueError, match="need as many defaults"):
        param_value({}, "generate.sampler,generate.spacing", missing=("a",))


def test_a_run_older_than_the_param_counts_with_the_default_given():
    """A run of a commit before `train.extra_templates` existed ran with its default: with `missing` it joins that
    value's row (here the reference, a second generator); without it the sweep says which param is missing."""
    def params(seed, templates=None):
        out = _params(seed=seed)
        if templates is not None:
            out["train"]["extra_templates"] = templates
        return out
    runs = [Run("ref-g42", params(42, []), _summary(0.0), BASELINES), Run("old-g43", params(43), _summary(0.01)),
            Run("prompts-g42", params(42, ["a {label}"]), _summary(0.02))]
    result = sweep(runs, "train.extra_templates", [], missing=[])
    reference = next(p for p in result.points if p.vs_reference is None)
    assert reference.names == ("ref-g42", "old-g43") and result.left_out == ()
    with pytest.raises(KeyError, match="train.extra_templates"):
        sweep(runs, "train.extra_templates", [])


def test_a_sweep_needs_its_reference_run():
    with pytest.raises(ValueError, match="run the reference value"):
        sweep([Run("k50", _params(k=50), _summary(0.0))], "mining.k", 250)
    with pytest.raises(KeyError, match="mining.q"):
        param_value(_params(), "mining.q")


def test_dvc_runs_reads_summary_baselines_and_mining_metrics():
    def entry(rev, params, summary):
        metrics = {"metrics/summary.json": {"data": summary}, "metrics/mining.json": {"data": {"k": 9}}}
        return {"rev": rev, "data": {"params": {"params.yaml": {"data": params}}, "metrics": metrics}}

    shown = [{**entry("abc1234def", _params(), _summary(0.0)),
              "experiments": [{"executor": {"state": "success"}, "revs": [{**entry("e1", _params(k=9), _summary(0.1)),
                                                                           "name": "k9"}]},
                              {"executor": {"state": "queued"}, "revs": [entry("e2", _params(k=5), _summary(0.0))]}]}]
    runs = dvc_runs(shown)
    assert [r.name for r in runs] == ["abc1234", "k9"] and runs[1].mining == {"k": 9}


def test_sweep_table_profile_holds_runs_to_the_profiled_params():
    """`sweep_table.py --profile benchmark`: the benchmark's runs are the sweep, the default's run is left out (and the
    other way round without the profile)."""
    import copy

    from tests.script_modules import REPO, load_module

    module = load_module("scripts/sweep_table.py")
    params = REPO / "params.yaml"
    default, benchmark = module.sweep_base(None, params), module.sweep_base("benchmark", params)
    assert default["prepare_target"]["classes"] != benchmark["prepare_target"]["classes"]

    def run(name, params, ratio, offset):
        params = copy.deepcopy(params)
        params["train"]["window_speed_ratio"] = ratio
        return Run(name, params, _summary(offset), BASELINES)

    runs = [run("default", default, 0.0, 0.1), run("bench-off", benchmark, 0.0, 0.0),
            run("bench-3x", benchmark, 3.0, 0.02)]
    profiled = sweep(runs, "train.window_speed_ratio", 0.0, base=benchmark)
    assert [p.names for p in profiled.points] == [("bench-off",), ("bench-3x",)]
    assert profiled.left_out == ("default (prepare_target.classes, synthetic.target.classes)",)
    assert profiled.points[1].vs_reference.estimate == pytest.approx(0.02)
    plain = sweep(runs, "train.window_speed_ratio", 0.0, base=default)
    assert [p.names for p in plain.points] == [("default",)]
