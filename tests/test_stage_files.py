"""A missing, truncated or corrupt stage output fails naming the file and the stage to re-run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from kinemic.checkpoints import read_checkpoint
from kinemic.corpus import CAPTION_COLUMNS, PreparedPrior
from kinemic.evaluation import read_confusion
from kinemic.motion import FeatureStats
from kinemic.recogniser import PRIMITIVE_COLUMNS, read_primitives
from kinemic.skeleton import FEATURE_DIM
from kinemic.stage_files import read_stage_file
from kinemic.synthetic_set import SyntheticSet
from kinemic.target_set import PreparedTarget


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _prior() -> PreparedPrior:
    motions = pd.DataFrame({"motion_id": ["m0", "m1"], "source_id": ["m0", "m1"], "split": ["train", "test"],
                            "offset": [0, 10], "length": [10, 12], "start_frame": [0, 0]})
    captions = pd.DataFrame([("m0", "a person walks", "a/DET", 0.0, 0.0), ("m1", "a person runs", "a/DET", 0.0, 0.0)],
                            columns=list(CAPTION_COLUMNS))
    stats = FeatureStats(np.zeros(FEATURE_DIM, np.float32), np.ones(FEATURE_DIM, np.float32))
    return PreparedPrior(np.zeros((22, FEATURE_DIM), np.float32), motions, captions, stats)


def _target() -> PreparedTarget:
    rows = [dict(sample_id=f"S001C001P00{k}R001A001", setup=1, camera=1, performer=k, replication=1, action=1,
                 class_index=0, class_name="a", caption="a", split="fewshot") for k in range(2)]
    feats = [np.zeros((6, FEATURE_DIM), np.float32) for _ in rows]
    return PreparedTarget.from_clips(pd.DataFrame(rows), feats, [np.zeros((6, 22, 3), np.float32) for _ in rows])


def test_read_stage_file_names_the_file_and_the_stage(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"x\.npy: missing; run `dvc repro mine` first"):
        read_stage_file(tmp_path / "x.npy", "mine", np.load)
    (tmp_path / "x.npy").write_bytes(b"not an array")
    with pytest.raises(ValueError, match=r"x\.npy: cannot be read .*stage 'mine'.*`dvc repro -f mine`"):
        read_stage_file(tmp_path / "x.npy", "mine", np.load)


@pytest.mark.parametrize("keep", [0.0, 0.01, 0.5, 0.99])
def test_truncated_checkpoint_names_the_stage_that_writes_it(tmp_path, keep):
    """torch.load fails in its own words, which differ with where the file was cut (EOFError, RuntimeError from its
    zip reader, OSError): each becomes the stage file error."""
    path = tmp_path / "student.pt"
    torch.save({"format": "kinemic.test/1", "weights": torch.arange(1000.0)}, path)
    assert read_checkpoint(path, "kinemic.test/1", stage="train")["weights"][-1] == 999.0
    _truncate(path, keep)
    with pytest.raises(ValueError, match=r"student\.pt: cannot be read .*stage 'train'.*`dvc repro -f train`"):
        read_checkpoint(path, "kinemic.test/1", stage="train")
    with pytest.raises(FileNotFoundError, match=r"other\.pt: missing; run `dvc repro train` first"):
        read_checkpoint(tmp_path / "other.pt", "kinemic.test/1", stage="train")


@pytest.mark.parametrize("name", ["features.npy", "motions.parquet", "captions.parquet", "stats.npz"])
def test_truncated_prior_file_names_prepare_prior(tmp_path, name):
    _prior().save(tmp_path)
    assert len(PreparedPrior.load(tmp_path)) == 2
    _truncate(tmp_path / name)
    with pytest.raises(ValueError, match=rf"{name}: cannot be read .*`dvc repro -f prepare_prior`"):
        PreparedPrior.load(tmp_path, mmap=name != "stats.npz")


def test_prior_table_without_a_column_names_prepare_prior(tmp_path):
    _prior().save(tmp_path)
    pd.read_parquet(tmp_path / "captions.parquet").drop(columns="tokens").to_parquet(tmp_path / "captions.parquet")
    with pytest.raises(ValueError, match=r"captions\.parquet: cannot .*\['tokens'\].*dvc repro -f prepare_prior"):
        PreparedPrior.load(tmp_path)


@pytest.mark.parametrize("name", ["features.npy", "joints.npy", "samples.parquet"])
def test_truncated_target_file_names_prepare_target(tmp_path, name):
    _target().save(tmp_path)
    assert len(PreparedTarget.load(tmp_path)) == 2
    _truncate(tmp_path / name)
    with pytest.raises(ValueError, match=rf"{name}: cannot be read .*`dvc repro -f prepare_target`"):
        PreparedTarget.load(tmp_path)


def test_target_arrays_that_disagree_name_prepare_target(tmp_path):
    _target().save(tmp_path)
    np.save(tmp_path / "joints.npy", np.zeros((5, 22, 3), np.float32))
    with pytest.raises(ValueError, match=r"disagree; re-run `dvc repro -f prepare_target`"):
        PreparedTarget.load(tmp_path)


def test_truncated_generated_set_names_generate(tmp_path):
    path = tmp_path / "synthetic.npz"
    with pytest.raises(FileNotFoundError, match=r"synthetic\.npz: missing; run `dvc repro generate` first"):
        SyntheticSet.load(path)
    SyntheticSet([np.zeros((4, FEATURE_DIM), np.float32)], [np.zeros((4, 22, 3), np.float32)], np.array([0]),
                 ["a"]).save(path)
    assert len(SyntheticSet.load(path)) == 1
    _truncate(path)
    with pytest.raises(ValueError, match=r"synthetic\.npz: cannot be read .*`dvc repro -f generate`"):
        SyntheticSet.load(path)


def test_truncated_primitive_labels_name_synthesize(tmp_path):
    path = tmp_path / "primitives.parquet"
    pd.DataFrame({column: [0] for column in PRIMITIVE_COLUMNS}).to_parquet(path)
    assert len(read_primitives(path)) == 1
    _truncate(path)
    with pytest.raises(ValueError, match=r"primitives\.parquet: cannot be read .*`dvc repro -f synthesize`"):
        read_primitives(path)


def test_truncated_predictions_name_evaluate(tmp_path):
    path = tmp_path / "predictions.npz"
    np.savez(path, confusion=np.eye(3, dtype=np.int64), labels=np.arange(3))
    assert read_confusion(path).trace() == 3
    _truncate(path)
    with pytest.raises(ValueError, match=r"predictions\.npz: cannot be read .*`dvc repro -f evaluate`"):
        read_confusion(path)
