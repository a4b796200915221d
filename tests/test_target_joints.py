"""24 SMPL joints in a camera frame -> HumanML3D: axis fix, resampling, the 24-joint directory format."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kinemic.formats.smpl import SMPLModel, synthetic_smpl_arrays
from kinemic.formats.target_joints import (
    Joints24Info,
    camera_to_yup,
    iter_joints24,
    joints24_dir_to_humanml,
    read_joints24_info,
    resample,
    resampled_length,
    smpl24_to_humanml,
    smpl24_to_humanml_many,
    write_joints24_dir,
)
from kinemic.motion import MotionError, features_to_joints

PELVIS, L_HIP, R_HIP, HEAD = 0, 1, 2, 15


@pytest.fixture(scope="module")
def model():
    return SMPLModel(synthetic_smpl_arrays(seed=0))


def camera_frame_clip(model: SMPLModel, num_frames: int = 45, fps: float = 30.0, phase: float = 0.0) -> np.ndarray:
    """A person upright in VIBE's y-down camera frame, facing the camera, bending the knees: (T, 24, 3)."""
    t = np.arange(num_frames) / fps
    pose = np.zeros((num_frames, 72))
    pose[:, 0] = np.pi  # global orient R_x(180): the y-up rest body stands upright in the y-down frame
    pose[:, 3 * 4] = 0.8 * (1 + np.sin(2 * np.pi * t + phase))  # left knee
    pose[:, 3 * 5] = 0.8 * (1 + np.cos(2 * np.pi * t + phase))  # right knee
    pose[:, 3 * 16 + 2] = -0.6 * np.sin(np.pi * t)  # left shoulder swings
    return model.forward(pose, np.zeros(10))


def test_camera_to_yup_is_a_proper_rotation():
    basis = camera_to_yup(np.eye(3))
    np.testing.assert_allclose(basis, np.diag([1.0, -1.0, -1.0]))
    assert np.linalg.det(basis) == pytest.approx(1.0)  # no mirror: handedness is kept
    points = np.random.default_rng(0).standard_normal((5, 3))
    np.testing.assert_allclose(camera_to_yup(camera_to_yup(points)), points)  # R_x(180) is its own inverse


def test_upright_person_ends_head_up_and_left_on_the_left(model):
    cam = camera_frame_clip(model, 10)[0]
    assert cam[HEAD, 1] < cam[PELVIS, 1]  # y-down: the head has the smaller y
    assert cam[L_HIP, 0] > cam[R_HIP, 0]  # facing the camera, the person's left is on the image's right (+x)
    yup = camera_to_yup(cam)
    assert yup[HEAD, 1] > yup[PELVIS, 1] + 0.3
    assert yup[L_HIP, 0] > yup[R_HIP, 0]  # HumanML3D convention: facing +Z, left on +X
    forward = np.cross(np.array([0.0, 1.0, 0.0]), yup[R_HIP] - yup[L_HIP])
    assert forward[2] > 0  # now facing +Z


def test_features_keep_left_and_up(model):
    """Through the whole chain: the recovered HumanML3D joints stand upright with the left hip on +X."""
    features, joints = smpl24_to_humanml(camera_frame_clip(model), 30.0, name="S001C001P001R001A099")
    recovered = np.asarray(features_to_joints(features))
    assert recovered.shape == (len(features), 22, 3)
    assert (recovered[:, HEAD, 1] > recovered[:, PELVIS, 1]).all()
    assert recovered[0, L_HIP, 0] > recovered[0, R_HIP, 0]
    assert joints.dtype == np.float32 and joints.shape == (len(features) + 1, 22, 3)


@pytest.mark.parametrize(("frames", "expected"), [(31, 21), (45, 30), (90, 60), (4, 3), (2, 1), (1, 1)])
def test_resampled_length(frames, expected):
    assert resampled_length(frames, 30, 20) == expected


def test_resample_keeps_duration_and_matches_a_sinusoid():
    src_fps, dst_fps, freq = 30.0, 20.0, 0.7
    t_src = np.arange(91) / src_fps  # 3 s
    signal = np.stack([np.sin(2 * np.pi * freq * t_src), np.cos(2 * np.pi * freq * t_src)], axis=-1)[:, None, :]
    out = resample(signal, src_fps, dst_fps)
    assert out.shape == (61, 1, 2)
    assert (len(out) - 1) / dst_fps == pytest.approx((len(signal) - 1) / src_fps)
    t_dst = np.arange(len(out)) / dst_fps
    # linear interpolation error <= h^2 / 8 * max|x''| with h = 1/30 s
    tolerance = (1 / src_fps) ** 2 / 8 * (2 * np.pi * freq) ** 2 + 1e-12
    np.testing.assert_allclose(out[:, 0, 0], np.sin(2 * np.pi * freq * t_dst), atol=tolerance)
    np.testing.assert_allclose(out[:, 0, 1], np.cos(2 * np.pi * freq * t_dst), atol=tolerance)


def test_resample_interpolates_rather_than_strides():
    ramp = np.arange(7, dtype=np.float64)[:, None]  # value = input frame index
    out = resample(ramp, 30, 20)
    np.testing.assert_allclose(out[:, 0], [0.0, 1.5, 3.0, 4.5, 6.0])
    np.testing.assert_allclose(resample(ramp, 20, 20), ramp)


def test_resample_rejects_bad_rates():
    with pytest.raises(ValueError, match="src_fps=0"):
        resample(np.zeros((5, 3)), 0, 20)
    with pytest.raises(ValueError, match="dst_fps"):
        resample(np.zeros((5, 3)), 30, float("nan"))


def test_too_short_and_bad_samples_are_named(model):
    clip = camera_frame_clip(model, 10)
    with pytest.raises(MotionError, match="S001C001P001R001A102: 2 frames at 30.0 fps.*fewer than 2 frames at 20"):
        smpl24_to_humanml(clip[:2], 30.0, name="S001C001P001R001A102")
    with pytest.raises(MotionError, match="clipX: expected SMPL joints of shape"):
        smpl24_to_humanml(clip[:, :22], 30.0, name="clipX")
    nan_clip = clip.copy()
    nan_clip[3, 5] = np.nan
    with pytest.raises(MotionError, match=r"clipY: joints contain NaN or inf at frames \[3\]"):
        smpl24_to_humanml(nan_clip, 30.0, name="clipY")
    with pytest.raises(ValueError, match="frame='z_up'"):
        smpl24_to_humanml(clip, 30.0, frame="z_up")


def test_batch_matches_single_and_names_the_culprit(model):
    clips = {f"S001C001P001R001A{a:03d}": camera_frame_clip(model, 30 + 7 * i, phase=i) for i, a in
             enumerate((99, 102, 104))}
    many = smpl24_to_humanml_many(clips, 30.0)
    for name, clip in clips.items():
        single = smpl24_to_humanml(clip, 30.0, name=name)
        np.testing.assert_allclose(many[name].features, single.features, atol=1e-5)
    line = np.zeros((30, 24, 3))
    line[:, :, 1] = -np.linspace(0.0, 1.6, 24)  # every joint on one vertical line: no left-right axis, no facing
    broken = dict(clips, S002C001P001R001A099=line)
    with pytest.raises(MotionError, match="S002C001P001R001A099: .*facing"):
        smpl24_to_humanml_many(broken, 30.0)


def test_joints24_directory_round_trip(tmp_path, model):
    clips = {"S001C002P003R001A099": camera_frame_clip(model, 40), "S002C001P004R002A102": camera_frame_clip(model, 33)}
    write_joints24_dir(tmp_path, clips, Joints24Info(fps=30, frame="camera_y_down"))
    assert json.loads((tmp_path / "info.json").read_text()) == {"fps": 30, "frame": "camera_y_down", "joints": "smpl24"}
    assert read_joints24_info(tmp_path) == Joints24Info(30, "camera_y_down", "smpl24")
    loaded = dict(iter_joints24(tmp_path))
    assert sorted(loaded) == sorted(clips)
    np.testing.assert_allclose(loaded["S001C002P003R001A099"], clips["S001C002P003R001A099"], atol=1e-6)
    converted = joints24_dir_to_humanml(tmp_path)
    assert converted["S002C001P004R002A102"].features.shape == (resampled_length(33, 30, 20) - 1, 263)


def test_joints24_directory_errors(tmp_path, model):
    with pytest.raises(FileNotFoundError, match="info.json"):
        read_joints24_info(tmp_path)
    (tmp_path / "info.json").write_text(json.dumps({"fps": 30, "frame": "camera_y_up", "joints": "smpl24"}))
    with pytest.raises(ValueError, match="info.json: frame='camera_y_up'"):
        read_joints24_info(tmp_path)
    (tmp_path / "info.json").write_text(json.dumps({"fps": 30, "frame": "y_up"}))
    with pytest.raises(ValueError, match=r"missing key\(s\) \['joints'\]"):
        read_joints24_info(tmp_path)
    write_joints24_dir(tmp_path, {"S001C001P001R001A099": camera_frame_clip(model, 2)}, Joints24Info())
    with pytest.raises(MotionError, match="S001C001P001R001A099"):
        joints24_dir_to_humanml(tmp_path)
    np.save(tmp_path / "joints24" / "S001C001P001R001A099.npy", np.zeros((10, 25, 3), np.float32))
    with pytest.raises(ValueError, match=r"S001C001P001R001A099.npy: expected float joints of shape \(T, 24, 3\)"):
        joints24_dir_to_humanml(tmp_path)
