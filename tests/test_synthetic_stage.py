"""Stage `synthesize`: main() on a tiny config, byte-identical reruns, seeds, metrics, strict params."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "stages"))

import synthesize  # noqa: E402

TINY = {
    "seed": 5,
    "prior": {"num_motions": 12},
    "target": {"num_performers": 2, "clips_per_class": 6},
    "previews": {"num_prior": 1, "frame_step": 8},
}


def _run(tmp_path: Path, name: str, section: dict) -> tuple[Path, dict]:
    params = tmp_path / f"{name}.yaml"
    params.write_text(yaml.safe_dump({"synthetic": section}))
    out, metrics = tmp_path / name / "synthetic", tmp_path / name / "metrics.json"
    synthesize.main(["--params", str(params), "--out", str(out), "--metrics", str(metrics)])
    return out, json.loads(metrics.read_text())


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_stage_is_deterministic_and_complete(tmp_path):
    out_a, metrics = _run(tmp_path, "a", TINY)
    out_b, _ = _run(tmp_path, "b", TINY)
    hashes = _hashes(out_a)
    assert hashes == _hashes(out_b)
    for name in ("prior/Mean.npy", "prior/primitives.parquet", "prior/train.txt", "target/info.json",
                 "target/variants.parquet", "previews/prior_000000.gif", "previews/target_A102.gif"):
        assert name in hashes
    assert metrics["prior_motions"] == 12 and metrics["prior_mirrors"] == 12
    assert metrics["target_clips_A099"] == 12 and metrics["target_performers"] == 2
    assert all(isinstance(v, int | float) for v in metrics.values())
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]  # no temporary leftovers

    out_c, _ = _run(tmp_path, "c", {**TINY, "seed": 6, "previews": {"enabled": False}})
    other = _hashes(out_c)
    assert other["prior/new_joint_vecs/000000.npy"] != hashes["prior/new_joint_vecs/000000.npy"]


def test_unknown_params_fail_loudly(tmp_path):
    with pytest.raises(ValueError, match="synthetic.prior.*num_motion"):
        _run(tmp_path, "bad", {"prior": {"num_motion": 3}})
    with pytest.raises(ValueError, match="unknown keys"):
        _run(tmp_path, "bad2", {"sed": 3})


PROPOSED_PARAMS = """
synthetic:
  seed: 0
  prior:
    num_motions: 3000
    fps: 20
    min_seconds: 2.0
    max_seconds: 9.8
    max_primitives: 4
    min_captions: 3
    max_captions: 5
    subspan_prob: 0.5
    idle_prob: 0.35
    blend_seconds: 0.35
    height_range: [0.86, 1.14]
    proportion_sd: 0.04
    split: [0.8, 0.05, 0.15]
    mirror: true
  target:
    classes: [A099, A102, A104]
    num_performers: 40
    clips_per_class: 300
    setups: [18, 32]
    fps: 30
    min_seconds: 1.5
    max_seconds: 4.0
    difficulty: 0.8
    camera_yaw_deg: [-45.0, 0.0, 45.0]
    jitter_m: 0.012
    depth_jitter_factor: 2.5
    bone_wobble: 0.015
    wobble_event_prob: 0.3
    glitch_prob: 0.05
    smoothing_frames: 0.8
    height_range: [0.86, 1.14]
    proportion_sd: 0.04
  previews:
    num_prior: 3
    frame_step: 2
    enabled: true
"""


def test_params_block_round_trips_to_the_defaults():
    from kinemic.synthetic.config import SyntheticConfig

    section = yaml.safe_load(PROPOSED_PARAMS)["synthetic"]
    assert SyntheticConfig.from_params(section) == SyntheticConfig()
    repo_params = REPO / "params.yaml"
    if repo_params.is_file() and "synthetic" in (yaml.safe_load(repo_params.read_text()) or {}):
        SyntheticConfig.from_params(yaml.safe_load(repo_params.read_text())["synthetic"])  # the real file parses
