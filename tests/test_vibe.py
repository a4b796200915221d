"""VIBE output reading: track choice, gap filling, betas, errors; on small fake vibe_output.pkl files."""

from __future__ import annotations

import joblib
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from kinemic.formats.smpl import SMPLModel, synthetic_smpl_arrays
from kinemic.formats.target_joints import smpl24_to_humanml
from kinemic.formats.vibe import VibeConfig, VibeError, fill_gaps, read_vibe, select_track

HEAD, PELVIS = 15, 0


@pytest.fixture(scope="module")
def model():
    return SMPLModel(synthetic_smpl_arrays(seed=0))


def fake_track(frame_ids, seed: int = 0) -> dict:
    """A VIBE-like track: upright in the y-down camera frame, small random joint rotations, per-frame betas."""
    rng = np.random.default_rng(seed)
    frame_ids = np.asarray(frame_ids)
    n = len(frame_ids)
    pose = 0.1 * rng.standard_normal((n, 72))
    pose[:, :3] = [np.pi, 0.0, 0.0]
    return dict(
        pose=pose.astype(np.float32), betas=(0.5 * rng.standard_normal((n, 10))).astype(np.float32),
        frame_ids=frame_ids, pred_cam=np.ones((n, 3), np.float32), orig_cam=np.ones((n, 4), np.float32),
        joints3d=np.zeros((n, 49, 3), np.float32), bboxes=np.ones((n, 4), np.float32), joints2d=None,
    )


def write(tmp_path, tracks, name: str = "vibe_output.pkl"):
    path = tmp_path / name
    joblib.dump(tracks, path)
    return path


def test_longest_track_wins_ties_go_to_lowest_id():
    tracks = {3: fake_track(range(60)), 1: fake_track(range(40)), 2: fake_track(range(100, 160))}
    assert select_track(tracks) == 2
    assert select_track(tracks, track_id=1) == 1
    with pytest.raises(VibeError, match=r"track_id=7 not found; tracks are \[1, 2, 3\]"):
        select_track(tracks, track_id=7)


def test_read_picks_track_and_runs_smpl(tmp_path, model):
    tracks = {1: fake_track(range(12), seed=1), 2: fake_track(range(5, 35), seed=2)}
    motion = read_vibe(write(tmp_path, tracks), model)
    assert motion.track_id == 2 and motion.fps == 30.0 and motion.n_filled_frames == 0
    assert motion.joints24.shape == (30, 24, 3) and motion.joints24.dtype == np.float32
    np.testing.assert_array_equal(motion.frame_ids, np.arange(5, 35))
    mean_betas = tracks[2]["betas"].astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(motion.betas, mean_betas, atol=1e-6)
    np.testing.assert_allclose(motion.joints24, model.forward(tracks[2]["pose"], mean_betas), atol=1e-5)
    assert (motion.joints24[:, HEAD, 1] < motion.joints24[:, PELVIS, 1]).all()  # upright in the y-down frame
    forced = read_vibe(write(tmp_path, tracks), model, VibeConfig(track_id=1, average_betas=False, fps=25))
    assert forced.track_id == 1 and forced.betas.shape == (12, 10) and forced.fps == 25
    features, joints = smpl24_to_humanml(motion.joints24, motion.fps, name="S001C001P001R001A099")
    assert features.shape == (19, 263) and (joints[:, HEAD, 1] > joints[:, PELVIS, 1]).all()


def test_gaps_are_filled_with_slerp_and_linear_betas():
    frame_ids = np.array([10, 11, 14, 15])
    pose = np.zeros((4, 72))
    # joint 1 turns about z from 170 to 190 degrees between frames 11 and 14: the short way passes through 180;
    # a lerp of the axis-angle vectors (+170 deg, -170 deg) would swing back through 0 instead
    pose[:, 3:6] = Rotation.from_euler("z", [[170], [170], [190], [190]], degrees=True).as_rotvec()
    pose[:, 6:9] = Rotation.from_euler("x", [[0], [30], [90], [90]], degrees=True).as_rotvec()
    betas = np.array([[0.0], [1.0], [4.0], [5.0]]) * np.ones((1, 10))
    full_ids, full_pose, full_betas = fill_gaps(frame_ids, pose, betas)
    np.testing.assert_array_equal(full_ids, np.arange(10, 16))
    np.testing.assert_array_equal(full_pose[[0, 1, 4, 5]], pose)  # known frames untouched
    yaw = Rotation.from_rotvec(full_pose[2:4, 3:6]).as_euler("zyx", degrees=True)[:, 0] % 360
    np.testing.assert_allclose(yaw, [170 + 20 / 3, 170 + 40 / 3], atol=1e-6)
    roll = Rotation.from_rotvec(full_pose[2:4, 6:9]).magnitude()
    np.testing.assert_allclose(np.degrees(roll), [50, 70], atol=1e-6)
    np.testing.assert_allclose(full_betas[:, 0], [0, 1, 2, 3, 4, 5])


def test_read_reports_filled_frames(tmp_path, model):
    ids = np.r_[0:10, 13:20]
    motion = read_vibe(write(tmp_path, {1: fake_track(ids)}), model)
    assert motion.n_filled_frames == 3 and motion.num_frames == 20


def test_bad_files_name_the_file_and_the_problem(tmp_path, model):
    good = write(tmp_path, {1: fake_track(range(30))}, "good.pkl").read_bytes()
    cases = {
        "truncated.pkl": (good[: len(good) // 2], "corrupt or truncated"),
        "garbage.pkl": (b"definitely not a pickle", "corrupt or truncated"),
    }
    for name, (payload, message) in cases.items():
        (tmp_path / name).write_bytes(payload)
        with pytest.raises(VibeError, match=f"{name}: .*{message}"):
            read_vibe(tmp_path / name, model)
    with pytest.raises(VibeError, match="empty.pkl: no tracks"):
        read_vibe(write(tmp_path, {}, "empty.pkl"), model)
    with pytest.raises(VibeError, match="list.pkl: expected a dict keyed by track id"):
        read_vibe(write(tmp_path, [1, 2], "list.pkl"), model)
    with pytest.raises(VibeError, match=r"short.pkl: track 4 has 1 frame\(s\)"):
        read_vibe(write(tmp_path, {4: fake_track([7])}, "short.pkl"), model)
    nan_track = fake_track(range(30))
    nan_track["pose"][12, 5] = np.nan
    with pytest.raises(VibeError, match=r"nan.pkl: track 1: pose contains NaN or inf at video frames \[12\]"):
        read_vibe(write(tmp_path, {1: nan_track}, "nan.pkl"), model)
    no_betas = {k: v for k, v in fake_track(range(30)).items() if k != "betas"}
    with pytest.raises(VibeError, match=r"nobetas.pkl: track 1: missing key\(s\) \['betas'\]"):
        read_vibe(write(tmp_path, {1: no_betas}, "nobetas.pkl"), model)
    shuffled = fake_track([0, 2, 1, 3])
    with pytest.raises(VibeError, match="order.pkl: track 1: frame_ids are not strictly increasing"):
        read_vibe(write(tmp_path, {1: shuffled}, "order.pkl"), model)
    with pytest.raises(FileNotFoundError, match="missing.pkl"):
        read_vibe(tmp_path / "missing.pkl", model)
