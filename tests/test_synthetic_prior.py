"""The prior corpus: HumanML3D layout, lengths, captions, spans, mirrors, splits, ground truth, determinism."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from kinemic.formats.humanml3d import (
    MAX_MOTION_LEN,
    MIN_MOTION_LEN,
    LoadReport,
    load_motions,
    read_captions,
    read_split,
)
from kinemic.motion import compute_stats, joints_to_features
from kinemic.skeleton import bone_lengths, mirror_joints
from kinemic.synthetic.config import SyntheticPriorConfig
from kinemic.synthetic.prior import build_prior, make_motion

CFG = SyntheticPriorConfig(num_motions=20)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("prior")
    return out, build_prior(CFG, 7, out)


def test_motions_are_fk_bodies_with_constant_bones():
    for i in range(5):
        joints = make_motion(CFG, 7, i).joints
        lengths = bone_lengths(joints)
        assert np.abs(lengths - lengths[0]).max() < 1e-5


def test_lengths_and_layout(corpus):
    out, summary = corpus
    ids = read_split(out, "all")
    assert len(ids) == 40 and summary.motions == 20 and summary.mirrors == 20
    for motion_id in ids:
        feats = np.load(out / "new_joint_vecs" / f"{motion_id}.npy")
        joints = np.load(out / "new_joints" / f"{motion_id}.npy")
        assert feats.shape[1] == 263 and feats.dtype == np.float32
        assert MIN_MOTION_LEN <= len(feats) <= 196 and joints.shape == (len(feats), 22, 3)
    assert (out / "Mean.npy").is_file() and (out / "Std.npy").is_file() and (out / "train_val.txt").is_file()
    assert 2.0 <= summary.min_seconds and summary.max_seconds <= 9.8


def test_captions_parse_and_spans_follow_the_loader_rules(corpus):
    out, summary = corpus
    spans = 0
    for motion_id in read_split(out, "all"):
        captions = read_captions(out / "texts" / f"{motion_id}.txt")
        assert 3 <= len(captions) <= 5 and any(c.is_whole for c in captions)
        rows = len(np.load(out / "new_joint_vecs" / f"{motion_id}.npy"))
        for c in captions:
            assert c.tokens and all("/" in t for t in c.tokens)
            if not c.is_whole:
                spans += 1
                lo, hi = int(c.start * 20), int(c.end * 20)
                assert 0 <= lo < hi <= rows and MIN_MOTION_LEN <= hi - lo < MAX_MOTION_LEN
    assert spans == summary.subspan_captions > 0
    report = LoadReport()
    load_motions(out, read_split(out, "all"), report=report)
    assert report.dropped_subclip_spans == 0 and not report.dropped_length and report.subclips == spans


def test_mirrors_swap_text_and_joints(corpus):
    out, _ = corpus
    for i in range(20):
        original = read_captions(out / "texts" / f"{i:06d}.txt")
        mirrored = read_captions(out / "texts" / f"M{i:06d}.txt")
        for a, b in zip(original, mirrored, strict=True):
            assert (a.start, a.end) == (b.start, b.end)
            if "left" in a.text.split() and "right" not in a.text.split():
                assert "right" in b.text and "left" not in b.text.split()
    motion = make_motion(CFG, 7, 3)
    expected = joints_to_features(mirror_joints(motion.joints))
    np.testing.assert_allclose(np.load(out / "new_joint_vecs" / "M000003.npy"), expected, atol=1e-5)


def test_mean_std_equal_compute_stats_over_all_files(corpus):
    out, _ = corpus
    feats = [np.load(out / "new_joint_vecs" / f"{i}.npy") for i in read_split(out, "all")]
    expected = compute_stats(feats)
    np.testing.assert_allclose(np.load(out / "Mean.npy"), expected.mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.load(out / "Std.npy"), expected.std, rtol=1e-5, atol=1e-6)


def test_splits_are_disjoint_and_keep_mirrors_together(corpus):
    out, _ = corpus
    splits = {name: set(read_split(out, name)) for name in ("train", "val", "test")}
    assert not (splits["train"] & splits["test"]) and not (splits["train"] & splits["val"])
    for ids in splits.values():
        assert all(("M" + i in ids) for i in ids if not i.startswith("M"))
    assert len(splits["train"]) == 32


def test_ground_truth_table(corpus):
    out, _ = corpus
    table = pq.read_table(out / "primitives.parquet").to_pylist()
    assert {"motion_id", "segment", "primitive", "side", "start_frame", "end_frame"} <= set(table[0])
    for row in table:
        assert 0 <= row["start_frame"] < row["end_frame"] <= 197
    kicks = [(r["motion_id"], r["segment"], r["side"]) for r in table if r["primitive"] == "side_kick"]
    sides = {(m, s): side for m, s, side in kicks}
    for (m, s), side in sides.items():
        if not m.startswith("M"):
            assert sides[("M" + m, s)] == {"left": "right", "right": "left"}[side]


def test_motions_are_seeded_by_index():
    a, b = make_motion(CFG, 7, 5), make_motion(replace(CFG, num_motions=1000), 7, 5)
    np.testing.assert_array_equal(a.joints, b.joints)
    assert a.captions == b.captions
    assert not np.array_equal(a.joints, make_motion(CFG, 8, 5).joints)
