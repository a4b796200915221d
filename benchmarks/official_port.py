"""Baseline for `bench_motion.py`: HumanML3D's `process_file` written plainly, the way the official code computes it.

Written from the description in reference/humanml3d_vibe_ntu.md section 1 (not copied). It keeps the official code's
cost profile, because a benchmark baseline is only honest if it does the work the official code does:

* Python loops over the kinematic chains and their joints, each step over all frames of the clip at once;
* `uniform_skeleton` really runs inverse kinematics and then forward kinematics onto the target offsets;
* small quaternion helpers that, like the official `*_np` wrappers in `common/quaternion.py`, move their numpy
  inputs into float32 torch tensors, compute there, and hand back numpy arrays;
* every official quirk: the swapped hip pair and Gaussian-smoothed facing of the IK, the identity root rotation of
  frame 0, chains (arms included) starting from the root rotation, arcsin of the y component as rotation velocity.

It imports nothing from `kinemic` except through its caller (the target offsets), so it checks the library's
constants as well as its algorithm. Not part of the library: it exists to be timed against `kinemic.motion`.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d

# paramUtil.py: chains (right leg, left leg, spine, right arm, left arm) and unit rest directions (head along +Z).
CHAINS = ((0, 2, 5, 8, 11), (0, 1, 4, 7, 10), (0, 3, 6, 9, 12, 15), (9, 14, 17, 19, 21), (9, 13, 16, 18, 20))
RAW_OFFSETS = np.array(
    [
        [0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, -1, 0], [0, 1, 0], [0, -1, 0],
        [0, -1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0], [1, 0, 0], [-1, 0, 0], [0, 0, 1],
        [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0],
    ],
    dtype=np.float64,
)
PARENTS = [-1] * 22
for _chain in CHAINS:
    for _a, _b in zip(_chain[:-1], _chain[1:], strict=True):
        PARENTS[_b] = _a

# motion_representation.ipynb constants.
FACE_JOINT_INDX = (2, 1, 17, 16)  # documented as r_hip, l_hip, sdr_r, sdr_l
L_IDX1, L_IDX2 = 5, 8  # "lower legs"
FID_R, FID_L = [8, 11], [7, 10]
FEET_THRE = 0.002
SMOOTH_SIGMA = 20


# --- quaternion helpers: numpy in, float32 torch inside, numpy out (the official wrappers' round trip) ---------------


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).float()


def qmul_np(q: np.ndarray, r: np.ndarray) -> np.ndarray:
    q, r = _t(q), _t(r)
    w1, x1, y1, z1 = q.unbind(-1)
    w2, x2, y2, z2 = r.unbind(-1)
    out = torch.stack(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ],
        dim=-1,
    )
    return out.numpy()


def qinv_np(q: np.ndarray) -> np.ndarray:
    return (_t(q) * torch.tensor([1.0, -1.0, -1.0, -1.0])).numpy()


def qrot_np(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    q, v = _t(q), _t(v)
    u = q[..., 1:]
    uv = torch.linalg.cross(u, v, dim=-1)
    uuv = torch.linalg.cross(u, uv, dim=-1)
    return (v + 2 * (q[..., :1] * uv + uuv)).numpy()


def qbetween_np(v0: np.ndarray, v1: np.ndarray) -> np.ndarray:
    v0, v1 = _t(v0), _t(v1)
    axis = torch.linalg.cross(v0, v1, dim=-1)
    w = torch.sqrt((v0 * v0).sum(-1, keepdim=True) * (v1 * v1).sum(-1, keepdim=True)) + (v0 * v1).sum(-1, keepdim=True)
    q = torch.cat([w, axis], dim=-1)
    return (q / q.norm(dim=-1, keepdim=True)).numpy()


def quat_to_cont6d_np(q: np.ndarray) -> np.ndarray:
    """First two columns of each rotation matrix, [column 0, column 1]."""
    q = _t(q)
    w, x, y, z = q.unbind(-1)
    s = 2.0 / (q * q).sum(-1)
    col0 = torch.stack([1 - s * (y * y + z * z), s * (x * y + w * z), s * (x * z - w * y)], dim=-1)
    col1 = torch.stack([s * (x * y - w * z), 1 - s * (x * x + z * z), s * (y * z + w * x)], dim=-1)
    return torch.cat([col0, col1], dim=-1).numpy()


# --- skeleton: offsets, IK, FK ----------------------------------------------------------------------------------------


def offsets_of_pose(pose: np.ndarray) -> np.ndarray:
    """Rest offsets (22, 3) of one pose: each raw direction times that pose's bone length."""
    offsets = np.zeros((22, 3))
    for j in range(1, 22):
        offsets[j] = RAW_OFFSETS[j] * np.linalg.norm(pose[j] - pose[PARENTS[j]])
    return offsets


def inverse_kinematics_np(joints: np.ndarray, smooth_forward: bool = False) -> np.ndarray:
    """Local rotations (T, 22, 4); entry 0 is the facing rotation."""
    l_hip, r_hip, sdr_r, sdr_l = FACE_JOINT_INDX  # unpacked in this (swapped) order on purpose, as the official code
    across = (joints[:, r_hip] - joints[:, l_hip]) + (joints[:, sdr_r] - joints[:, sdr_l])
    across = across / np.sqrt((across**2).sum(axis=-1))[:, None]
    forward = np.cross(np.array([[0.0, 1.0, 0.0]]), across, axis=-1)
    if smooth_forward:
        forward = gaussian_filter1d(forward, SMOOTH_SIGMA, axis=0, mode="nearest")
    forward = forward / np.sqrt((forward**2).sum(axis=-1))[..., None]
    root_quat = qbetween_np(forward, np.array([[0.0, 0.0, 1.0]]).repeat(len(joints), axis=0))
    root_quat[0] = (1.0, 0.0, 0.0, 0.0)

    quats = np.zeros(joints.shape[:-1] + (4,))
    quats[:, 0] = root_quat
    for chain in CHAINS:
        acc = root_quat
        for parent, child in zip(chain[:-1], chain[1:], strict=True):
            rest = RAW_OFFSETS[child][None].repeat(len(joints), axis=0)
            bone = joints[:, child] - joints[:, parent]
            bone = bone / np.sqrt((bone**2).sum(axis=-1))[:, None]
            local = qmul_np(qinv_np(acc), qbetween_np(rest, bone))
            quats[:, child] = local
            acc = qmul_np(acc, local)
    return quats


def forward_kinematics_np(quats: np.ndarray, root_pos: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Joint positions (T, 22, 3) from local rotations and the given offsets."""
    offsets = offsets[None].repeat(len(quats), axis=0)
    joints = np.zeros(quats.shape[:-1] + (3,))
    joints[:, 0] = root_pos
    for chain in CHAINS:
        acc = quats[:, 0]
        for parent, child in zip(chain[:-1], chain[1:], strict=True):
            acc = qmul_np(acc, quats[:, child])
            joints[:, child] = qrot_np(acc, offsets[:, child]) + joints[:, parent]
    return joints


def uniform_skeleton(positions: np.ndarray, target_offsets: np.ndarray) -> np.ndarray:
    """Re-target to the target bone lengths: IK on the source, FK with the target offsets, root scaled by leg length."""
    src = offsets_of_pose(positions[0])
    src_leg = np.abs(src[L_IDX1]).max() + np.abs(src[L_IDX2]).max()
    tgt_leg = np.abs(target_offsets[L_IDX1]).max() + np.abs(target_offsets[L_IDX2]).max()
    new_root = positions[:, 0] * (tgt_leg / src_leg)
    quats = inverse_kinematics_np(positions)
    return forward_kinematics_np(quats, new_root, target_offsets)


# --- process_file -------------------------------------------------------------------------------------------------


def foot_detect(positions: np.ndarray, thres: float) -> tuple[np.ndarray, np.ndarray]:
    def contact(fid: list[int]) -> np.ndarray:
        dx = (positions[1:, fid, 0] - positions[:-1, fid, 0]) ** 2
        dy = (positions[1:, fid, 1] - positions[:-1, fid, 1]) ** 2
        dz = (positions[1:, fid, 2] - positions[:-1, fid, 2]) ** 2
        return ((dx + dy + dz) < np.array([thres, thres])).astype(np.float64)

    return contact(FID_L), contact(FID_R)


def process_file(
    positions: np.ndarray, target_offsets: np.ndarray, feet_thre: float = FEET_THRE
) -> np.ndarray:
    """HumanML3D features (T-1, 263) float32 of joints (T, 22, 3), step by step as the official notebook."""
    positions = uniform_skeleton(np.asarray(positions, dtype=np.float64), target_offsets)

    # Floor, then the root of frame 0 at the XZ origin.
    positions[:, :, 1] -= positions.min(axis=0).min(axis=0)[1]
    first = positions[0].copy()
    positions = positions - first[0] * np.array([1.0, 0.0, 1.0])

    # Face +Z at frame 0 (process_file's own, correctly ordered, hips and shoulders).
    r_hip, l_hip, sdr_r, sdr_l = FACE_JOINT_INDX
    across = (first[r_hip] - first[l_hip]) + (first[sdr_r] - first[sdr_l])
    across = across / np.sqrt((across**2).sum())
    forward = np.cross(np.array([0.0, 1.0, 0.0]), across)
    forward = forward / np.sqrt((forward**2).sum())
    face = qbetween_np(forward[None], np.array([[0.0, 0.0, 1.0]]))[0]
    positions = qrot_np(np.ones(positions.shape[:-1] + (4,)) * face, positions)  # float32 from here, as official
    global_positions = positions.copy()

    feet_l, feet_r = foot_detect(positions, feet_thre)

    # get_cont6d_params
    quats = inverse_kinematics_np(positions, smooth_forward=True)
    cont6d = quat_to_cont6d_np(quats)
    r_rot = quats[:, 0].copy()
    velocity = qrot_np(r_rot[1:], positions[1:, 0] - positions[:-1, 0])
    r_velocity = qmul_np(r_rot[1:], qinv_np(r_rot[:-1]))

    # get_rifke: remove each frame's root XZ, turn into that frame's facing.
    positions[..., 0] -= positions[:, 0:1, 0]
    positions[..., 2] -= positions[:, 0:1, 2]
    positions = qrot_np(np.repeat(r_rot[:, None], positions.shape[1], axis=1), positions)

    num = len(positions)
    root_data = np.concatenate(
        [np.arcsin(r_velocity[:, 2:3]), velocity[:, [0, 2]], positions[:-1, 0, 1:2]], axis=-1
    )
    ric_data = positions[:, 1:].reshape(num, -1)
    rot_data = cont6d[:, 1:].reshape(num, -1)
    local_vel = qrot_np(
        np.repeat(r_rot[:-1, None], global_positions.shape[1], axis=1), global_positions[1:] - global_positions[:-1]
    ).reshape(num - 1, -1)
    data = np.concatenate([root_data, ric_data[:-1], rot_data[:-1], local_vel, feet_l, feet_r], axis=-1)
    return data.astype(np.float32)
