"""From 24 SMPL joints in a camera frame to HumanML3D features: the one path every target-side source takes.

Both the VIBE reader (real NTU videos) and the embedded world's NTU-like set (24-joint arrays on disk) end here, so the
target data differ only in content, never in processing. The order is fixed by what HumanML3D expects
(reference/humanml3d_vibe_ntu.md section 3.5):

1. keep SMPL joints 0..21 (HumanML3D drops the two hands);
2. rotate VIBE's OpenCV-style camera frame (x right, y down, z forward) to y-up with R_x(180 deg):
   (x, y, z) -> (x, -y, -z). It is a proper rotation, so left stays left; HumanML3D's AMASS axis swap must not be used;
3. resample to 20 fps by linear interpolation over time, keeping the clip's duration: T_out = floor((T-1)/fps * 20) + 1
   (as KineMIC's `resample_motion`; keeping every 2nd frame of a 30 fps clip would play it 4/3 too fast at 20 fps);
4. `kinemic.motion.joints_to_features`, whose foot-contact threshold assumes 20 fps, hence resampling first.

Raw directory format (written by the embedded world, readable by anyone):

    <root>/info.json          {"fps": 30, "frame": "camera_y_down", "joints": "smpl24"}
    <root>/joints24/<id>.npy  (T, 24, 3) float32, metres
"""

from __future__ import annotations

import json
import logging
import math
import numbers
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from kinemic.motion import MotionError, joints_to_features, joints_to_features_batch
from kinemic.skeleton import FPS, NUM_JOINTS

log = logging.getLogger(__name__)

FRAMES = ("camera_y_down", "y_up")
JOINTS24 = "smpl24"
INFO_FILE = "info.json"
JOINTS_SUBDIR = "joints24"
NUM_SMPL24 = 24


class TargetMotion(NamedTuple):
    """A target sample in HumanML3D form; unpacks as `(features, joints)`."""

    features: np.ndarray  # (T20 - 1, 263) float32
    joints: np.ndarray  # (T20, 22, 3) float32: y-up, metres, 20 fps, before HumanML3D's re-targeting


# --------------------------------------------------------------------------------------------------------------------
# pure transforms
# --------------------------------------------------------------------------------------------------------------------


def camera_to_yup(joints: np.ndarray) -> np.ndarray:
    """R_x(180 deg) of points (..., 3): a y-down camera frame (VIBE, OpenCV) to y-up. Returns a new array."""
    joints = np.asarray(joints)
    if joints.shape[-1] != 3:
        raise ValueError(f"camera_to_yup: expected points with 3 coordinates in the last axis, got {joints.shape}")
    return joints * np.array([1.0, -1.0, -1.0], dtype=joints.dtype if joints.dtype.kind == "f" else np.float64)


def _check_fps(fps, name: str) -> None:
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"{name}={fps!r}: expected a positive number of frames per second")


def resampled_length(num_frames: int, src_fps: float, dst_fps: float) -> int:
    """Frames after resampling T frames: floor(duration * dst_fps) + 1 with duration = (T - 1) / src_fps.

    The 1e-9 guards against float round-off: 31 frames at 30 fps are exactly 1 s, hence 21 frames at 20 fps.
    """
    _check_fps(src_fps, "src_fps")
    _check_fps(dst_fps, "dst_fps")
    if num_frames < 1:
        raise ValueError(f"resample: need at least 1 frame, got {num_frames}")
    return math.floor((num_frames - 1) * dst_fps / src_fps + 1e-9) + 1


def resample(joints: np.ndarray, src_fps: float, dst_fps: float) -> np.ndarray:
    """Linearly interpolate a sequence (T, ...) from src_fps to dst_fps, starting at frame 0 and keeping the duration.

    Output frame k lies at time k / dst_fps; the last one is at or just before the input's last frame.
    """
    joints = np.asarray(joints)
    _check_fps(src_fps, "src_fps")
    _check_fps(dst_fps, "dst_fps")
    num_in = len(joints)
    num_out = resampled_length(num_in, src_fps, dst_fps)
    if num_in == 1 or src_fps == dst_fps:
        return joints.astype(np.float64 if joints.dtype.kind != "f" else joints.dtype, copy=True)
    pos = np.minimum(np.arange(num_out) * (src_fps / dst_fps), num_in - 1)  # output times in input-frame units
    left = np.minimum(np.floor(pos).astype(np.int64), num_in - 2)
    frac = (pos - left).reshape((-1,) + (1,) * (joints.ndim - 1))
    return (1.0 - frac) * joints[left] + frac * joints[left + 1]


# --------------------------------------------------------------------------------------------------------------------
# 24 joints -> HumanML3D
# --------------------------------------------------------------------------------------------------------------------


def _check_frame(frame: str) -> None:
    if frame not in FRAMES:
        raise ValueError(f"frame={frame!r}: expected one of {FRAMES}")


def prepare_joints22(
    joints24: np.ndarray, fps: float, frame: str = "camera_y_down", name: str = "sample"
) -> np.ndarray:
    """Steps 1-3: SMPL-24 joints (T, 24, 3) in `frame` at `fps` -> (T20, 22, 3) float32, y-up, 20 fps."""
    _check_frame(frame)
    _check_fps(fps, "fps")
    joints24 = np.asarray(joints24)
    if joints24.ndim != 3 or joints24.shape[1:] != (NUM_SMPL24, 3):
        raise MotionError(f"{name}: expected SMPL joints of shape (T, {NUM_SMPL24}, 3), got {joints24.shape}")
    if not np.isfinite(joints24).all():
        bad = np.flatnonzero(~np.isfinite(joints24).all(axis=(1, 2)))
        raise MotionError(f"{name}: joints contain NaN or inf at frames {bad[:10].tolist()}")
    joints = joints24[:, :NUM_JOINTS].astype(np.float64)
    if frame == "camera_y_down":
        joints = camera_to_yup(joints)
    if len(joints) == 0 or resampled_length(len(joints), fps, FPS) < 2:
        raise MotionError(
            f"{name}: {len(joints)} frames at {fps} fps last {(len(joints) - 1) / fps:.3f} s, which gives fewer than "
            f"2 frames at {FPS} fps; HumanML3D features need at least 2 (a clip of at least {1 / FPS:.2f} s)"
        )
    return resample(joints, fps, FPS).astype(np.float32)


def _features(joints22: np.ndarray, name: str) -> np.ndarray:
    try:
        return joints_to_features(joints22)
    except MotionError as err:
        raise MotionError(f"{name}: {err}") from err


def smpl24_to_humanml(
    joints24: np.ndarray, fps: float, frame: str = "camera_y_down", name: str = "sample"
) -> TargetMotion:
    """HumanML3D features (T20 - 1, 263) and joints (T20, 22, 3) of SMPL-24 joints (T, 24, 3) at `fps` in `frame`.

    `name` only labels errors (MotionError, a ValueError) so a failing sample can be found among thousands.
    """
    joints = prepare_joints22(joints24, fps, frame, name)
    return TargetMotion(_features(joints, name), joints)


def smpl24_to_humanml_many(
    motions: Mapping[str, np.ndarray], fps: float, frame: str = "camera_y_down"
) -> dict[str, TargetMotion]:
    """`smpl24_to_humanml` for many named samples sharing fps and frame, vectorized by `joints_to_features_batch`."""
    names = list(motions)
    joints = [prepare_joints22(motions[n], fps, frame, n) for n in names]
    try:
        features = joints_to_features_batch(joints)
    except MotionError:
        for name, seq in zip(names, joints, strict=True):  # the batch error names an index: re-raise with the id
            _features(seq, name)
        raise
    return {n: TargetMotion(f, j) for n, f, j in zip(names, features, joints, strict=True)}


# --------------------------------------------------------------------------------------------------------------------
# the raw 24-joint directory format
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Joints24Info:
    """`info.json` of a 24-joint directory: the frame rate and coordinate frame every array shares."""

    fps: float = 30.0
    frame: str = "camera_y_down"
    joints: str = JOINTS24

    def __post_init__(self) -> None:
        _check_fps(self.fps, "fps")
        _check_frame(self.frame)
        if self.joints != JOINTS24:
            raise ValueError(f"joints={self.joints!r}: only {JOINTS24!r} (the 24 SMPL joints in SMPL order) is known")


def read_joints24_info(root: str | Path) -> Joints24Info:
    path = Path(root) / INFO_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: a 24-joint directory needs {INFO_FILE} like "
            f'{{"fps": 30, "frame": "camera_y_down", "joints": "smpl24"}} beside {JOINTS_SUBDIR}/'
        )
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    known = set(Joints24Info.__dataclass_fields__)
    missing = sorted(known - set(data))
    if missing:
        raise ValueError(f"{path}: missing key(s) {missing}; expected {sorted(known)}")
    extra = sorted(set(data) - known)
    if extra:
        log.warning("%s: ignoring unknown key(s) %s", path, extra)
    try:
        return Joints24Info(**{k: data[k] for k in known})
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err


def list_joints24(root: str | Path) -> list[str]:
    """Sorted sample ids (file stems) of `<root>/joints24/*.npy`."""
    folder = Path(root) / JOINTS_SUBDIR
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} not found: a 24-joint directory keeps one (T, 24, 3) .npy per sample there")
    return sorted(p.stem for p in folder.glob("*.npy"))


def load_joints24(root: str | Path, sample_id: str) -> np.ndarray:
    """One (T, 24, 3) float32 array; errors name the file."""
    path = Path(root) / JOINTS_SUBDIR / f"{sample_id}.npy"
    try:
        joints = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"{path}: not a readable .npy array ({err})") from err
    if joints.ndim != 3 or joints.shape[1:] != (NUM_SMPL24, 3) or joints.dtype.kind != "f":
        raise ValueError(
            f"{path}: expected float joints of shape (T, {NUM_SMPL24}, 3), got {joints.dtype} {joints.shape}"
        )
    return joints.astype(np.float32, copy=False)


def iter_joints24(root: str | Path, sample_ids: Iterable[str] | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """(sample id, joints) pairs of a 24-joint directory, in sorted id order unless `sample_ids` is given."""
    for sample_id in list_joints24(root) if sample_ids is None else sample_ids:
        yield sample_id, load_joints24(root, sample_id)


def write_joints24_dir(root: str | Path, motions: Mapping[str, np.ndarray], info: Joints24Info) -> None:
    """Write `motions` {id: (T, 24, 3)} and `info.json`; the inverse of `read_joints24_info` + `iter_joints24`."""
    folder = Path(root) / JOINTS_SUBDIR
    folder.mkdir(parents=True, exist_ok=True)
    for sample_id, joints in motions.items():
        joints = np.asarray(joints, dtype=np.float32)
        if joints.ndim != 3 or joints.shape[1:] != (NUM_SMPL24, 3):
            raise ValueError(f"{sample_id}: expected joints of shape (T, {NUM_SMPL24}, 3), got {joints.shape}")
        if Path(sample_id).name != sample_id or not sample_id:
            raise ValueError(f"sample id {sample_id!r} must be a plain file name")
        np.save(folder / f"{sample_id}.npy", joints)
    (Path(root) / INFO_FILE).write_text(json.dumps(asdict(info), indent=2) + "\n")


def joints24_dir_to_humanml(root: str | Path, sample_ids: Iterable[str] | None = None) -> dict[str, TargetMotion]:
    """Read a 24-joint directory and convert every (or the listed) sample to HumanML3D form."""
    info = read_joints24_info(root)
    motions = dict(iter_joints24(root, sample_ids))
    log.info("converting %d samples from %s (%s at %g fps)", len(motions), root, info.frame, info.fps)
    return smpl24_to_humanml_many(motions, info.fps, info.frame)
