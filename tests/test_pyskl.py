"""PYSKL annotation pickles and the SMPL-22 graph."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest

from kinemic.formats.pyskl import SkeletonSample, read_pyskl, smpl22_graph, write_pyskl
from kinemic.skeleton import PARENTS


def samples(rng, n: int = 4) -> list[SkeletonSample]:
    return [
        SkeletonSample(f"S001C001P00{i + 1}R001A099", label=int(i % 2), keypoint=rng.standard_normal((5 + i, 22, 3)))
        for i in range(n)
    ]


def test_round_trip(tmp_path, rng):
    items = samples(rng)
    split = {"train": [s.frame_dir for s in items[:3]], "test": [items[3].frame_dir]}
    path = tmp_path / "gen" / "ntu_smpl22.pkl"
    write_pyskl(path, items, split)
    with open(path, "rb") as f:
        raw = pickle.load(f)  # the plain structure pyskl's PoseDataset reads
    assert raw["split"] == split
    first = raw["annotations"][0]
    assert set(first) == {"frame_dir", "label", "total_frames", "keypoint"}
    assert first["keypoint"].dtype == np.float32 and first["keypoint"].shape == (1, 5, 22, 3)
    assert type(first["label"]) is int and first["total_frames"] == 5
    back = read_pyskl(path)
    assert back.split == split
    for a, b in zip(items, back.samples, strict=True):
        assert (a.frame_dir, a.label) == (b.frame_dir, b.label)
        np.testing.assert_allclose(b.keypoint, a.keypoint.astype(np.float32))
    assert [s.frame_dir for s in back.by_split("test")] == split["test"]


def test_write_errors(tmp_path, rng):
    items = samples(rng)
    with pytest.raises(ValueError, match="only loads files ending in .pkl"):
        write_pyskl(tmp_path / "a.pickle", items, {})
    with pytest.raises(ValueError, match="must be unique; repeated: \\['S001C001P001R001A099'\\]"):
        write_pyskl(tmp_path / "a.pkl", items + items[:1], {})
    with pytest.raises(ValueError, match="split 'train' lists frame_dir\\(s\\) with no annotation: \\['nope'\\]"):
        write_pyskl(tmp_path / "a.pkl", items, {"train": ["nope"]})
    with pytest.raises(ValueError, match="label 1.5 must be a non-negative int"):
        write_pyskl(tmp_path / "a.pkl", [SkeletonSample("x", 1.5, np.zeros((3, 22, 3)))], {})
    with pytest.raises(ValueError, match=r"x: keypoint must be \(T, 22, 3\)"):
        write_pyskl(tmp_path / "a.pkl", [SkeletonSample("x", 1, np.zeros((3, 25, 3)))], {})
    assert not (tmp_path / "a.pkl").exists()


def test_reader_refuses_foreign_globals(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"split": {}, "annotations": [print]}))
    with pytest.raises(ValueError, match="refusing to load global builtins.print"):
        read_pyskl(path)


def test_smpl22_graph():
    graph = smpl22_graph()
    assert graph.num_node == 22 and graph.center == 9 and len(graph.inward) == 21  # the classifier's centre
    assert all(PARENTS[child] == parent for child, parent in graph.inward)
    assert (15, 12) in graph.inward and (21, 19) in graph.inward  # head -> neck, right wrist -> right elbow
    layout = smpl22_graph(center=0).as_dict()
    assert layout["center"] == 0 and layout["inward"][0] == [1, 0]
    from kinemic.models.stgcn import SMPL22_LAYOUT

    assert smpl22_graph().as_dict() == SMPL22_LAYOUT  # one graph for our ST-GCN and for PYSKL users
    with pytest.raises(ValueError, match="center=22"):
        smpl22_graph(center=22)


def test_pyskl_format_does_not_import_the_classifier_model():
    """The graph lives in kinemic.skeleton: writing PYSKL files needs neither the ST-GCN module nor torch."""
    code = "import kinemic.formats.pyskl, sys; print(sorted(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "'kinemic.models.stgcn'" not in loaded and "'torch'" not in loaded
