"""Generation containers, the classifier's training-set rules, report statistics, atomic outputs."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from kinemic.classifier import ClassifierConfig
from kinemic.evaluation import EvaluateConfig, FeatureExtractorConfig, training_set
from kinemic.generation import GenerateConfig, SyntheticSet
from kinemic.io import atomic_output_dir, read_json, write_json
from kinemic.params import config_from_params
from kinemic.report import plot_curves, summarize_accuracy, write_accuracy_plot, write_confusion
from kinemic.target_set import PreparedTarget


def _target() -> PreparedTarget:
    rows, feats = [], []
    for c, name in enumerate(["a", "b"]):
        for k, split in enumerate(["fewshot", "fewshot", "test", "unused", "unused"]):
            rows.append(dict(sample_id=f"S001C001P{k:03d}R001A{c:03d}", setup=1, camera=1, performer=k, replication=1,
                             action=c, class_index=c, class_name=name, caption=name, split=split))
            feats.append(np.full((5 + k, 263), c, np.float32))
    joints = [np.full((len(f), 22, 3), i, np.float32) for i, f in enumerate(feats)]
    return PreparedTarget.from_clips(pd.DataFrame(rows), feats, joints)


def _synthetic(per_class: int = 3) -> SyntheticSet:
    labels = np.repeat([0, 1], per_class)
    feats = [np.zeros((4 + i, 263), np.float32) for i in range(len(labels))]
    return SyntheticSet(feats, [np.full((len(f), 22, 3), 100 + i, np.float32) for i, f in enumerate(feats)],
                        labels, ["a", "b"])


@pytest.mark.parametrize("data,expected", [("fewshot", 4), ("fewshot+synthetic", 10), ("synthetic", 6),
                                           ("all_real", 8)])
def test_training_set_rows(data, expected):
    joints, labels = training_set(_target(), _synthetic(), EvaluateConfig(train_data=data))
    assert len(joints) == len(labels) == expected
    if data == "all_real":
        assert sorted(labels.tolist()) == [0, 0, 0, 0, 1, 1, 1, 1]  # few-shot + unused training side, no test clip
    if data == "fewshot+synthetic":
        assert labels.tolist() == [0, 0, 1, 1, 0, 0, 0, 1, 1, 1]


def test_synthetic_subset_per_class_and_class_check():
    config = EvaluateConfig(train_data="synthetic", synthetic_per_class=1)
    _, labels = training_set(_target(), _synthetic(), config)
    assert labels.tolist() == [0, 1]
    wrong = _synthetic()
    wrong.class_names = ["x", "y"]
    with pytest.raises(ValueError, match="differ"):
        training_set(_target(), wrong, EvaluateConfig(train_data="synthetic"))
    with pytest.raises(ValueError, match="needs the generated set"):
        training_set(_target(), None, EvaluateConfig(train_data="fewshot+synthetic"))
    with pytest.raises(ValueError, match="train_data"):
        EvaluateConfig(train_data="everything")


def test_synthetic_set_round_trip(tmp_path):
    synthetic = _synthetic()
    synthetic.save(tmp_path / "s.npz")
    loaded = SyntheticSet.load(tmp_path / "s.npz")
    assert loaded.class_names == ["a", "b"] and loaded.labels.tolist() == synthetic.labels.tolist()
    for a, b in zip(loaded.joints, synthetic.joints, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="sampling_steps"):
        GenerateConfig(sampling_steps=-1)


def test_summary_statistics_and_plots(tmp_path):
    per_seed = {1: 0.6, 2: 0.8, 3: 0.7, 4: 0.9, 5: 0.5}
    summary = summarize_accuracy(per_seed)
    assert summary["top1.median"] == pytest.approx(0.7) and summary["top1.mean"] == pytest.approx(0.7)
    assert summary["top1.std"] == pytest.approx(np.std([0.6, 0.8, 0.7, 0.9, 0.5]))
    assert summary["top1.seed_4"] == 0.9 and summary["seeds"] == 5
    write_accuracy_plot(per_seed, tmp_path / "a.tsv", tmp_path / "a.png", "t")
    assert (tmp_path / "a.tsv").read_text().splitlines()[1] == "1\t0.600000"
    write_confusion([np.array([[2, 1], [0, 3]]), np.array([[1, 0], [1, 1]])], ["a", "b"], tmp_path / "c.csv",
                    tmp_path / "c.png", "t")
    rows = (tmp_path / "c.csv").read_text().splitlines()
    assert rows[0] == "actual,predicted" and rows.count("a,a") == 3 and rows.count("b,a") == 1 and len(rows) == 10
    plot_curves([{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0}], tmp_path / "l.png", "t", ["loss", "absent"])
    assert (tmp_path / "l.png").stat().st_size > 0
    with pytest.raises(ValueError, match="no curve rows"):
        plot_curves([], tmp_path / "empty.png", "t")
    with pytest.raises(ValueError, match="no per-seed"):
        summarize_accuracy({})


def test_atomic_output_dir_keeps_old_output_on_failure(tmp_path):
    out = tmp_path / "out"
    with atomic_output_dir(out) as tmp:
        (tmp / "a.txt").write_text("first")
    with pytest.raises(RuntimeError):
        with atomic_output_dir(out) as tmp:
            (tmp / "a.txt").write_text("partial")
            raise RuntimeError("stage failed")
    assert (out / "a.txt").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary leftovers
    with atomic_output_dir(out) as tmp:
        (tmp / "b.txt").write_text("second")
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]
    write_json(tmp_path / "m.json", {"b": np.float32(0.5), "a": np.int64(2)})
    assert read_json(tmp_path / "m.json") == {"a": 2, "b": 0.5}


def test_evaluation_imports_no_sampling_code():
    """The classifier stages read the generated set without the sampler, the student or MDM: a change there must not
    re-run them (their dvc.yaml deps are these imports)."""
    code = "import kinemic.evaluation, sys; print(sorted(m for m in sys.modules if m.startswith('kinemic')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for module in ("generation", "sampling", "student", "diffusion", "models.mdm"):
        assert f"'kinemic.{module}'" not in loaded
    assert "'kinemic.synthetic_set'" in loaded


def test_headline_line_leaves_out_comparisons_the_baselines_could_not_give():
    """When all real data does not beat the few-shot set, there is no gap to close: the line says what there is."""
    from kinemic.report import headline_line

    summary = {"top1.median": 0.5, "top1.mean": 0.5, "top1.std": 0.1, "top1.mean.ci_low": 0.4,
               "top1.mean.ci_high": 0.6, "seeds": 5, "vs_real_only": 0.1, "vs_real_only.ci_low": 0.0,
               "vs_real_only.ci_high": 0.2}
    assert headline_line(summary).endswith("vs real only +10.0 points [CI +0.0, +20.0]")
    assert headline_line({**summary, "gap_closure": 0.25}).endswith(", gap closure 0.25")
    short = {k: v for k, v in summary.items() if not k.startswith("vs_")}
    assert headline_line(short) == "median top-1 50.0% (mean 50.0 +- 10.0, 95% CI [40.0, 60.0]) over 5 seeds"


def test_classifier_settings_are_built_once_into_their_config():
    """`evaluate.classifier` and the flat `evaluator` section become typed configs of the one protocol class, and a
    misspelt key fails at construction, naming the section."""
    config = config_from_params(EvaluateConfig, {"classifier": {"epochs": 3}}, "evaluate")
    assert config.classifier == ClassifierConfig(epochs=3) and EvaluateConfig().classifier == ClassifierConfig()
    with pytest.raises(ValueError, match=r"evaluate\.classifier': unknown keys \['epoch'\]"):
        EvaluateConfig(classifier={"epoch": 3})
    extractor = FeatureExtractorConfig.from_params({"seed": 4, "epochs": 2})
    assert extractor == FeatureExtractorConfig(4, ClassifierConfig(epochs=2))
    with pytest.raises(ValueError, match=r"evaluator.seed must be an integer, got True"):
        FeatureExtractorConfig.from_params({"seed": True})
    with pytest.raises(ValueError, match=r"'evaluator': unknown keys \['seeds'\]"):
        FeatureExtractorConfig.from_params({"seeds": [1]})
