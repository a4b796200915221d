"""A SMPL-24 body in a realistic rest pose, and its motion by forward kinematics.

Motions in the embedded world are joint-angle curves (`Track`) turned into joint positions here, so bone lengths stay
exactly constant and HumanML3D's feature extraction has to recover real rotations with its IK. The rest pose is an
anatomical standing pose (y-up, facing +Z, the body's left on +X, arms hanging), not HumanML3D's `RAW_OFFSETS`, which
are only the IK's reference directions (its head points +Z).

Joint angles are Euler angles in radians per joint, relative to the rest pose, composed as R = Ry(y) Rx(x) Rz(z):

* x (sagittal): + bends the spine forward, + flexes the knee and points the toes down; - swings a thigh or an arm
  forward (hip and shoulder flexion) and bends the elbow of a hanging arm forward;
* z (frontal): + raises the *left* arm or leg sideways and leans the spine to the right;
* y (about the vertical): + turns toward the body's left.

A left/right mirror swaps paired joints and negates y and z (`mirror_track`), so primitives are written for one side.
The root (joint 0) angle is the pelvis tilt relative to the heading; the heading itself is the integrated `yaw_rate`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kinemic.rotations import matmul3, matvec3
from kinemic.skeleton import SMPL24_PARENTS, TARGET_BONE_LENGTHS, mirror_permutation

NUM_BODY_JOINTS = 24
HAND_LENGTH = 0.085  # SMPL's wrist -> hand joint, absent from HumanML3D's 22-joint target skeleton

# Unit directions of each joint from its parent in the rest pose (normalised below). Hips lateral and slightly down,
# legs down, feet forward-down from the ankles, spine up, head up-forward from the neck, collars lateral-up,
# arms hanging a little away from the body.
_REST_DIRECTIONS_RAW = np.array(
    [
        [0.0, 0.0, 0.0],  # 0 pelvis
        [0.62, -0.78, -0.06],  # 1 left_hip
        [-0.62, -0.78, -0.06],  # 2 right_hip
        [0.0, 1.0, -0.12],  # 3 spine1
        [0.05, -1.0, 0.01],  # 4 left_knee
        [-0.05, -1.0, 0.01],  # 5 right_knee
        [0.0, 1.0, 0.04],  # 6 spine2
        [-0.02, -1.0, -0.06],  # 7 left_ankle
        [0.02, -1.0, -0.06],  # 8 right_ankle
        [0.0, 1.0, 0.3],  # 9 spine3
        [0.12, -0.38, 0.92],  # 10 left_foot
        [-0.12, -0.38, 0.92],  # 11 right_foot
        [0.0, 1.0, -0.15],  # 12 neck
        [0.45, 0.85, -0.25],  # 13 left_collar
        [-0.45, 0.85, -0.25],  # 14 right_collar
        [0.0, 0.85, 0.5],  # 15 head
        [0.95, -0.2, -0.1],  # 16 left_shoulder
        [-0.95, -0.2, -0.1],  # 17 right_shoulder
        [0.12, -1.0, -0.02],  # 18 left_elbow
        [-0.12, -1.0, -0.02],  # 19 right_elbow
        [0.02, -1.0, 0.12],  # 20 left_wrist
        [-0.02, -1.0, 0.12],  # 21 right_wrist
        [0.0, -1.0, 0.05],  # 22 left_hand
        [0.0, -1.0, 0.05],  # 23 right_hand
    ]
)
REST_DIRECTIONS = _REST_DIRECTIONS_RAW / np.maximum(np.linalg.norm(_REST_DIRECTIONS_RAW, axis=1, keepdims=True), 1e-12)
REST_BONE_LENGTHS = np.concatenate([TARGET_BONE_LENGTHS, [HAND_LENGTH, HAND_LENGTH]])

# Bone groups scaled together by the per-subject proportion jitter (left and right stay symmetric).
_BONE_GROUPS = {
    "pelvis": (1, 2),
    "thigh": (4, 5),
    "shank": (7, 8),
    "foot": (10, 11),
    "spine": (3, 6, 9),
    "neck": (12, 15),
    "shoulder": (13, 14, 16, 17),
    "upper_arm": (18, 19),
    "forearm": (20, 21, 22, 23),
}

FOOT_CLEARANCE = 0.03  # height of the SMPL foot joint (ball of the foot) above the floor when standing
_SOFTMIN_TAU = 0.02  # m: how sharply the lower foot takes the body's weight


@dataclass(frozen=True)
class Body:
    """One subject: rest offsets (24, 3) of each joint from its parent, metres, y-up, facing +Z."""

    offsets: np.ndarray
    height_scale: float = 1.0

    @property
    def bone_lengths(self) -> np.ndarray:
        return np.linalg.norm(self.offsets, axis=1)


def default_body() -> Body:
    """The HumanML3D target skeleton's bone lengths in the rest pose."""
    return Body(offsets=REST_DIRECTIONS * REST_BONE_LENGTHS[:, None], height_scale=1.0)


def sample_body(rng: np.random.Generator, height_range: tuple[float, float], proportion_sd: float) -> Body:
    """A random subject: a global height scale times symmetric per-group bone-length jitter."""
    lo, hi = height_range
    if not 0 < lo <= hi:
        raise ValueError(f"height_range={height_range!r}: expected 0 < low <= high (scale factors, e.g. [0.86, 1.14])")
    scale = rng.uniform(lo, hi)
    lengths = REST_BONE_LENGTHS * scale
    for bones in _BONE_GROUPS.values():
        lengths[list(bones)] *= float(np.clip(1.0 + proportion_sd * rng.standard_normal(), 0.8, 1.2))
    return Body(offsets=REST_DIRECTIONS * lengths[:, None], height_scale=float(scale))


# --------------------------------------------------------------------------------------------------------------------
# rotations
# --------------------------------------------------------------------------------------------------------------------


def rot_x(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    one, zero = np.ones_like(a), np.zeros_like(a)
    return np.stack([one, zero, zero, zero, c, -s, zero, s, c], axis=-1).reshape(np.shape(a) + (3, 3))


def rot_y(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    one, zero = np.ones_like(a), np.zeros_like(a)
    return np.stack([c, zero, s, zero, one, zero, -s, zero, c], axis=-1).reshape(np.shape(a) + (3, 3))


def rot_z(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    one, zero = np.ones_like(a), np.zeros_like(a)
    return np.stack([c, -s, zero, s, c, zero, zero, zero, one], axis=-1).reshape(np.shape(a) + (3, 3))


def euler_to_matrix(angles: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of Euler angles (..., 3) = (x, y, z) radians, composed Ry @ Rx @ Rz."""
    return matmul3(matmul3(rot_y(angles[..., 1]), rot_x(angles[..., 0])), rot_z(angles[..., 2]))


def forward_kinematics(offsets: np.ndarray, root_rot: np.ndarray, local_rot: np.ndarray) -> np.ndarray:
    """Joint positions (T, 24, 3) with the root at the origin.

    offsets (24, 3); root_rot (T, 3, 3) global rotation of the pelvis; local_rot (T, 24, 3, 3) with entry 0 unused.
    Each joint's rotation turns the bones of its children, so joint j sits at parent + G[parent] @ offset[j].
    """
    num = local_rot.shape[0]
    positions = np.zeros((num, NUM_BODY_JOINTS, 3))
    glob = [root_rot] + [None] * (NUM_BODY_JOINTS - 1)
    for j in range(1, NUM_BODY_JOINTS):
        p = SMPL24_PARENTS[j]
        positions[:, j] = positions[:, p] + matvec3(glob[p], offsets[j])
        glob[j] = matmul3(glob[p], local_rot[:, j])
    return positions


# --------------------------------------------------------------------------------------------------------------------
# tracks and animation
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class Track:
    """Joint-angle curves of T frames: the input of `animate`.

    angles (T, 24, 3) Euler radians relative to the rest pose; yaw_rate (T,) rad/s about +Y; velocity (T, 2) extra
    root velocity (lateral x, forward z) m/s in the body's heading frame, used while airborne; lift (T,) root height
    above the supporting foot (jumps, running flight); flight (T,) in [0, 1]: how far the feet are off the ground
    (1 disables foot anchoring). Tracks add: primitives are deltas from the rest pose, blended by their envelopes.
    """

    angles: np.ndarray
    yaw_rate: np.ndarray
    velocity: np.ndarray
    lift: np.ndarray
    flight: np.ndarray

    @classmethod
    def zeros(cls, num_frames: int) -> Track:
        return cls(
            angles=np.zeros((num_frames, NUM_BODY_JOINTS, 3)),
            yaw_rate=np.zeros(num_frames),
            velocity=np.zeros((num_frames, 2)),
            lift=np.zeros(num_frames),
            flight=np.zeros(num_frames),
        )

    def __len__(self) -> int:
        return len(self.yaw_rate)

    def add(self, other: Track, start: int, weight: np.ndarray | None = None) -> None:
        """Add `other` (optionally scaled per frame by `weight`) into frames [start, start + len(other)), clipped."""
        lo, hi = max(start, 0), min(start + len(other), len(self))
        if hi <= lo:
            return
        src = slice(lo - start, hi - start)
        w = np.ones(len(other)) if weight is None else np.asarray(weight, dtype=np.float64)
        w = w[src]
        self.angles[lo:hi] += w[:, None, None] * other.angles[src]
        self.yaw_rate[lo:hi] += w * other.yaw_rate[src]
        self.velocity[lo:hi] += w[:, None] * other.velocity[src]
        self.lift[lo:hi] += w * other.lift[src]
        self.flight[lo:hi] += w * other.flight[src]


def mirror_track(track: Track) -> Track:
    """The left/right mirror image: swap paired joints, negate y and z angles, lateral velocity and yaw rate."""
    perm = mirror_permutation(NUM_BODY_JOINTS)
    angles = track.angles[:, perm].copy()
    angles[..., 1:] *= -1.0
    velocity = track.velocity.copy()
    velocity[:, 0] *= -1.0
    return Track(angles, -track.yaw_rate, velocity, track.lift.copy(), track.flight.copy())


def _softmin_weights(heights: np.ndarray, tau: float = _SOFTMIN_TAU) -> np.ndarray:
    """Weights (T, K) that favour the lowest of K heights (T, K); rows sum to 1."""
    z = -(heights - heights.min(axis=1, keepdims=True)) / tau
    w = np.exp(z)
    return w / w.sum(axis=1, keepdims=True)


def animate(
    body: Body, track: Track, fps: float, start_yaw: float = 0.0, start_xz: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """Joint positions (T, 24, 3), y-up metres, of a body following a track.

    The root height keeps the lower foot on the floor (plus `lift` for flight), and the root moves horizontally so that
    the supporting foot stays planted: walking emerges from the legs' swing instead of a scripted root path, and
    in-place actions do not slide. `velocity` adds airborne travel (running, jumping forward).
    """
    num = len(track)
    yaw = start_yaw + np.concatenate([[0.0], np.cumsum(track.yaw_rate[:-1]) / fps])
    heading = rot_y(yaw)  # (T, 3, 3)
    root_rot = matmul3(heading, euler_to_matrix(track.angles[:, 0]))
    local = euler_to_matrix(track.angles)
    rel = forward_kinematics(body.offsets, root_rot, local)

    # Ground height of each leg: the lower of its foot joint and its ankle, both measured against their rest heights.
    rest = forward_kinematics(body.offsets, np.eye(3)[None], np.broadcast_to(np.eye(3), (1, NUM_BODY_JOINTS, 3, 3)))[0]
    ankle_clear = rest[7, 1] - rest[10, 1] + FOOT_CLEARANCE
    legs = ((7, 10), (8, 11))
    ground = np.stack(
        [np.minimum(rel[:, f, 1] - FOOT_CLEARANCE, rel[:, a, 1] - ankle_clear) for a, f in legs], axis=1
    )  # (T, 2)
    weights = _softmin_weights(ground)
    root_y = -(weights * ground).sum(axis=1) + track.lift

    # Foot anchoring: move the root against the weighted displacement of the feet (root-relative, world-rotated).
    feet_xz = np.stack([0.5 * (rel[:, a][:, [0, 2]] + rel[:, f][:, [0, 2]]) for a, f in legs], axis=1)  # (T, 2, 2)
    foot_step = feet_xz[1:] - feet_xz[:-1]  # (T-1, 2, 2)
    w_mid = 0.5 * (weights[1:] + weights[:-1])
    anchored = -(w_mid[..., None] * foot_step).sum(axis=1)  # (T-1, 2)
    grounded = 1.0 - np.clip(0.5 * (track.flight[1:] + track.flight[:-1]), 0.0, 1.0)
    vel_body = np.stack([track.velocity[:, 0], np.zeros(num), track.velocity[:, 1]], axis=-1)
    vel_world = matvec3(heading, vel_body)[:, [0, 2]]
    step = grounded[:, None] * anchored + 0.5 * (vel_world[1:] + vel_world[:-1]) / fps
    root_xz = np.asarray(start_xz, dtype=np.float64) + np.concatenate([np.zeros((1, 2)), np.cumsum(step, axis=0)])

    root = np.stack([root_xz[:, 0], root_y, root_xz[:, 1]], axis=-1)
    return rel + root[:, None, :]
