"""The NTU-like target set: ids, cameras, performers, VIBE-like frame and artifacts."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from kinemic.synthetic.config import SyntheticTargetConfig
from kinemic.synthetic.styles import CLASSES, VARIANTS
from kinemic.synthetic.target import XSUB_TRAIN_PERFORMERS, build_target, make_performers, select_performers

CFG = SyntheticTargetConfig(num_performers=2, clips_per_class=12)
ID_RE = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")


@pytest.fixture(scope="module")
def target(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("target")
    build_target(CFG, 3, out)
    return out


def test_ids_cover_performers_cameras_replications(target):
    ids = sorted(p.stem for p in (target / "joints24").glob("*.npy"))
    parsed = [tuple(int(g) for g in ID_RE.fullmatch(i).groups()) for i in ids]
    performers = {p.number for p in make_performers(CFG, 3)}
    assert {p[2] for p in parsed} == performers
    assert {p[1] for p in parsed} == {1, 2, 3} and {p[3] for p in parsed} == {1, 2}
    assert {p[4] for p in parsed} == {99, 102, 104} and all(18 <= p[0] <= 32 for p in parsed)
    assert len(ids) == 3 * 12
    assert json.loads((target / "info.json").read_text()) == {"fps": 30, "frame": "camera_y_down", "joints": "smpl24"}


def test_clips_are_y_down_30fps_with_fixed_pelvis(target):
    for path in sorted((target / "joints24").glob("*.npy")):
        joints = np.load(path)
        assert joints.dtype == np.float32 and joints.shape[1:] == (24, 3)
        assert 45 <= len(joints) <= 121  # 1.5 .. 4 s at 30 fps
        # y-down: the head has the smaller y (at the start, standing; and most of the time, even in a forward fold)
        assert joints[0, 15, 1] - joints[0, 0, 1] < -0.4 and np.median(joints[:, 15, 1] - joints[:, 0, 1]) < 0
        assert np.ptp(joints[:, 0], axis=0).max() < 0.02  # VIBE: no root translation


def test_three_views_share_one_performance(target):
    groups = defaultdict(list)
    for path in sorted((target / "joints24").glob("*.npy")):
        groups[path.stem[:4] + path.stem[8:]].append(np.load(path))
    for views in groups.values():
        assert len(views) == 3 and len({len(v) for v in views}) == 1
        heights = [np.linalg.norm(v[:, 15] - v[:, 0], axis=1) for v in views]  # view-invariant, up to noise
        assert np.abs(heights[0] - heights[1]).mean() < 0.05
        assert not np.array_equal(views[0], views[1])


def test_ground_truth_table(target):
    rows = pq.read_table(target / "variants.parquet").to_pylist()
    assert len(rows) == 36 and {"sample_id", "action", "variant", "performer", "camera"} <= set(rows[0])
    assert all(r["variant"] in VARIANTS for r in rows)


def test_performers_split_half_and_half():
    numbers = select_performers(40, 0)
    assert len(set(numbers)) == 40
    assert sum(n in XSUB_TRAIN_PERFORMERS for n in numbers) == 20


def test_every_class_and_variant_renders():
    assert len(CLASSES) >= 6
    for cls in CLASSES.values():
        for variant, _ in cls.variants:
            track, params = VARIANTS[variant](np.random.default_rng(0), 1.0, 1.0, "right", 30)
            assert np.isfinite(track.angles).all() and len(track) > 20


def test_config_errors_teach():
    with pytest.raises(ValueError, match="A099"):
        replace(CFG, classes=("A999", "A099"))
    with pytest.raises(ValueError, match="difficulty"):
        replace(CFG, difficulty=1.5)
