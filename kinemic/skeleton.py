"""The SMPL-22 body used by HumanML3D: joint names, parents, kinematic chain and skeleton offsets.

All constants follow the official HumanML3D code (`paramUtil.py`, `motion_representation.ipynb`):
y-up, metres, rest pose facing +Z with the body's left on +X.
"""

from __future__ import annotations

import numpy as np

NUM_JOINTS = 22
FEATURE_DIM = 263
FPS = 20

JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
)

# SMPL's 24-joint body adds the two hands, which HumanML3D drops.
SMPL24_JOINT_NAMES = JOINT_NAMES + ("left_hand", "right_hand")
SMPL24_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)

PARENTS = SMPL24_PARENTS[:NUM_JOINTS]

# `t2m_kinematic_chain`: right leg, left leg, spine to head, right arm, left arm (arms start at spine3).
KINEMATIC_CHAIN = (
    (0, 2, 5, 8, 11),
    (0, 1, 4, 7, 10),
    (0, 3, 6, 9, 12, 15),
    (9, 14, 17, 19, 21),
    (9, 13, 16, 18, 20),
)

# `t2m_raw_offsets`: unit rest direction of each joint from its parent. The head (15) points +Z, not +Y.
RAW_OFFSETS = np.array(
    [
        [0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, -1, 0], [0, 1, 0], [0, -1, 0],
        [0, -1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0], [1, 0, 0], [-1, 0, 0], [0, 0, 1],
        [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0],
    ],
    dtype=np.float64,
)

# Bone lengths (m) of the HumanML3D target skeleton for joints 0..21: the official `tgt_offsets`, measured on frame 0 of
# clip 000021 (float32 values). Every HumanML3D motion is re-targeted to these lengths; they equal the bone lengths of
# the shipped new_joints/012314.npy to 2e-7.
TARGET_BONE_LENGTHS = np.array(
    [
        0.0, 0.10307393, 0.10988342, 0.13156824, 0.39362326, 0.39018813, 0.14319022, 0.4324331, 0.42564353,
        0.057364736, 0.14338185, 0.14941902, 0.21936005, 0.13748674, 0.14338286, 0.10303922, 0.13161404,
        0.12298444, 0.2568399, 0.2630917, 0.26601195, 0.26987645,
    ],
    dtype=np.float32,
).astype(np.float64)
TARGET_OFFSETS = RAW_OFFSETS * TARGET_BONE_LENGTHS[:, None]

# Indices the official feature extraction uses.
FACE_JOINTS = (2, 1, 17, 16)  # r_hip, l_hip, r_shoulder, l_shoulder
LOWER_LEG_JOINTS = (5, 8)  # right knee and right ankle: their offsets define "leg length"
FOOT_LEFT = (7, 10)
FOOT_RIGHT = (8, 11)
FOOT_CONTACT_THRESHOLD = 0.002  # squared displacement per frame at 20 fps

# The skeleton graph of the ST-GCN classifiers (ours, PYSKL's, mmaction2's): (child, parent) edges pointing toward
# the root (PYSKL's `inward`), and the centre of the 'stgcn_spatial' partition. The centre is spine3 (9), where neck
# and both collars branch off: the structural twin of NTU's spine-shoulder centre (joint 21) in PYSKL's `nturgb+d`
# layout; the pelvis (0) is the other sensible choice.
SMPL22_INWARD: tuple[tuple[int, int], ...] = tuple(
    (child, parent) for child, parent in enumerate(PARENTS) if parent >= 0
)
SMPL22_CENTER = 9

LEFT_JOINTS = (1, 4, 7, 10, 13, 16, 18, 20)
RIGHT_JOINTS = (2, 5, 8, 11, 14, 17, 19, 21)


def mirror_permutation(num_joints: int = NUM_JOINTS) -> np.ndarray:
    """Joint index permutation that swaps left and right (HumanML3D `swap_left_right`)."""
    perm = np.arange(num_joints)
    for left, right in zip(LEFT_JOINTS, RIGHT_JOINTS, strict=True):
        if right < num_joints:
            perm[left], perm[right] = right, left
    if num_joints == 24:
        perm[22], perm[23] = 23, 22
    return perm


def mirror_joints(joints: np.ndarray) -> np.ndarray:
    """Mirror joint positions (..., J, 3) across the YZ plane: negate x and swap left/right joints."""
    out = joints[..., mirror_permutation(joints.shape[-2]), :].copy()
    out[..., 0] *= -1
    return out


def bone_lengths(joints: np.ndarray, parents: tuple[int, ...] = PARENTS) -> np.ndarray:
    """Per-frame bone lengths (..., J) of joint positions (..., J, 3); the root gets 0."""
    parent_idx = np.array([max(p, 0) for p in parents])
    lengths = np.linalg.norm(joints - joints[..., parent_idx, :], axis=-1)
    lengths[..., 0] = 0.0
    return lengths


def offsets_from_joints(pose: np.ndarray) -> np.ndarray:
    """Offsets of one pose (22, 3) as the official `Skeleton.get_offsets_joints`: raw direction * bone length."""
    return RAW_OFFSETS * bone_lengths(pose)[:, None]


def leg_length(offsets: np.ndarray) -> float:
    """HumanML3D's leg length: max |component| of the lower-leg offsets (right knee + right ankle)."""
    return float(sum(np.abs(offsets[j]).max() for j in LOWER_LEG_JOINTS))
