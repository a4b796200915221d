"""The travel filter of generated samples: root travel on hand-built paths, exactly the samples past their class's
limit dropped, and the `generate` stage writing the set without them."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import yaml

from kinemic.generation import GenerateConfig
from kinemic.synthetic_set import SyntheticSet
from kinemic.travel_filter import drop_travellers, root_travel, travel_filter
from tests.test_generation_distributed import GENERATE, _stage_args, _student, _target


def _walk(*points: tuple[float, float], height: float = 0.9) -> np.ndarray:
    """Joints (T, 3, 3) whose pelvis visits the horizontal (x, z) points, bobbing in height (which is not travel)."""
    joints = np.zeros((len(points), 3, 3), np.float32)
    for t, (x, z) in enumerate(points):
        joints[t, :, 0], joints[t, :, 2] = x, z
        joints[t, :, 1] = height + 0.5 * (t % 2)
        joints[t, 1:, 1] += 1.0  # other joints elsewhere: only the pelvis counts
    return joints


def test_root_travel_is_the_farthest_horizontal_distance_from_the_start():
    assert root_travel(_walk((0, 0), (3, 4))) == pytest.approx(5.0)
    assert root_travel(_walk((1, 1), (4, 5), (1, 1))) == pytest.approx(5.0)  # out and back: the farthest point
    assert root_travel(_walk((2, 2), (2, 2), (2, 2))) == 0.0  # jumping on the spot travels nowhere
    with pytest.raises(ValueError, match=r"\(T, J, 3\)"):
        root_travel(np.zeros((4, 3)))


def test_exactly_the_samples_past_their_class_limit_are_dropped():
    reference = [_walk((0, 0), (0.01, 0)), _walk((0, 0), (0, 0.005)), _walk((0, 0), (0.02, 0))]
    reference_labels = np.array([0, 0, 1])  # limits: 0.01 + 0.5 for class 0, 0.02 + 0.5 for class 1
    samples = [_walk((0, 0), (0.3, 0)), _walk((0, 0), (0.6, 0)), _walk((0, 0), (0, 0.52)),
               _walk((0, 0), (0.5, 0)), _walk((0, 0), (2.0, 0))]
    labels = np.array([0, 0, 1, 1, 1])
    decision = travel_filter(samples, labels, reference, reference_labels, 2, 0.5)
    np.testing.assert_allclose(decision.limits, [0.51, 0.52])
    assert decision.kept.tolist() == [True, False, True, True, False]  # 0.52 on class 1's limit: kept
    assert decision.dropped_per_class(labels).tolist() == [1, 1]

    synthetic = SyntheticSet([np.full((2, 263), i, np.float32) for i in range(5)], samples, labels, ["a", "b"])
    kept, _ = drop_travellers(synthetic, reference, reference_labels, 0.5)
    assert [int(f[0, 0]) for f in kept.features] == [0, 2, 3]  # features stay with their joints, in order
    assert kept.labels.tolist() == [0, 1, 1] and kept.class_names == ["a", "b"]
    assert all(np.array_equal(j, samples[i]) for j, i in zip(kept.joints, [0, 2, 3], strict=True))


def test_bad_settings_and_emptied_classes_fail_naming_the_fix():
    reference, reference_labels = [_walk((0, 0), (0.01, 0))], np.array([0])
    far = [_walk((0, 0), (3.0, 0))]
    with pytest.raises(ValueError, match="dropped every sample of classes \\[0\\].*generate.travel_margin"):
        travel_filter(far, np.array([0]), reference, reference_labels, 1, 0.5)
    with pytest.raises(ValueError, match="classes \\[1\\] have no few-shot clip"):
        travel_filter(far, np.array([0]), reference, reference_labels, 2, 5.0)
    with pytest.raises(ValueError, match="> 0 metres"):
        travel_filter(far, np.array([0]), reference, reference_labels, 1, 0.0)
    with pytest.raises(ValueError, match="generate.travel_margin must be >= 0"):
        GenerateConfig(travel_margin=-0.1)


def test_the_stage_writes_the_set_without_the_travellers(tmp_path, one_thread):
    """The tiny untrained student's samples travel all over; a margin between their travels splits them, and the
    stage writes exactly the samples within it, the others' order kept, with the count in its metrics."""
    import stages.generate

    _student().save(tmp_path / "student" / "student.pt")
    target = _target()
    target.save(tmp_path / "target")

    def run(name: str, margin: float) -> tuple[SyntheticSet, dict]:
        params = tmp_path / f"{name}.yaml"
        params.write_text(yaml.safe_dump({"generate": {**GENERATE, "travel_margin": margin},
                                          "runtime": {"threads": 1}}))
        cwd = os.getcwd()
        try:
            stages.generate.main(_stage_args(tmp_path, params, name))
        finally:
            os.chdir(cwd)
        return (SyntheticSet.load(tmp_path / name / "generated" / "synthetic.npz"),
                json.loads((tmp_path / name / "generate.json").read_text()))

    everything, metrics = run("off", 0.0)
    assert metrics["travel_dropped"] == 0
    travel = np.array([root_travel(j) for j in everything.joints])
    assert metrics["root_travel_max"] == pytest.approx(travel.max(), abs=1e-3)
    fewshot = target.split("fewshot")
    limits = np.array([max(root_travel(fewshot.sample_joints(i)) for i in np.flatnonzero(fewshot.labels == c))
                       for c in range(2)])
    beyond = travel - limits[everything.labels]
    margin = float(np.median(beyond[beyond > 0]))  # about half of those past the few-shot clips go
    kept = beyond <= margin
    assert 0 < kept.sum() < len(kept)
    filtered, metrics = run("on", margin)
    assert metrics["travel_dropped"] == int((~kept).sum()) and metrics["samples"] == int(kept.sum())
    assert [f.tobytes() for f in filtered.features] == [f.tobytes() for f, k in
                                                          zip(everything.features, kept, strict=True) if k]
