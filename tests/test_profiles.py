"""Parameter profiles: `args` gives an experiment exactly what `apply` writes, and the wider benchmark is valid."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kinemic.params import load_params, parse_params
from kinemic.profiles import apply, dvc_set_args, merge, overrides, profiled_params
from kinemic.synthetic.config import SyntheticConfig

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["paper", "benchmark"])
def test_dvc_set_args_give_what_apply_writes(tmp_path, name):
    """Through DVC's own override path (what `dvc exp run -S` does to params.yaml)."""
    from dvc.utils.hydra import apply_overrides

    applied, overridden = tmp_path / "applied.yaml", tmp_path / "overridden.yaml"
    for path in (applied, overridden):
        path.write_text((REPO / "params.yaml").read_text())
    apply(name, applied)
    options = dvc_set_args(name, REPO / "params.yaml")
    assert options[::2] == ["-S"] * (len(options) // 2)
    apply_overrides(overridden, options[1::2])
    assert load_params(overridden) == load_params(applied)
    assert profiled_params(name, REPO / "params.yaml") == yaml.safe_load(applied.read_text())


def test_the_world_parts_merge_key_by_key():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    target = dict(params["synthetic"]["target"])
    changed = merge(params, overrides("benchmark"))
    assert changed == ["synthetic.target.classes", "prepare_target.classes"]
    assert {k: v for k, v in params["synthetic"]["target"].items() if k != "classes"} == \
        {k: v for k, v in target.items() if k != "classes"}  # difficulty and the rest stay frozen


def test_the_benchmark_renders_and_prepares_the_same_classes():
    params = profiled_params("benchmark", REPO / "params.yaml")
    world = SyntheticConfig.from_params(params["synthetic"])  # validates: every tag is one the world renders
    tags = params["synthetic"]["target"]["classes"]
    assert len(tags) >= 6 and [int(t[1:]) for t in tags] == params["prepare_target"]["classes"]
    assert tuple(world.target.classes) == tuple(tags)


def test_args_refuse_what_a_shell_would_split(tmp_path):
    (tmp_path / "spaces.yaml").write_text("mining:\n  prompt_template: someone does {label}\n")
    with pytest.raises(ValueError, match="spaces"):
        dvc_set_args("spaces", REPO / "params.yaml", root=tmp_path)
    (tmp_path / "drops.yaml").write_text("teacher:\n  text: {encoder: minilm}\n")
    with pytest.raises(ValueError, match="drops"):
        dvc_set_args("drops", REPO / "params.yaml", root=tmp_path)


def test_params_read_floats_as_dvc_writes_them(tmp_path):
    """`dvc exp run -S train.lr=2.0e-05` writes `lr: 2e-05`; YAML 1.1 (PyYAML) would read that as text and every
    stage would refuse it. Quoted numbers stay text, so the stages still name them."""
    from dvc.utils.hydra import apply_overrides

    path = tmp_path / "params.yaml"
    path.write_text("train:\n  lr: 0.0001\n  steps: 5\n")
    apply_overrides(path, ["train.lr=2.0e-05"])
    assert "2e-05" in path.read_text() and load_params(path)["train"]["lr"] == 2e-05
    assert parse_params("a: 1e3\nb: '1e-4'\nc: -1.5E+2\nd: 7\ne: 1e-4x") == \
        {"a": 1000.0, "b": "1e-4", "c": -150.0, "d": 7, "e": "1e-4x"}
