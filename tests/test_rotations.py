"""Quaternion and 6D helpers against scipy's independent implementation."""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from kinemic import rotations as rot


def _random_quats(rng, n):
    q = rng.normal(size=(n, 4))
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def _scipy(q):
    return Rotation.from_quat(q[:, [1, 2, 3, 0]])  # scipy is (x, y, z, w)


def test_qrot_and_matrix_match_scipy(rng):
    q = _random_quats(rng, 50)
    v = rng.normal(size=(50, 3))
    np.testing.assert_allclose(rot.qrot(q, v), _scipy(q).apply(v), atol=1e-12)
    np.testing.assert_allclose(rot.quat_to_matrix(q), _scipy(q).as_matrix(), atol=1e-12)


def test_qmul_composes_like_matrices(rng):
    q, r = _random_quats(rng, 20), _random_quats(rng, 20)
    np.testing.assert_allclose(rot.quat_to_matrix(rot.qmul(q, r)), rot.quat_to_matrix(q) @ rot.quat_to_matrix(r),
                               atol=1e-12)
    np.testing.assert_allclose(rot.qmul(q, rot.qinv(q)), np.tile([1.0, 0, 0, 0], (20, 1)), atol=1e-12)


def test_qbetween_maps_v0_onto_v1(rng):
    v0, v1 = rng.normal(size=(30, 3)), rng.normal(size=(30, 3))
    mapped = rot.qrot(rot.qbetween(v0, v1), v0 / np.linalg.norm(v0, axis=-1, keepdims=True))
    np.testing.assert_allclose(mapped, v1 / np.linalg.norm(v1, axis=-1, keepdims=True), atol=1e-12)
    assert np.isnan(rot.qbetween(np.array([0.0, 0, -1]), np.array([0.0, 0, 1]))).all()


def test_cont6d_round_trip(rng):
    q = _random_quats(rng, 40)
    c6 = rot.quat_to_cont6d(q)
    m = rot.quat_to_matrix(q)
    np.testing.assert_allclose(c6, np.concatenate([m[:, :, 0], m[:, :, 1]], -1), atol=1e-12)
    np.testing.assert_allclose(rot.cont6d_to_matrix(c6), m, atol=1e-12)


def test_axis_angle_round_trip(rng):
    aa = rng.normal(size=(25, 3))
    aa *= (rng.uniform(0.1, 3.0, size=(25, 1)) / np.linalg.norm(aa, axis=-1, keepdims=True))
    m = rot.axis_angle_to_matrix(aa)
    np.testing.assert_allclose(m, Rotation.from_rotvec(aa).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(rot.matrix_to_axis_angle(m), aa, atol=1e-9)
    np.testing.assert_allclose(rot.axis_angle_to_matrix(np.zeros((2, 3))), np.tile(np.eye(3), (2, 1, 1)))


def test_yaw_quat_rotates_about_y():
    q = rot.yaw_quat(np.array([np.pi / 2]))
    np.testing.assert_allclose(rot.qrot(q, np.array([[0.0, 0, 1]])), [[1.0, 0, 0]], atol=1e-12)


def test_torch_twins_match_numpy(rng):
    q, v = _random_quats(rng, 10), rng.normal(size=(10, 3))
    out = rot.qrot_torch(torch.from_numpy(q), torch.from_numpy(v)).numpy()
    np.testing.assert_allclose(out, rot.qrot(q, v), atol=1e-12)
    np.testing.assert_allclose(rot.qinv_torch(torch.from_numpy(q)).numpy(), rot.qinv(q))


def test_blas_free_products_round_like_scalar_arithmetic():
    """matmul3 / matvec3 compute each entry as ((a0*b0 + a1*b1) + a2*b2) in float64, exactly as Python floats do, so
    they give the same bytes on every CPU (numpy's `@` goes through BLAS, whose rounding depends on the kernel)."""
    rng = np.random.default_rng(7)
    a, b, v = rng.normal(size=(4, 3, 3)), rng.normal(size=(4, 3, 3)), rng.normal(size=(4, 3))
    prod, vec = rot.matmul3(a, b), rot.matvec3(a, v)
    for n in range(4):
        for i in range(3):
            assert vec[n, i] == float(a[n, i, 0]) * float(v[n, 0]) + float(a[n, i, 1]) * float(v[n, 1]) + float(
                a[n, i, 2]) * float(v[n, 2])
            for j in range(3):
                expected = (float(a[n, i, 0]) * float(b[n, 0, j]) + float(a[n, i, 1]) * float(b[n, 1, j])
                            + float(a[n, i, 2]) * float(b[n, 2, j]))
                assert prod[n, i, j] == expected
    np.testing.assert_allclose(prod, a @ b, atol=1e-14)
    np.testing.assert_allclose(rot.matvec3(a[:, None], v[:, None, :].repeat(5, 1)), np.einsum("nij,nkj->nki", a,
                               v[:, None, :].repeat(5, 1)), atol=1e-14)
    torch_prod = rot.matmul3(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    np.testing.assert_array_equal(torch_prod, prod)
