"""VIBE `vibe_output.pkl` -> SMPL-24 joints in VIBE's camera frame (y-down), at the video's frame rate.

One file is a joblib pickle of {track id: track dict} (reference/humanml3d_vibe_ntu.md section 3.1). The reader:

1. picks one track: the one with the most frames with an estimate, ties going to the lowest id (an NTU clip shows one
   performer for single-person classes; a short second track is usually a false detection). `track_id` forces one;
2. fills the holes in `frame_ids` (frames where tracking was lost) so the clip keeps its real timing: joint rotations
   are slerped per joint between the neighbouring estimates, betas are interpolated linearly;
3. averages betas over the clip (default): VIBE estimates them per frame, and their jitter moves the pelvis (J0 depends
   on betas) by about a centimetre, which the HumanML3D features would read as root motion;
4. runs the SMPL forward pass with translation 0 (VIBE gives no metric translation), as VIBE itself does.

The result stays in the camera frame at the native fps; `kinemic.formats.target_joints.smpl24_to_humanml` does the
axis change and resampling shared with the other target sources.

`vibe_output.pkl` is read with joblib, i.e. full pickle: only read files you produced or trust.
"""

from __future__ import annotations

import logging
import pickle
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from kinemic.formats.smpl import POSE_DIM, SMPLModel

log = logging.getLogger(__name__)

TRACK_KEYS = ("pose", "betas", "frame_ids")
# What joblib.load raises on damaged files: truncation mid-array (ValueError, struct.error), at the end (EOFError),
# garbage (UnpicklingError), a bad compressed stream (zlib.error), classes that no longer import (ImportError), ...
_UNPICKLE_ERRORS = (
    pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError, ImportError,
    struct.error, zlib.error, OSError,
)


class VibeError(ValueError):
    """Raised when a vibe_output.pkl cannot give a motion; the message names the file and the problem."""


@dataclass(frozen=True)
class VibeConfig:
    """How to turn one vibe_output.pkl into joints."""

    fps: float = 30.0  # VIBE writes one estimate per video frame; NTU RGB+D videos are 30 fps
    track_id: int | None = None  # None: the track with the most frames (ties: lowest id)
    average_betas: bool = True
    min_frames: int = 2

    def __post_init__(self) -> None:
        if not self.fps > 0:
            raise ValueError(f"fps={self.fps!r}: expected a positive frame rate")
        if self.min_frames < 2:
            raise ValueError(f"min_frames={self.min_frames}: a motion needs at least 2 frames")


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class VibeMotion:
    """The chosen track of one video as SMPL joints."""

    joints24: np.ndarray  # (T, 24, 3) float32, VIBE camera frame (x right, y down, z forward), metres, no translation
    fps: float
    track_id: int
    frame_ids: np.ndarray  # (T,) the video frames covered: first..last estimate, contiguous
    n_filled_frames: int  # frames interpolated because tracking was lost there
    betas: np.ndarray  # (10,) when averaged, else (T, 10)
    source: str  # the file read

    @property
    def num_frames(self) -> int:
        return len(self.joints24)


# --------------------------------------------------------------------------------------------------------------------
# reading and checking
# --------------------------------------------------------------------------------------------------------------------


def load_vibe_output(path: str | Path) -> dict[int, dict]:
    """The raw {track id: track dict} of a vibe_output.pkl, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"VIBE output not found: {path} (VIBE's demo.py writes <output_folder>/<video name>/vibe_output.pkl)"
        )
    try:
        data = joblib.load(path)
    except _UNPICKLE_ERRORS as err:
        raise VibeError(
            f"{path}: not a readable VIBE output pickle, corrupt or truncated ({type(err).__name__}: {err})"
        ) from err
    if not isinstance(data, dict):
        raise VibeError(f"{path}: expected a dict keyed by track id, got {type(data).__name__}")
    if not data:
        raise VibeError(f"{path}: no tracks (VIBE found no person, or every tracklet was shorter than its minimum)")
    tracks = {}
    for key, track in data.items():
        try:
            track_id = int(key)
        except (TypeError, ValueError) as err:
            raise VibeError(f"{path}: track key {key!r} is not an integer track id") from err
        if not isinstance(track, dict):
            raise VibeError(f"{path}: track {key!r} is a {type(track).__name__}, expected a dict")
        tracks[track_id] = track
    return tracks


def _track_arrays(track: dict, path: Path, track_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    where = f"{path}: track {track_id}"
    missing = [k for k in TRACK_KEYS if k not in track or track[k] is None]
    if missing:
        raise VibeError(
            f"{where}: missing key(s) {missing}; VIBE tracks carry {list(TRACK_KEYS)} (found {sorted(map(str, track))})"
        )
    try:
        pose = np.asarray(track["pose"], dtype=np.float64)
        betas = np.asarray(track["betas"], dtype=np.float64)
        frame_ids = np.asarray(track["frame_ids"])
    except (TypeError, ValueError) as err:
        raise VibeError(f"{where}: pose, betas and frame_ids must be numeric arrays ({err})") from err
    n = len(frame_ids)
    integral = frame_ids.dtype.kind in "iu" or (
        frame_ids.dtype.kind == "f" and np.isfinite(frame_ids).all() and (frame_ids == np.round(frame_ids)).all()
    )
    if frame_ids.ndim != 1 or not integral:
        raise VibeError(f"{where}: frame_ids must be a 1-d array of integers, got {frame_ids.dtype} {frame_ids.shape}")
    if pose.shape != (n, POSE_DIM):
        raise VibeError(
            f"{where}: pose has shape {pose.shape}, expected ({n}, {POSE_DIM}) axis-angle for {n} frame ids"
        )
    if betas.ndim != 2 or betas.shape[0] != n:
        raise VibeError(f"{where}: betas has shape {betas.shape}, expected ({n}, num_betas)")
    if n and np.any(np.diff(frame_ids) <= 0):
        raise VibeError(f"{where}: frame_ids are not strictly increasing (duplicates or out of order)")
    for key, array in (("pose", pose), ("betas", betas)):
        if not np.isfinite(array).all():
            bad = frame_ids[~np.isfinite(array).all(axis=1)]
            raise VibeError(f"{where}: {key} contains NaN or inf at video frames {bad[:10].tolist()}")
    return frame_ids.astype(np.int64), pose, betas


def select_track(tracks: dict[int, dict], track_id: int | None = None, source: str = "<tracks>") -> int:
    """The track to use: `track_id` if given, else the one with the most frames (ties: lowest id)."""
    if track_id is not None:
        if track_id not in tracks:
            raise VibeError(f"{source}: track_id={track_id} not found; tracks are {sorted(tracks)}")
        return track_id
    lengths = {tid: len(np.asarray(t.get("frame_ids", ()))) for tid, t in tracks.items()}
    chosen = min(lengths, key=lambda tid: (-lengths[tid], tid))
    if len(tracks) > 1:
        log.info("%s: %d tracks %s, using track %d", source, len(tracks), lengths, chosen)
    return chosen


# --------------------------------------------------------------------------------------------------------------------
# gap filling
# --------------------------------------------------------------------------------------------------------------------


def fill_gaps(frame_ids: np.ndarray, pose: np.ndarray, betas: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Complete a track over every frame from its first to its last estimate.

    Returns (all frame ids, pose (T, 72), betas (T, B)). Known frames are kept bit for bit; each missing frame gets,
    per joint, the slerp of the neighbouring estimated rotations (axis-angle lerp would take a wrong path between
    rotations far apart or near the pi wrap), and linearly interpolated betas.
    """
    if len(frame_ids) == 0:
        raise ValueError("fill_gaps: the track has no frames")
    full_ids = np.arange(frame_ids[0], frame_ids[-1] + 1)
    if len(full_ids) == len(frame_ids):
        return full_ids, pose.copy(), betas.copy()
    missing = np.setdiff1d(full_ids, frame_ids)
    out_pose = np.empty((len(full_ids), pose.shape[1]))
    out_pose[frame_ids - frame_ids[0]] = pose
    rotvecs = pose.reshape(len(frame_ids), -1, 3)  # (n, 24, 3)
    filled = np.empty((len(missing), rotvecs.shape[1], 3))
    for joint in range(rotvecs.shape[1]):
        slerp = Slerp(frame_ids.astype(np.float64), Rotation.from_rotvec(rotvecs[:, joint]))
        filled[:, joint] = slerp(missing.astype(np.float64)).as_rotvec()
    out_pose[missing - frame_ids[0]] = filled.reshape(len(missing), -1)
    out_betas = np.stack([np.interp(full_ids, frame_ids, betas[:, k]) for k in range(betas.shape[1])], axis=1)
    out_betas[frame_ids - frame_ids[0]] = betas
    return full_ids, out_pose, out_betas


# --------------------------------------------------------------------------------------------------------------------
# main entry
# --------------------------------------------------------------------------------------------------------------------


def read_vibe(path: str | Path, smpl: SMPLModel, config: VibeConfig | None = None) -> VibeMotion:
    """Read one vibe_output.pkl and return the chosen track as SMPL-24 joints in VIBE's camera frame."""
    config = VibeConfig() if config is None else config
    path = Path(path)
    tracks = load_vibe_output(path)
    track_id = select_track(tracks, config.track_id, str(path))
    frame_ids, pose, betas = _track_arrays(tracks[track_id], path, track_id)
    if len(frame_ids) < config.min_frames:
        raise VibeError(
            f"{path}: track {track_id} has {len(frame_ids)} frame(s); at least {config.min_frames} are needed"
        )
    if betas.shape[1] < smpl.num_betas:
        raise VibeError(f"{path}: track {track_id} has {betas.shape[1]} betas, the SMPL model uses {smpl.num_betas}")
    betas = betas[:, : smpl.num_betas]
    mean_betas = betas.mean(axis=0)  # over the estimated frames only, so filled frames do not weigh in
    full_ids, pose, betas = fill_gaps(frame_ids, pose, betas)
    n_filled = len(full_ids) - len(frame_ids)
    if n_filled:
        log.info("%s: track %d: filled %d missing frame(s)", path, track_id, n_filled)
    if config.average_betas:
        betas = mean_betas
    joints = smpl.forward(pose, betas)
    return VibeMotion(
        joints24=joints.astype(np.float32),
        fps=float(config.fps),
        track_id=track_id,
        frame_ids=full_ids,
        n_filled_frames=n_filled,
        betas=betas.astype(np.float32),
        source=str(path),
    )
