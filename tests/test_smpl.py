"""SMPL loading without chumpy and the joint forward pass, on a tiny synthetic SMPL-format model."""

from __future__ import annotations

import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.spatial.transform import Rotation
from smplx.lbs import lbs

from kinemic.formats.smpl import (
    NUM_POSE_BLEND,
    SMPLModel,
    SMPLModelError,
    arrays_from_dict,
    load_smpl_arrays,
    synthetic_smpl_arrays,
)


def _fake_chumpy_class():
    """A class that pickles like `chumpy.ch.Ch`: module 'chumpy.ch', state = its __dict__ with the array under 'x'."""

    class Ch:
        def __init__(self, x):
            self.x = np.asarray(x, dtype=np.float64)
            self._dirty_vars = set()
            self._itr = None
            self._depends_on_deps = {}
            self._make_dense = False
            self._make_sparse = False

    Ch.__module__ = "chumpy.ch"
    Ch.__qualname__ = "Ch"
    return Ch


def _official_like_dict(arrays, Ch) -> dict:
    """The key layout of the official SMPL_NEUTRAL.pkl: chumpy shapedirs, sparse J_regressor, uint32 kintree."""
    data = arrays.to_dict()
    kintree = data["kintree_table"].astype(np.uint32)
    kintree[0, 0] = np.iinfo(np.uint32).max  # the official files store 4294967295 for the root's parent
    return dict(
        v_template=data["v_template"], shapedirs=Ch(data["shapedirs"]), posedirs=data["posedirs"],
        J_regressor=sp.csc_matrix(data["J_regressor"]), kintree_table=kintree, weights=Ch(data["weights"]),
        f=data["f"].astype(np.uint32), J=Ch(arrays.J_regressor @ arrays.v_template),
        bs_style="lbs", bs_type="lrotmin", vert_sym_idxs=np.arange(4), pose_training_info={"nPoses": 4},
    )


@pytest.fixture(scope="module")
def arrays():
    return synthetic_smpl_arrays(seed=0)


@pytest.fixture
def chumpy_pickle(tmp_path, arrays, monkeypatch):
    """Write the synthetic model as an official-style pickle with a stand-in chumpy, then hide chumpy again."""

    def write(protocol: int):
        Ch = _fake_chumpy_class()
        chumpy = types.ModuleType("chumpy")
        chumpy_ch = types.ModuleType("chumpy.ch")
        chumpy_ch.Ch = Ch
        chumpy.ch = chumpy_ch
        with monkeypatch.context() as patch:
            patch.setitem(sys.modules, "chumpy", chumpy)
            patch.setitem(sys.modules, "chumpy.ch", chumpy_ch)
            path = tmp_path / f"SMPL_NEUTRAL_p{protocol}.pkl"
            path.write_bytes(pickle.dumps(_official_like_dict(arrays, Ch), protocol=protocol))
        assert "chumpy" not in sys.modules or sys.modules["chumpy"] is not chumpy
        return path

    return write


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_chumpy_pickle_loads_without_chumpy(chumpy_pickle, arrays, protocol):
    loaded = load_smpl_arrays(chumpy_pickle(protocol))
    np.testing.assert_allclose(loaded.shapedirs, arrays.shapedirs)
    np.testing.assert_allclose(loaded.weights, arrays.weights)
    assert sp.issparse(loaded.J_regressor)
    np.testing.assert_allclose(loaded.J_regressor.toarray(), arrays.J_regressor.toarray())
    assert loaded.parents.tolist()[:3] == [-1, 0, 0]
    assert loaded.faces.dtype == np.int64
    pose = 0.4 * np.random.default_rng(3).standard_normal((4, 72))
    expected = SMPLModel(arrays).forward(pose, np.ones(10))
    np.testing.assert_allclose(SMPLModel(loaded).forward(pose, np.ones(10)), expected, atol=1e-6)


def test_directory_and_npz_paths(tmp_path, arrays, chumpy_pickle):
    np.savez(tmp_path / "model.npz", **arrays.to_dict())
    from_npz = load_smpl_arrays(tmp_path / "model.npz")
    np.testing.assert_allclose(from_npz.posedirs, arrays.posedirs)
    smpl_dir = tmp_path / "models" / "smpl"
    smpl_dir.mkdir(parents=True)
    chumpy_pickle(2).rename(smpl_dir / "SMPL_NEUTRAL.pkl")
    assert load_smpl_arrays(tmp_path / "models").num_betas == 10


def test_missing_file_says_where_to_put_and_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="smpl.is.tue.mpg.de") as err:
        load_smpl_arrays(tmp_path / "SMPL_NEUTRAL.pkl")
    assert str(tmp_path / "SMPL_NEUTRAL.pkl") in str(err.value)
    assert "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl" in str(err.value)


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_unexpected_global_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"v_template": _Evil()}, protocol=2))
    with pytest.raises(SMPLModelError, match=r"refusing to load global (__builtin__|builtins)\.print"):
        load_smpl_arrays(path)
    assert "never run" not in capsys.readouterr().out


def test_corrupt_and_truncated_pickles(tmp_path, chumpy_pickle):
    good = chumpy_pickle(2).read_bytes()
    (tmp_path / "cut.pkl").write_bytes(good[: len(good) // 2])
    with pytest.raises(SMPLModelError, match="cut.pkl"):
        load_smpl_arrays(tmp_path / "cut.pkl")
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle at all")
    with pytest.raises(SMPLModelError, match="junk.pkl"):
        load_smpl_arrays(tmp_path / "junk.pkl")


def test_chumpy_expression_without_array_is_explained(tmp_path, monkeypatch):
    Ch = _fake_chumpy_class()
    Ch.__module__ = "chumpy.ch_ops"  # a derived node: its state holds operands, not 'x'
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "chumpy", types.ModuleType("chumpy"))
        patch.setitem(sys.modules, "chumpy.ch_ops", types.SimpleNamespace(Ch=Ch))
        obj = Ch(np.zeros(3))
        del obj.x
        payload = pickle.dumps({"shapedirs": obj}, protocol=2)
    (tmp_path / "expr.pkl").write_bytes(payload)
    with pytest.raises(SMPLModelError, match="chumpy expression"):
        load_smpl_arrays(tmp_path / "expr.pkl")


def test_bad_keys_and_shapes(arrays):
    good = arrays.to_dict()
    with pytest.raises(SMPLModelError, match=r"missing SMPL key\(s\) \['weights'\]"):
        arrays_from_dict({k: v for k, v in good.items() if k != "weights"}, "m.pkl")
    with pytest.raises(SMPLModelError, match="J_regressor.*expected \\(24, 48\\).*24 joints"):
        arrays_from_dict({**good, "J_regressor": good["J_regressor"][:22]}, "m.pkl")
    with pytest.raises(SMPLModelError, match="posedirs.*207"):
        arrays_from_dict({**good, "posedirs": good["posedirs"][:, :, :200]}, "m.pkl")
    bad_tree = good["kintree_table"].copy()
    bad_tree[0, 5] = 1
    with pytest.raises(SMPLModelError, match="parents"):
        arrays_from_dict({**good, "kintree_table": bad_tree}, "m.pkl")
    with pytest.raises(SMPLModelError, match="num_betas=16"):
        SMPLModel(arrays, num_betas=16)


def _rotvec_pose(n: int = 1, **joint_rotvecs) -> np.ndarray:
    pose = np.zeros((n, 72))
    for joint, rotvec in joint_rotvecs.items():
        j = int(joint[1:])
        pose[:, 3 * j : 3 * j + 3] = rotvec
    return pose


def test_zero_pose_gives_regressed_template_joints(arrays):
    model = SMPLModel(arrays)
    betas = np.random.default_rng(1).standard_normal(10)
    joints = model.forward(np.zeros((2, 72)), betas)
    shaped = arrays.v_template + arrays.shapedirs @ betas
    np.testing.assert_allclose(joints, np.broadcast_to(arrays.J_regressor @ shaped, (2, 24, 3)), atol=1e-5)
    rest = model.forward(np.zeros((1, 72)), np.zeros(10))[0]
    np.testing.assert_allclose(rest, arrays.J_regressor @ arrays.v_template, atol=1e-6)


def test_root_rotation_rotates_every_joint_about_the_pelvis(arrays):
    model = SMPLModel(arrays)
    rotvec = np.array([0.3, -1.1, 0.4])
    rest = model.forward(np.zeros((1, 72)), np.zeros(10))[0]
    posed = model.forward(_rotvec_pose(j0=rotvec), np.zeros(10))[0]
    expected = Rotation.from_rotvec(rotvec).apply(rest - rest[0]) + rest[0]
    np.testing.assert_allclose(posed, expected, atol=1e-5)


def test_knee_bend_moves_only_descendants(arrays):
    model = SMPLModel(arrays)
    rest = model.forward(np.zeros((1, 72)), np.zeros(10))[0]
    bent = model.forward(_rotvec_pose(j4=[1.2, 0.0, 0.0]), np.zeros(10))[0]  # left knee
    moved = np.flatnonzero(np.linalg.norm(bent - rest, axis=-1) > 1e-6)
    assert moved.tolist() == [7, 10]  # left ankle, left foot
    np.testing.assert_allclose(np.linalg.norm(bent[7] - bent[4]), np.linalg.norm(rest[7] - rest[4]), rtol=1e-5)


def test_joints_match_smplx_lbs(arrays):
    """The joints-only path equals smplx's full linear blend skinning (`J_transformed`)."""
    model = SMPLModel(arrays)
    rng = np.random.default_rng(2)
    pose, betas = 0.5 * rng.standard_normal((3, 72)), rng.standard_normal((3, 10))
    as_t = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    _, joints_lbs = lbs(
        as_t(betas), as_t(pose), as_t(arrays.v_template), as_t(arrays.shapedirs),
        as_t(arrays.posedirs.reshape(-1, NUM_POSE_BLEND).T), as_t(arrays.J_regressor.toarray()),
        torch.as_tensor(arrays.parents), as_t(arrays.weights),
    )
    np.testing.assert_allclose(model.forward(pose, betas), joints_lbs.numpy(), atol=1e-5)


def test_forward_input_errors(arrays):
    model = SMPLModel(arrays)
    with pytest.raises(ValueError, match=r"pose: expected shape \(N, 72\)"):
        model.forward(np.zeros((2, 69)), np.zeros(10))
    with pytest.raises(ValueError, match="betas: expected shape"):
        model.forward(np.zeros((2, 72)), np.zeros((3, 10)))
    with pytest.raises(ValueError, match="NaN"):
        model.forward(np.full((1, 72), np.nan), np.zeros(10))
