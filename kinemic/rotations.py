"""Vectorized quaternion and 6D rotation helpers (numpy and torch).

Quaternions are (w, x, y, z), Hamilton convention, broadcasting over leading dimensions. The formulas are the ones the
official HumanML3D code uses (`common/quaternion.py`), so features computed with them reproduce the released data.
The 6D representation is the first two *columns* of the rotation matrix, as in HumanML3D's `quaternion_to_cont6d`.
"""

from __future__ import annotations

import numpy as np
import torch


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product over the last axis, written out: np.cross is slow on many small vectors."""
    ax, ay, az = a[..., 0], a[..., 1], a[..., 2]
    bx, by, bz = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx], axis=-1)


def matmul3(a, b):
    """Stacked 3x3 matrix products a @ b over leading dimensions, written out as elementwise products and sums.

    Why not `@`: numpy hands stacked products to BLAS, whose kernel (and so the rounding: FMA or not, summation order)
    depends on the CPU, so the data stages would give other bytes on another machine. Elementwise multiplies and adds
    round the same everywhere. Works on numpy arrays and torch tensors alike.
    """
    return (a[..., :, 0, None] * b[..., None, 0, :] + a[..., :, 1, None] * b[..., None, 1, :]
            + a[..., :, 2, None] * b[..., None, 2, :])


def matvec3(a, v):
    """Stacked 3x3 matrix-vector products a @ v: (..., 3, 3) x (..., 3) -> (..., 3), BLAS-free as `matmul3`."""
    return a[..., :, 0] * v[..., 0, None] + a[..., :, 1] * v[..., 1, None] + a[..., :, 2] * v[..., 2, None]


def normalize(v: np.ndarray) -> np.ndarray:
    """Unit vectors along the last axis (zero vectors give NaN, which callers check)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return v / np.sqrt((v * v).sum(axis=-1, keepdims=True))


def qmul(q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Hamilton product q * r."""
    w1, x1, y1, z1 = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    w2, x2, y2, z2 = r[..., 0], r[..., 1], r[..., 2], r[..., 3]
    return np.stack(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ],
        axis=-1,
    )


def qinv(q: np.ndarray) -> np.ndarray:
    """Conjugate, which is the inverse of a unit quaternion."""
    return q * np.array([1.0, -1.0, -1.0, -1.0], dtype=q.dtype)


def qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4): v + 2 (w (u x v) + u x (u x v))."""
    u = q[..., 1:]
    uv = _cross(u, v)
    uuv = _cross(u, uv)
    return v + 2.0 * (q[..., :1] * uv + uuv)


def qbetween(v0: np.ndarray, v1: np.ndarray) -> np.ndarray:
    """Shortest-arc rotation taking direction v0 onto v1: normalize(w = |v0||v1| + v0.v1, v0 x v1).

    Antiparallel inputs give NaN, exactly as the official helper; callers turn that into an error.
    """
    v = _cross(v0, v1)
    w = np.sqrt((v0 * v0).sum(-1, keepdims=True) * (v1 * v1).sum(-1, keepdims=True)) + (v0 * v1).sum(
        -1, keepdims=True
    )
    return normalize(np.concatenate([w, v], axis=-1))


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of unit quaternions (..., 4)."""
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    two_s = 2.0 / (q * q).sum(-1)
    m = np.stack(
        [
            1 - two_s * (y * y + z * z), two_s * (x * y - z * w), two_s * (x * z + y * w),
            two_s * (x * y + z * w), 1 - two_s * (x * x + z * z), two_s * (y * z - x * w),
            two_s * (x * z - y * w), two_s * (y * z + x * w), 1 - two_s * (x * x + y * y),
        ],
        axis=-1,
    )
    return m.reshape(q.shape[:-1] + (3, 3))


def quat_to_cont6d(q: np.ndarray) -> np.ndarray:
    """6D rotation (..., 6): the first two columns of the rotation matrix, concatenated."""
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    two_s = 2.0 / (q * q).sum(-1)
    return np.stack(
        [
            1 - two_s * (y * y + z * z), two_s * (x * y + z * w), two_s * (x * z - y * w),
            two_s * (x * y - z * w), 1 - two_s * (x * x + z * z), two_s * (y * z + x * w),
        ],
        axis=-1,
    )


def cont6d_to_matrix(c: np.ndarray) -> np.ndarray:
    """Gram-Schmidt from 6D to rotation matrices (..., 3, 3) with columns [x, y, z]."""
    x = normalize(c[..., 0:3])
    z = normalize(_cross(x, c[..., 3:6]))
    y = _cross(z, x)
    return np.stack([x, y, z], axis=-1)


def yaw_quat(angle: np.ndarray) -> np.ndarray:
    """Quaternions for rotations by `angle` (radians) about +Y."""
    half = 0.5 * np.asarray(angle, dtype=np.float64)
    zeros = np.zeros_like(half)
    return np.stack([np.cos(half), zeros, np.sin(half), zeros], axis=-1)


def axis_angle_to_matrix(aa: np.ndarray) -> np.ndarray:
    """Rodrigues' formula for axis-angle vectors (..., 3); zero vectors give the identity."""
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)
    safe = np.where(angle < 1e-12, 1.0, angle)
    axis = aa / safe
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zeros = np.zeros_like(x)
    k = np.stack([zeros, -z, y, z, zeros, -x, -y, x, zeros], axis=-1).reshape(aa.shape[:-1] + (3, 3))
    s = np.sin(angle)[..., None]
    c = np.cos(angle)[..., None]
    eye = np.broadcast_to(np.eye(3), k.shape)
    return eye + s * k + (1 - c) * matmul3(k, k)


def matrix_to_axis_angle(m: np.ndarray) -> np.ndarray:
    """Inverse of `axis_angle_to_matrix` for angles in [0, pi)."""
    cos = np.clip((np.trace(m, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)
    angle = np.arccos(cos)
    v = np.stack([m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1)
    sin = np.sin(angle)[..., None]
    small = sin < 1e-8
    axis = v / np.where(small, 1.0, 2.0 * sin)
    return np.where(small, 0.5 * v, axis * angle[..., None])


# --- torch versions, for code that recovers joints from features on the model's device ---


def qrot_torch(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """torch twin of `qrot`."""
    u = q[..., 1:]
    uv = torch.linalg.cross(u, v, dim=-1)
    uuv = torch.linalg.cross(u, uv, dim=-1)
    return v + 2.0 * (q[..., :1] * uv + uuv)


def qinv_torch(q: torch.Tensor) -> torch.Tensor:
    """torch twin of `qinv`."""
    return q * q.new_tensor([1.0, -1.0, -1.0, -1.0])
