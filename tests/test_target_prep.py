"""prepare_target: the three input kinds, split rules, the stage entry point, and the real NTU-VIBE samples."""

from __future__ import annotations

import json

import joblib
import numpy as np
import pandas as pd
import pytest

from kinemic.formats.ntu import XSUB120_TRAIN_PERFORMERS
from kinemic.formats.pyskl import read_pyskl
from kinemic.formats.smpl import SMPLModel, synthetic_smpl_arrays
from kinemic.formats.target_joints import Joints24Info, write_joints24_dir
from kinemic.target_prep import TargetConfig, prepare_target
from kinemic.target_set import PreparedTarget

TRAIN_P = sorted(XSUB120_TRAIN_PERFORMERS)[:4]
TEST_P = [p for p in range(1, 107) if p not in XSUB120_TRAIN_PERFORMERS][:3]


def _pose(frames: int, action: int, seed: int) -> np.ndarray:
    """Axis-angle poses (T, 72): the body rotated to face the camera in VIBE's y-down frame, limbs swinging."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / 30.0
    pose = np.zeros((frames, 72))
    pose[:, 0] = np.pi  # root: R_x(180) puts the y-up body into the y-down camera frame
    joint = {99: 4, 102: 2, 104: 16}[action]  # knee, hip, shoulder
    pose[:, 3 * joint] = 0.8 * np.sin(2 * np.pi * (1.0 + rng.uniform()) * t)
    return pose


def _smpl24_dir(root, per_side: int = 2):
    smpl = SMPLModel(synthetic_smpl_arrays())
    motions = {}
    for action in (99, 102, 104):
        for p in TRAIN_P[:per_side] + TEST_P[:per_side]:
            for cam in (1, 2):
                sid = f"S018C{cam:03d}P{p:03d}R001A{action:03d}"
                motions[sid] = smpl.forward(_pose(45, action, p * 10 + cam), np.zeros(10))
    motions["S018C001P001R001A010"] = motions["S018C001P001R001A099"]  # another class: ignored
    write_joints24_dir(root, motions, Joints24Info(fps=30.0, frame="camera_y_down", joints="smpl24"))
    return motions


def test_smpl24_kind_splits_and_outputs(tmp_path):
    _smpl24_dir(tmp_path / "raw")
    config = TargetConfig(kind="smpl24", source=str(tmp_path / "raw"), shots=2, seed=3)
    target, report = prepare_target(config)
    s = target.samples
    assert report.other_classes == 1 and len(s) == 24
    assert s.groupby("class_index")["split"].apply(lambda x: (x == "fewshot").sum()).tolist() == [2, 2, 2]
    assert set(s.loc[s.split == "test", "performer"]) <= set(TEST_P)
    assert set(s.loc[s.split == "fewshot", "performer"]) <= set(TRAIN_P)
    assert s["class_name"].tolist()[0] == "running on the spot"
    # 45 frames at 30 fps = 1.467 s -> 30 frames at 20 fps -> 29 feature rows
    assert (s["length"] == 29).all()
    head_above_pelvis = target.joints[:, 15, 1] > target.joints[:, 0, 1]
    assert head_above_pelvis.all()
    again, _ = prepare_target(config)
    pd.testing.assert_frame_equal(again.samples, s)
    np.testing.assert_array_equal(again.features, target.features)


def test_too_few_shots_names_the_class(tmp_path):
    _smpl24_dir(tmp_path / "raw", per_side=1)
    with pytest.raises(ValueError, match=r"A099.*fewer than shots=5"):
        prepare_target(TargetConfig(kind="smpl24", source=str(tmp_path / "raw"), shots=5))


def test_vibe_kind_end_to_end(tmp_path):
    smpl_arrays = synthetic_smpl_arrays()
    arrays = {**smpl_arrays.to_dict(), "J_regressor": smpl_arrays.J_regressor.toarray()}
    np.savez(tmp_path / "SMPL_NEUTRAL.npz", **arrays)
    for action in (99, 102, 104):
        for p in TRAIN_P[:1] + TEST_P[:1]:
            sid = f"S018C001P{p:03d}R001A{action:03d}"
            pose = _pose(40, action, p)
            track = dict(pose=pose, betas=np.zeros((40, 10)), frame_ids=np.arange(40), joints3d=np.zeros((40, 49, 3)))
            (tmp_path / "vibe" / f"{sid}_rgb").mkdir(parents=True)
            joblib.dump({1: track}, tmp_path / "vibe" / f"{sid}_rgb" / "vibe_output.pkl")
    config = TargetConfig(kind="vibe", source=str(tmp_path / "vibe"), smpl_model=str(tmp_path / "SMPL_NEUTRAL.npz"),
                          shots=1)
    target, _ = prepare_target(config)
    assert len(target) == 6 and (target.samples["length"] == 26).all()  # 40 frames at 30 fps -> 27 at 20 fps
    with pytest.raises(FileNotFoundError, match="smpl.is.tue.mpg.de"):
        prepare_target(TargetConfig(kind="vibe", source=str(tmp_path / "vibe"), smpl_model=str(tmp_path / "no.pkl")))


def test_vibe_skip_counts_bad_files(tmp_path):
    test_vibe_kind_end_to_end(tmp_path)
    bad = tmp_path / "vibe" / f"S018C002P{TRAIN_P[0]:03d}R001A099_rgb"
    bad.mkdir()
    (bad / "vibe_output.pkl").write_bytes(b"not a pickle")
    config = dict(kind="vibe", source=str(tmp_path / "vibe"), smpl_model=str(tmp_path / "SMPL_NEUTRAL.npz"), shots=1)
    with pytest.raises(ValueError, match="S018C002P001R001A099"):
        prepare_target(TargetConfig(**config))
    target, report = prepare_target(TargetConfig(**config, on_error="skip"))
    assert report.skipped == ["S018C002P001R001A099"] and len(target) == 6


def test_stage_main_writes_outputs(tmp_path, monkeypatch):
    from stages import prepare_target as stage

    _smpl24_dir(tmp_path / "raw")
    params = tmp_path / "params.yaml"
    params.write_text(f"prepare_target:\n  kind: smpl24\n  source: {tmp_path / 'raw'}\n  shots: 2\n")
    stage.main(["--params", str(params), "--out", str(tmp_path / "out"), "--metrics", str(tmp_path / "m.json")])
    loaded = PreparedTarget.load(tmp_path / "out")
    assert len(loaded) == 24
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["clips"] == 24 and metrics["fewshot.side kick"] == 2
    pyskl = read_pyskl(tmp_path / "out" / "real.pkl")
    assert len(pyskl.by_split("fewshot")) == 6
    params.write_text("prepare_target:\n  kind: smpl24\n  shots: 2\n  colour: red\n")
    with pytest.raises(ValueError, match="unknown keys \\['colour'\\]"):
        stage.main(["--params", str(params), "--out", str(tmp_path / "o2"), "--metrics", str(tmp_path / "m2.json")])
    assert not (tmp_path / "o2").exists()


def test_the_undrawn_files_do_not_depend_on_the_few_shot_draw(tmp_path):
    """What trains on all real clips (dvc.yaml: baseline_all_real, evaluator) depends on these three files only, so a
    new draw or shot count must leave their bytes alone, and must move the drawn table."""
    _smpl24_dir(tmp_path / "raw")
    files = ("features.npy", "joints.npy", "undrawn.parquet")
    saved = {}
    for seed, shots in ((0, 2), (1, 2), (0, 1)):
        target, _ = prepare_target(TargetConfig(kind="smpl24", source=str(tmp_path / "raw"), shots=shots, seed=seed))
        target.save(tmp_path / f"out_{seed}_{shots}")
        saved[seed, shots] = {name: (tmp_path / f"out_{seed}_{shots}" / name).read_bytes()
                              for name in (*files, "samples.parquet")}
    for name in files:
        assert saved[0, 2][name] == saved[1, 2][name] == saved[0, 1][name], name
    assert len({s["samples.parquet"] for s in saved.values()}) == 3

    drawn = PreparedTarget.load(tmp_path / "out_1_2")
    undrawn = PreparedTarget.load(tmp_path / "out_1_2", undrawn=True)
    assert len(undrawn.split("fewshot")) == 0 and len(drawn.split("fewshot")) == 6
    pd.testing.assert_frame_equal(undrawn.samples.drop(columns="split"), drawn.samples.drop(columns="split"))
    same = drawn.select(["fewshot", "unused"]).samples, undrawn.select(["fewshot", "unused"]).samples
    pd.testing.assert_frame_equal(same[0].drop(columns="split"), same[1].drop(columns="split"))  # all real, in order
    (tmp_path / "out_1_2" / "undrawn.parquet").unlink()
    with pytest.raises(FileNotFoundError, match="undrawn.parquet: missing; run `dvc repro prepare_target`"):
        PreparedTarget.load(tmp_path / "out_1_2", undrawn=True)


def test_real_ntu_vibe_release(ntu_fewshot_dir, ntu_metadata_path):
    config = TargetConfig(kind="humanml3d", source=str(ntu_fewshot_dir),
                          fewshot_list=str(ntu_fewshot_dir / "fewshot_train.txt"), metadata=str(ntu_metadata_path))
    target, report = prepare_target(config)
    s = target.samples
    assert len(s) == 30 and (s["split"] == "fewshot").all()
    assert report.fewshot_on_test_side == 12  # the authors' list strays onto the X-Sub test side
    assert s.loc[s.action == 102, "caption"].iloc[0] == "a person does a side kick."
    assert s.loc[s.action == 99, "class_name"].iloc[0] == "run on the spot"
    # joints recovered from the released features, the HumanML3D way (the release ships them alongside)
    row = s.index[s.sample_id == "S018C003P043R001A104"][0]
    released = np.load(ntu_fewshot_dir / "new_joints" / "S018C003P043R001A104.npy").reshape(-1, 22, 3)
    np.testing.assert_allclose(target.sample_joints(row), released, atol=1e-4)
