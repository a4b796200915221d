"""HumanML3D motion representation: SMPL-22 joints <-> 263-d features, exactly as the official code.

`joints_to_features` reproduces HumanML3D's `process_file` (motion_representation.ipynb) with every quirk the released
data depends on, because a teacher trained on HumanML3D only understands features made that way:

* re-targeting to the target skeleton (clip 000021) keeps the source bone directions, with the root scaled by the
  leg-length ratio about the world origin;
* floor = lowest joint over the whole clip; XZ origin = root of frame 0; frame 0 rotated to face +Z;
* the IK facing uses the *swapped* hip pair of `inverse_kinematics_np` (HumanML3D issues #55, #107, ...), is smoothed
  with a Gaussian (sigma 20 frames, mode 'nearest'), and frame 0's root rotation is forced to the identity;
* every kinematic chain starts from the root rotation, the arm chains included (issue #119);
* root angular velocity is arcsin of the y component of r[t+1] * conj(r[t]): a half angle, with the sign slip of
  issue #156 where the facing crosses 180 degrees;
* T input frames give T-1 feature rows.

Layout of a feature row (slices in FEATURE_SLICES): root rot-vel (1), root lin-vel xz (2), root y (1),
ric joints 1..21 (63), 6D rotations joints 1..21 (126), local velocities joints 0..21 (66), foot contacts (4).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d

from kinemic import rotations as rot
from kinemic.skeleton import (
    FACE_JOINTS,
    FEATURE_DIM,
    FOOT_CONTACT_THRESHOLD,
    FOOT_LEFT,
    FOOT_RIGHT,
    KINEMATIC_CHAIN,
    LOWER_LEG_JOINTS,
    NUM_JOINTS,
    PARENTS,
    RAW_OFFSETS,
    TARGET_OFFSETS,
    mirror_permutation,
)

FEATURE_SLICES = {
    "root_rot_vel": slice(0, 1),
    "root_lin_vel": slice(1, 3),
    "root_y": slice(3, 4),
    "ric": slice(4, 67),
    "rot6d": slice(67, 193),
    "local_vel": slice(193, 259),
    "foot_contact": slice(259, 263),
}
# Groups whose std HumanML3D scales by `feat_bias` for its evaluator statistics.
GLOBAL_GROUPS = ("root_rot_vel", "root_lin_vel", "root_y", "foot_contact")

FORWARD_SMOOTH_SIGMA = 20.0
_Z_AXIS = np.array([0.0, 0.0, 1.0])

# The first rotation of each chain is taken relative to the root rotation (quirk #119): these joints' "parent
# rotation" is the root's, whatever their real parent is.
_CHAIN_STARTS = {chain[1] for chain in KINEMATIC_CHAIN}


class MotionError(ValueError):
    """Raised when a motion cannot be turned into features (NaN, too short, undefined facing)."""


# --------------------------------------------------------------------------------------------------------------------
# joints -> features
# --------------------------------------------------------------------------------------------------------------------


def _check_joints(joints: np.ndarray, name: str) -> np.ndarray:
    joints = np.asarray(joints)
    if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3):
        raise MotionError(f"{name}: expected joints of shape (T, {NUM_JOINTS}, 3), got {joints.shape}")
    if joints.shape[0] < 2:
        raise MotionError(f"{name}: a motion needs at least 2 frames to have velocities, got {joints.shape[0]}")
    if not np.isfinite(joints).all():
        bad = np.argwhere(~np.isfinite(joints).all(axis=(1, 2)))[:, 0]
        raise MotionError(f"{name}: joints contain NaN or inf at frames {bad[:10].tolist()}")
    return joints.astype(np.float64)


def _pad_edge(sequences: Sequence[np.ndarray], length: int) -> np.ndarray:
    """Stack sequences into (B, length, ...) by repeating each one's last frame.

    Edge padding keeps every per-sequence computation exact: the floor minimum is unchanged and the Gaussian smoothing
    with mode 'nearest' sees the same values past the end of the valid frames.
    """
    out = np.empty((len(sequences), length) + sequences[0].shape[1:], dtype=np.float64)
    for i, seq in enumerate(sequences):
        out[i, : len(seq)] = seq
        out[i, len(seq) :] = seq[-1]
    return out


def _retarget(joints: np.ndarray, target_offsets: np.ndarray) -> np.ndarray:
    """Official `uniform_skeleton`: target bone lengths along the source bone directions, root scaled by leg length.

    The official code runs IK then FK; the composed rotation of each joint maps its rest direction exactly onto the
    source bone direction, so FK places the child at parent + target_length * source_direction, which is computed here
    directly. joints: (B, T, 22, 3).
    """
    target_lengths = np.linalg.norm(target_offsets, axis=-1)
    first = joints[:, 0]  # (B, 22, 3)
    src_leg = sum(np.linalg.norm(first[:, j] - first[:, PARENTS[j]], axis=-1) for j in LOWER_LEG_JOINTS)
    tgt_leg = sum(target_lengths[j] for j in LOWER_LEG_JOINTS)
    scale = tgt_leg / src_leg  # (B,)
    out = np.empty_like(joints)
    out[:, :, 0] = joints[:, :, 0] * scale[:, None, None]
    for j in range(1, NUM_JOINTS):
        p = PARENTS[j]
        direction = rot.normalize(joints[:, :, j] - joints[:, :, p])
        out[:, :, j] = out[:, :, p] + target_lengths[j] * direction
    return out


def _facing_quat_frame0(positions: np.ndarray) -> np.ndarray:
    """Rotation (B, 4) that makes frame 0 face +Z, from process_file's (correctly unpacked) hips and shoulders."""
    r_hip, l_hip, r_sdr, l_sdr = FACE_JOINTS
    first = positions[:, 0]
    across = rot.normalize((first[:, r_hip] - first[:, l_hip]) + (first[:, r_sdr] - first[:, l_sdr]))
    forward = rot.normalize(np.stack([across[:, 2], np.zeros(len(across)), -across[:, 0]], axis=-1))
    return rot.qbetween(forward, np.broadcast_to(_Z_AXIS, forward.shape))


def _root_quat_ik(positions: np.ndarray) -> np.ndarray:
    """Per-frame root rotations (B, T, 4) of `inverse_kinematics_np(smooth_forward=True)`, quirks included."""
    # The official function unpacks face_joint_idx=[2,1,17,16] as (l_hip, r_hip, sdr_r, sdr_l): the hip term is
    # reversed relative to process_file's frame-0 facing. Reproduced on purpose.
    l_hip, r_hip, r_sdr, l_sdr = FACE_JOINTS
    across = rot.normalize(
        (positions[..., r_hip, :] - positions[..., l_hip, :]) + (positions[..., r_sdr, :] - positions[..., l_sdr, :])
    )
    forward = np.stack([across[..., 2], np.zeros(across.shape[:-1]), -across[..., 0]], axis=-1)  # up x across
    forward = gaussian_filter1d(forward, FORWARD_SMOOTH_SIGMA, axis=1, mode="nearest")
    forward = rot.normalize(forward)
    root_quat = rot.qbetween(forward, np.broadcast_to(_Z_AXIS, forward.shape))
    root_quat[:, 0] = (1.0, 0.0, 0.0, 0.0)
    return root_quat


_PARENT_IDX = np.array(PARENTS[1:])
_CHAIN_START_MASK = np.array([j in _CHAIN_STARTS for j in range(1, NUM_JOINTS)])


def _local_rotations(positions: np.ndarray, root_quat: np.ndarray) -> np.ndarray:
    """Local rotations (B, T, 21, 4) of joints 1..21 from the official IK.

    Along a chain the accumulated rotation after joint k is exactly qbetween(rest_k, bone_k), so each local rotation
    is inv(parent's accumulated rotation) * qbetween(rest_k, bone_k); chain starts use the root rotation instead.
    """
    bones = rot.normalize(positions[..., 1:, :] - positions[..., _PARENT_IDX, :])  # (B, T, 21, 3)
    global_rot = rot.qbetween(np.broadcast_to(RAW_OFFSETS[1:], bones.shape), bones)
    with_root = np.concatenate([root_quat[..., None, :], global_rot], axis=-2)  # index j = joint j
    parent_rot = with_root[..., _PARENT_IDX, :]
    parent_rot[..., _CHAIN_START_MASK, :] = root_quat[..., None, :]
    return rot.qmul(rot.qinv(parent_rot), global_rot)


def _features_padded(joints: np.ndarray, target_offsets: np.ndarray, feet_threshold: float) -> np.ndarray:
    """Features (B, T-1, 263) of edge-padded joints (B, T, 22, 3), float64."""
    positions = _retarget(joints, target_offsets)
    positions[..., 1] -= positions[..., 1].min(axis=(1, 2))[:, None, None]  # floor
    positions[..., [0, 2]] -= positions[:, :1, :1, [0, 2]]  # root of frame 0 at the XZ origin
    face = _facing_quat_frame0(positions)
    positions = rot.qrot(face[:, None, None, :], positions)  # global_positions

    def contacts(feet: tuple[int, ...]) -> np.ndarray:
        step = positions[:, 1:, list(feet)] - positions[:, :-1, list(feet)]
        return ((step * step).sum(-1) < feet_threshold).astype(np.float64)

    feet_l, feet_r = contacts(FOOT_LEFT), contacts(FOOT_RIGHT)

    root_quat = _root_quat_ik(positions)
    cont6d = rot.quat_to_cont6d(_local_rotations(positions, root_quat))  # (B, T, 21, 6)
    root_step = positions[:, 1:, 0] - positions[:, :-1, 0]
    lin_vel = rot.qrot(root_quat[:, 1:], root_step)  # expressed in the facing of frame t+1
    rot_vel = np.arcsin(rot.qmul(root_quat[:, 1:], rot.qinv(root_quat[:, :-1]))[..., 2:3])

    ric = positions.copy()
    ric[..., [0, 2]] -= positions[:, :, :1, [0, 2]]
    ric = rot.qrot(root_quat[:, :, None, :], ric)

    local_vel = rot.qrot(root_quat[:, :-1, None, :], positions[:, 1:] - positions[:, :-1])  # facing of frame t

    b, t = joints.shape[:2]
    return np.concatenate(
        [
            rot_vel,
            lin_vel[..., [0, 2]],
            ric[:, :-1, 0, 1:2],
            ric[:, :-1, 1:].reshape(b, t - 1, -1),
            cont6d[:, :-1].reshape(b, t - 1, -1),
            local_vel.reshape(b, t - 1, -1),
            feet_l,
            feet_r,
        ],
        axis=-1,
    )


def joints_to_features(
    joints: np.ndarray,
    target_offsets: np.ndarray = TARGET_OFFSETS,
    feet_threshold: float = FOOT_CONTACT_THRESHOLD,
) -> np.ndarray:
    """HumanML3D features (T-1, 263) float32 of SMPL-22 joints (T, 22, 3): y-up, metres, 20 fps.

    Raises MotionError on NaN/inf, fewer than 2 frames, or a body whose facing direction is undefined.
    """
    return joints_to_features_batch([joints], target_offsets, feet_threshold)[0]


def joints_to_features_batch(
    sequences: Sequence[np.ndarray],
    target_offsets: np.ndarray = TARGET_OFFSETS,
    feet_threshold: float = FOOT_CONTACT_THRESHOLD,
    chunk_size: int = 24,
) -> list[np.ndarray]:
    """`joints_to_features` for many sequences of different lengths, vectorized over length-sorted chunks."""
    checked = [_check_joints(seq, f"sequence {i}") for i, seq in enumerate(sequences)]
    order = np.argsort([len(s) for s in checked], kind="stable")
    out: list[np.ndarray | None] = [None] * len(checked)
    for start in range(0, len(order), chunk_size):
        idx = order[start : start + chunk_size]
        length = max(len(checked[i]) for i in idx)
        with np.errstate(invalid="ignore", divide="ignore"):  # degenerate bodies give NaN, reported below
            feats = _features_padded(
                _pad_edge([checked[i] for i in idx], length), np.asarray(target_offsets, np.float64), feet_threshold
            )
        for row, i in enumerate(idx):
            f = feats[row, : len(checked[i]) - 1]
            if not np.isfinite(f).all():
                raise MotionError(
                    f"sequence {i}: the facing direction is undefined (hips and shoulders collinear with the "
                    "vertical, a zero-length bone, or a body facing exactly -Z); such motions cannot be encoded"
                )
            out[i] = f.astype(np.float32)
    return out  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------------------------------
# features -> joints
# --------------------------------------------------------------------------------------------------------------------


def _as_tensor(features) -> tuple[torch.Tensor, bool]:
    if isinstance(features, torch.Tensor):
        tensor, was_numpy = features, False
    else:
        array = np.ascontiguousarray(features)
        tensor, was_numpy = torch.from_numpy(array if array.flags.writeable else array.copy()), True
    if tensor.shape[-1] != FEATURE_DIM:
        raise MotionError(f"expected features with {FEATURE_DIM} dims in the last axis, got {tuple(tensor.shape)}")
    return tensor, was_numpy


def _recover_root(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    rot_vel = features[..., 0]
    angle = torch.zeros_like(rot_vel)
    angle[..., 1:] = rot_vel[..., :-1]
    angle = torch.cumsum(angle, dim=-1)
    quat = features.new_zeros(features.shape[:-1] + (4,))
    quat[..., 0] = torch.cos(angle)
    quat[..., 2] = torch.sin(angle)
    step = features.new_zeros(features.shape[:-1] + (3,))
    step[..., 1:, 0] = features[..., :-1, 1]
    step[..., 1:, 2] = features[..., :-1, 2]
    root = torch.cumsum(rot.qrot_torch(rot.qinv_torch(quat), step), dim=-2)
    root[..., 1] = features[..., 3]
    return quat, root


def recover_root(features):
    """Root rotation quaternions (..., T, 4) and positions (..., T, 3): the official `recover_root_rot_pos`.

    Runs the official torch operations in the same order, so float32 input reproduces the released files bit for bit.
    Accepts numpy arrays (returns numpy) or tensors (returns tensors, on their device).
    """
    tensor, was_numpy = _as_tensor(features)
    quat, root = _recover_root(tensor)
    return (quat.numpy(), root.numpy()) if was_numpy else (quat, root)


def _check_finite_features(features: torch.Tensor) -> None:
    """Non-finite features must fail here: a NaN root velocity spreads through the cumulative root trajectory to every
    later frame, so the joints would come back mostly NaN without a word."""
    finite = torch.isfinite(features)
    if bool(finite.all()):
        return
    bad_frames = ~finite.all(dim=-1)  # (..., T)
    first = [index[0] if len(index) == 1 else tuple(index) for index in torch.nonzero(bad_frames)[:5].tolist()]
    columns = torch.nonzero(~finite.reshape(-1, FEATURE_DIM).all(dim=0)).flatten().tolist()
    groups = [name for name, cols in FEATURE_SLICES.items() if any(cols.start <= c < cols.stop for c in columns)]
    raise MotionError(
        f"features {tuple(features.shape)} contain NaN or inf in {int(bad_frames.sum())} of {bad_frames.numel()} "
        f"frames (first {first}), feature columns {columns[:10]}{' ...' if len(columns) > 10 else ''} {groups}: "
        "joints cannot be recovered; check the model or the file that produced these features"
    )


def features_to_joints(features):
    """Joints (..., T, 22, 3) from features (..., T, 263): the official `recover_from_ric` (what `new_joints` holds).

    Raises MotionError naming the frames and feature columns when the features are not all finite.
    """
    tensor, was_numpy = _as_tensor(features)
    _check_finite_features(tensor)
    quat, root = _recover_root(tensor)
    ric = tensor[..., 4:67].reshape(tensor.shape[:-1] + (NUM_JOINTS - 1, 3))
    joints = rot.qrot_torch(rot.qinv_torch(quat[..., None, :]).expand(ric.shape[:-1] + (4,)), ric)
    joints[..., 0] += root[..., 0:1]
    joints[..., 2] += root[..., 2:3]
    joints = torch.cat([root.unsqueeze(-2), joints], dim=-2)
    return joints.numpy() if was_numpy else joints


def features_to_joints_rot(features: np.ndarray, offsets: np.ndarray = TARGET_OFFSETS) -> np.ndarray:
    """Joints from the 6D rotations and root trajectory (official `recover_from_rot`) by forward kinematics."""
    features = np.asarray(features)
    quat, root = recover_root(features)
    local = features[..., 67:193].reshape(features.shape[:-1] + (NUM_JOINTS - 1, 6))
    mats = rot.cont6d_to_matrix(local)  # (..., T, 21, 3, 3)
    offsets = np.asarray(offsets, dtype=features.dtype)
    joints = np.zeros(features.shape[:-1] + (NUM_JOINTS, 3), dtype=features.dtype)
    joints[..., 0, :] = root
    for chain in KINEMATIC_CHAIN:
        acc = rot.quat_to_matrix(quat)
        for parent, child in zip(chain[:-1], chain[1:], strict=True):
            acc = rot.matmul3(acc, mats[..., child - 1, :, :])
            joints[..., child, :] = rot.matvec3(acc, offsets[child]) + joints[..., parent, :]
    return joints


# --------------------------------------------------------------------------------------------------------------------
# mirroring
# --------------------------------------------------------------------------------------------------------------------


def mirror_features(features: np.ndarray) -> np.ndarray:
    """Features of the left/right mirrored motion (x negated, left and right joints swapped).

    Equal to `joints_to_features(mirror_joints(j))` when the target skeleton is left/right symmetric; HumanML3D's own
    target skeleton is not quite (left and right bones differ by up to 7 mm), so real mirrored files differ slightly.
    """
    features = np.asarray(features)
    if features.shape[-1] != FEATURE_DIM:
        raise MotionError(f"expected features with {FEATURE_DIM} dims in the last axis, got shape {features.shape}")
    out = features.copy()
    perm21 = mirror_permutation()[1:] - 1
    flip = np.array([-1.0, 1.0, 1.0], dtype=features.dtype)
    out[..., 0] = -features[..., 0]
    out[..., 1] = -features[..., 1]
    ric = features[..., 4:67].reshape(features.shape[:-1] + (21, 3))
    out[..., 4:67] = (ric[..., perm21, :] * flip).reshape(features.shape[:-1] + (63,))
    r6 = features[..., 67:193].reshape(features.shape[:-1] + (21, 6))[..., perm21, :]
    # M R M with M = diag(-1, 1, 1): column 0 -> -M c0, column 1 -> M c1.
    r6 = r6 * np.array([1.0, -1.0, -1.0, -1.0, 1.0, 1.0], dtype=features.dtype)
    out[..., 67:193] = r6.reshape(features.shape[:-1] + (126,))
    vel = features[..., 193:259].reshape(features.shape[:-1] + (22, 3))
    out[..., 193:259] = (vel[..., mirror_permutation(), :] * flip).reshape(features.shape[:-1] + (66,))
    out[..., 259:263] = features[..., [261, 262, 259, 260]]
    return out



# --------------------------------------------------------------------------------------------------------------------
# normalization
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureStats:
    """Per-dimension mean and std used to normalize features; travels with data and checkpoints."""

    mean: np.ndarray
    std: np.ndarray

    def __post_init__(self) -> None:
        for name in ("mean", "std"):
            value = getattr(self, name)
            if np.shape(value) != (FEATURE_DIM,):
                raise ValueError(f"FeatureStats.{name} must have shape ({FEATURE_DIM},), got {np.shape(value)}")
            if not np.isfinite(value).all():
                raise ValueError(f"FeatureStats.{name} contains NaN or inf")
        if (np.asarray(self.std) <= 0).any():
            raise ValueError("FeatureStats.std must be positive in every dimension")

    def normalize(self, features):
        """(x - mean) / std; works on numpy arrays and torch tensors."""
        return (features - _like(self.mean, features)) / _like(self.std, features)

    def denormalize(self, features):
        """x * std + mean; works on numpy arrays and torch tensors."""
        return features * _like(self.std, features) + _like(self.mean, features)

    def save(self, path: str | Path) -> None:
        np.savez(path, mean=np.asarray(self.mean, np.float32), std=np.asarray(self.std, np.float32))

    @classmethod
    def load(cls, path: str | Path) -> FeatureStats:
        with np.load(path) as data:
            missing = {"mean", "std"} - set(data.files)
            if missing:
                raise ValueError(f"{path}: normalization statistics lack {sorted(missing)}")
            return cls(mean=data["mean"].astype(np.float32), std=data["std"].astype(np.float32))


def _like(array: np.ndarray, reference):
    if isinstance(reference, np.ndarray):
        return array.astype(reference.dtype, copy=False)
    return torch.as_tensor(array, dtype=reference.dtype, device=reference.device)


def compute_stats(features: np.ndarray | Sequence[np.ndarray], feat_bias: float = 1.0) -> FeatureStats:
    """Mean/Std the HumanML3D way (`cal_mean_variance`): per-dim mean, per-dim std averaged within each feature group.

    feat_bias > 1 additionally divides the std of the global groups (root and foot contacts), as text-to-motion does for
    its evaluator statistics (effectively 25 in the released t2m_std.npy, because the division ran twice).
    """
    data = np.concatenate(list(features), axis=0) if not isinstance(features, np.ndarray) else features
    data = np.asarray(data, dtype=np.float64).reshape(-1, FEATURE_DIM)
    if len(data) == 0:
        raise ValueError("compute_stats needs at least one feature row")
    if not np.isfinite(data).all():
        raise ValueError("compute_stats: features contain NaN or inf; drop those sequences first")
    mean = data.mean(axis=0)
    std = data.std(axis=0)
    for sl in FEATURE_SLICES.values():
        std[sl] = std[sl].mean()
    if feat_bias != 1.0:
        std = scale_global_groups(std, feat_bias)
    return FeatureStats(mean=mean.astype(np.float32), std=std.astype(np.float32))


def scale_global_groups(std: np.ndarray, feat_bias: float) -> np.ndarray:
    """Divide the std of root and foot-contact groups by feat_bias (text-to-motion's evaluator statistics)."""
    out = np.array(std, dtype=np.float64, copy=True)
    for name in GLOBAL_GROUPS:
        out[FEATURE_SLICES[name]] /= feat_bias
    return out
