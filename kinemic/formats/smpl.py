"""SMPL body model files without chumpy, and the joint forward pass used by the VIBE reader.

The official `SMPL_NEUTRAL.pkl` (SMPL_python_v.1.1.0, or VIBE's `data/vibe_data/SMPL_NEUTRAL.pkl`) is a Python 2
pickle in which some arrays (`shapedirs`, sometimes `posedirs`, `J`, `weights`) are `chumpy.ch.Ch` objects and
`J_regressor` is a `scipy.sparse.csc_matrix`. chumpy does not import on Python 3.11 and breaks with numpy >= 1.24, so
`_SMPLUnpickler` maps every chumpy class to a stand-in that keeps the pickled state (chumpy's `__getstate__` is the
object `__dict__`, the array under key 'x'), rebuilds sparse matrices from their (data, indices, indptr) state, and
refuses every other global: a model file can only produce numbers, never run code.

Forward pass choice: `SMPLModel.forward` computes the 24 joints with smplx's own building blocks (`batch_rodrigues`,
`batch_rigid_transform`) on rest joints regressed from the shaped template. This is exactly `J_transformed` of
`smplx.lbs.lbs` (joints are regressed from the *unposed* shaped mesh, so pose blend shapes and skinning never touch
them), without building 6890 skinned vertices per frame, and without `smplx.SMPL`'s constructor (which prints a
warning for 10-beta models and needs a vertex-id table for its extra keypoints). Tests check parity with `lbs`.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from smplx.lbs import batch_rigid_transform, batch_rodrigues

from kinemic.skeleton import SMPL24_PARENTS, TARGET_OFFSETS

log = logging.getLogger(__name__)

NUM_SMPL_JOINTS = 24
POSE_DIM = 3 * NUM_SMPL_JOINTS  # 72: root orientation + 23 body joints, axis-angle
NUM_POSE_BLEND = 9 * (NUM_SMPL_JOINTS - 1)  # 207 posedirs columns
REQUIRED_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "kintree_table", "weights", "f")

SMPL_DOWNLOAD_HINT = (
    "Get the neutral SMPL model from https://smpl.is.tue.mpg.de (free registration): download SMPL_python_v.1.1.0 and "
    "use `basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl`, or take VIBE's `data/vibe_data/SMPL_NEUTRAL.pkl` "
    "(fetched by VIBE's `scripts/prepare_data.sh`). The file is used as is: chumpy is not needed."
)


class SMPLModelError(ValueError):
    """Raised when a file is not a usable SMPL model (missing keys, wrong shapes, unexpected pickle content)."""


# --------------------------------------------------------------------------------------------------------------------
# restricted unpickling
# --------------------------------------------------------------------------------------------------------------------


class _PickledState:
    """Stand-in for a pickled object whose class must not (or cannot) be imported: it only records the state."""

    source = "?"

    def __new__(cls, *args, **kwargs):  # NEWOBJ passes the class's __getnewargs__, which we ignore
        return super().__new__(cls)

    def __setstate__(self, state) -> None:
        self.state = state


class _ChumpyStandIn(_PickledState):
    pass


class _SparseStandIn(_PickledState):
    pass


def _stand_in(base: type, module: str, name: str) -> type:
    return type(name, (base,), {"source": f"{module}.{name}"})


# Globals a Python 2 SMPL pickle needs besides chumpy and scipy.sparse. numpy.core is numpy 1's name of numpy._core.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"): ("numpy._core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"): ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"): ("numpy._core.numeric", "_frombuffer"),  # pickle protocol 5
    ("numpy._core.numeric", "_frombuffer"): ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"): ("numpy", "ndarray"),
    ("numpy", "dtype"): ("numpy", "dtype"),
    ("copy_reg", "_reconstructor"): ("copyreg", "_reconstructor"),
    ("copyreg", "_reconstructor"): ("copyreg", "_reconstructor"),
    ("__builtin__", "object"): ("builtins", "object"),
    ("builtins", "object"): ("builtins", "object"),
    ("__builtin__", "set"): ("builtins", "set"),
    ("builtins", "set"): ("builtins", "set"),
    ("_codecs", "encode"): ("_codecs", "encode"),  # Python 3 pickles of bytes at protocols < 3
}
_SPARSE_FORMATS = ("csc_matrix", "csr_matrix", "coo_matrix")


class _RefusedGlobal(pickle.UnpicklingError):
    pass


class _SMPLUnpickler(pickle.Unpickler):
    """Unpickler for SMPL model files: numpy arrays, chumpy stand-ins, sparse matrices; nothing else."""

    def __init__(self, file, path: Path):
        super().__init__(file, encoding="latin1")
        self._path = path

    def find_class(self, module: str, name: str):
        if module == "chumpy" or module.startswith("chumpy."):
            return _stand_in(_ChumpyStandIn, module, name)
        if module.startswith("scipy.sparse") and name in _SPARSE_FORMATS:
            return _stand_in(_SparseStandIn, module, name)
        target = _ALLOWED_GLOBALS.get((module, name))
        if target is None:
            raise _RefusedGlobal(
                f"{self._path}: refusing to load global {module}.{name}; an SMPL model file only needs numpy, "
                "scipy.sparse and chumpy arrays"
            )
        return super().find_class(*target)


def _sparse_from_state(obj: _SparseStandIn, path: Path, key: str):
    state = _plain(obj.state, path, key)
    shape = state.get("_shape", state.get("shape"))
    kind = obj.source.rsplit(".", 1)[-1]
    try:
        if kind == "coo_matrix":
            row, col = state["coords"] if "coords" in state else (state["row"], state["col"])
            return sp.coo_matrix((state["data"], (row, col)), shape=shape)
        build = sp.csc_matrix if kind == "csc_matrix" else sp.csr_matrix
        return build((state["data"], state["indices"], state["indptr"]), shape=shape)
    except (KeyError, TypeError, ValueError) as err:
        raise SMPLModelError(f"{path}: cannot rebuild the sparse matrix '{key}' ({obj.source}): {err}") from err


def _plain(obj, path: Path, key: str):
    """Replace stand-ins by plain numpy arrays / scipy.sparse matrices, recursively."""
    if isinstance(obj, _ChumpyStandIn):
        state = obj.state if isinstance(obj.state, dict) else {}
        if "x" not in state:
            raise SMPLModelError(
                f"{path}: '{key}' is a chumpy expression ({obj.source}) rather than a stored array; convert the model "
                "to plain arrays once with chumpy installed (e.g. SMPL's `clean_ch.py`), or use the official file"
            )
        return np.asarray(_plain(state["x"], path, key))
    if isinstance(obj, _SparseStandIn):
        return _sparse_from_state(obj, path, key)
    if isinstance(obj, dict):
        return {k: _plain(v, path, f"{key}.{k}" if key else str(k)) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_plain(v, path, key) for v in obj)
    return obj


def _read_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            data = _SMPLUnpickler(f, path).load()
    except _RefusedGlobal as err:
        raise SMPLModelError(str(err)) from err
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as err:
        raise SMPLModelError(f"{path}: not a readable SMPL pickle ({type(err).__name__}: {err})") from err
    if not isinstance(data, dict):
        raise SMPLModelError(f"{path}: expected a dict of model arrays, got {type(data).__name__}")
    return _plain(data, path, "")


def _read_npz(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError) as err:
        raise SMPLModelError(f"{path}: not a readable .npz SMPL model ({err})") from err


# --------------------------------------------------------------------------------------------------------------------
# model arrays
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class SMPLArrays:
    """Plain arrays of an SMPL model (V vertices, B shape components). J_regressor may stay scipy.sparse."""

    v_template: np.ndarray  # (V, 3)
    shapedirs: np.ndarray  # (V, 3, B)
    posedirs: np.ndarray  # (V, 3, 207)
    J_regressor: np.ndarray | sp.spmatrix  # (24, V)
    parents: np.ndarray  # (24,) int64, parents[0] = -1
    weights: np.ndarray  # (V, 24)
    faces: np.ndarray  # (F, 3) int64

    @property
    def num_betas(self) -> int:
        return int(self.shapedirs.shape[-1])

    def to_dict(self) -> dict[str, np.ndarray]:
        """The arrays under the official key names (dense), e.g. for `np.savez` or `smplx.utils.Struct(**...)`."""
        jreg = self.J_regressor.toarray() if sp.issparse(self.J_regressor) else np.asarray(self.J_regressor)
        kintree = np.stack([self.parents, np.arange(len(self.parents))]).astype(np.int64)
        return dict(
            v_template=self.v_template, shapedirs=self.shapedirs, posedirs=self.posedirs, J_regressor=jreg,
            kintree_table=kintree, weights=self.weights, f=self.faces,
        )


def _expect_shape(path: Path, key: str, array, shape: tuple, hint: str = "") -> None:
    ok = len(array.shape) == len(shape) and all(e is None or e == a for e, a in zip(shape, array.shape, strict=True))
    if not ok:
        want = "(" + ", ".join("*" if e is None else str(e) for e in shape) + ")"
        raise SMPLModelError(f"{path}: '{key}' has shape {tuple(array.shape)}, expected {want}{hint}")


def arrays_from_dict(data: dict, path: str | Path = "<arrays>") -> SMPLArrays:
    """Validate a dict of SMPL arrays (official key names) and return them as `SMPLArrays`."""
    path = Path(path)
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise SMPLModelError(
            f"{path}: missing SMPL key(s) {missing}; an SMPL model file holds {list(REQUIRED_KEYS)} "
            f"(found {sorted(map(str, data))})"
        )
    jreg = data["J_regressor"]
    jreg = jreg.tocsr() if sp.issparse(jreg) else np.asarray(jreg, dtype=np.float64)
    v_template = np.asarray(data["v_template"], dtype=np.float64)
    _expect_shape(path, "v_template", v_template, (None, 3))
    num_verts = v_template.shape[0]
    smplh_hint = "; SMPL has 24 joints (SMPL-H / SMPL-X files are not supported)"
    _expect_shape(path, "J_regressor", jreg, (NUM_SMPL_JOINTS, num_verts), smplh_hint)
    shapedirs = np.asarray(data["shapedirs"], dtype=np.float64)
    _expect_shape(path, "shapedirs", shapedirs, (num_verts, 3, None))
    posedirs = np.asarray(data["posedirs"], dtype=np.float64)
    pose_hint = " (207 = 23 joints x 9 pose blend shapes)"
    _expect_shape(path, "posedirs", posedirs, (num_verts, 3, NUM_POSE_BLEND), pose_hint)
    weights = np.asarray(data["weights"], dtype=np.float64)
    _expect_shape(path, "weights", weights, (num_verts, NUM_SMPL_JOINTS), smplh_hint)
    faces = np.asarray(data["f"]).astype(np.int64)
    _expect_shape(path, "f", faces, (None, 3))
    kintree = np.asarray(data["kintree_table"]).astype(np.int64)
    _expect_shape(path, "kintree_table", kintree, (2, NUM_SMPL_JOINTS), smplh_hint)
    parents = kintree[0].copy()
    parents[0] = -1  # the official files store 2**32 - 1 for the root
    if tuple(parents.tolist()) != SMPL24_PARENTS:
        raise SMPLModelError(
            f"{path}: kintree_table parents {parents.tolist()} differ from SMPL's {list(SMPL24_PARENTS)}; "
            "only the SMPL body (24 joints in SMPL order) is supported"
        )
    for key, array in (("v_template", v_template), ("shapedirs", shapedirs), ("posedirs", posedirs),
                       ("weights", weights)):
        if not np.isfinite(array).all():
            raise SMPLModelError(f"{path}: '{key}' contains NaN or inf")
    return SMPLArrays(v_template, shapedirs, posedirs, jreg, parents, weights, faces)


def _resolve_model_path(path: Path) -> Path:
    if path.is_dir():
        candidates = [path / sub / f"SMPL_NEUTRAL.{ext}" for sub in ("", "smpl") for ext in ("pkl", "npz")]
        found = [c for c in candidates if c.is_file()]
        if not found:
            raise FileNotFoundError(
                f"SMPL model: {path} is a directory without SMPL_NEUTRAL.pkl/.npz (looked for "
                f"{[str(c) for c in candidates]}). {SMPL_DOWNLOAD_HINT}"
            )
        return found[0]
    if not path.is_file():
        raise FileNotFoundError(
            f"SMPL model file not found at {path}: put the neutral SMPL model there (or set the model path "
            f"parameter to where it is). {SMPL_DOWNLOAD_HINT}"
        )
    return path


def load_smpl_arrays(path: str | Path) -> SMPLArrays:
    """Read an SMPL model (`.pkl`, official or cleaned, or `.npz`) into plain validated arrays.

    `path` may also be a directory holding `SMPL_NEUTRAL.pkl`/`.npz` directly or under `smpl/` (smplx's layout).
    """
    path = _resolve_model_path(Path(path))
    data = _read_npz(path) if path.suffix == ".npz" else _read_pickle(path)
    arrays = arrays_from_dict(data, path)
    log.info("loaded SMPL model %s: %d vertices, %d shape components", path, len(arrays.v_template), arrays.num_betas)
    return arrays


# --------------------------------------------------------------------------------------------------------------------
# forward pass
# --------------------------------------------------------------------------------------------------------------------


class SMPLModel:
    """SMPL joint forward pass: axis-angle pose (N, 72) + betas -> joints (N, 24, 3), translation 0.

    The frame is the model's own: the official files are y-up at rest, and VIBE's poses (global orientation from a
    camera-frame regressor) put the body in VIBE's y-down camera frame.
    """

    def __init__(self, arrays: SMPLArrays, num_betas: int = 10):
        if not 1 <= num_betas <= arrays.num_betas:
            raise SMPLModelError(f"num_betas={num_betas}: the model has {arrays.num_betas} shape components")
        self.arrays = arrays
        self.num_betas = num_betas
        jreg = arrays.J_regressor
        # Joints are linear in the shaped template, so regress the template and each shape direction once:
        # J(betas) = J_regressor @ (v_template + shapedirs @ betas) = j_template + j_shapedirs @ betas.
        shapedirs = arrays.shapedirs[:, :, :num_betas].reshape(len(arrays.v_template), -1)  # (V, 3 * B)
        self._j_template = torch.as_tensor(np.asarray(jreg @ arrays.v_template), dtype=torch.float32)  # (24, 3)
        j_dirs = np.asarray(jreg @ shapedirs).reshape(NUM_SMPL_JOINTS, 3, num_betas)
        self._j_shapedirs = torch.as_tensor(j_dirs, dtype=torch.float32)  # (24, 3, B)
        self._parents = torch.as_tensor(arrays.parents, dtype=torch.long)

    @classmethod
    def from_file(cls, path: str | Path, num_betas: int = 10) -> SMPLModel:
        return cls(load_smpl_arrays(path), num_betas=num_betas)

    def rest_joints(self, betas: np.ndarray) -> np.ndarray:
        """Unposed joints (N, 24, 3) of shape parameters (N, B), or (1, 24, 3) of (B,)."""
        betas = np.asarray(betas)
        return self._rest_joints(self._betas(betas, len(betas) if betas.ndim == 2 else 1)).numpy()

    def forward(self, pose: np.ndarray, betas: np.ndarray) -> np.ndarray:
        """Joints (N, 24, 3) float32 of axis-angle poses (N, 72) and betas (N, B) or (B,) (shared by all frames)."""
        pose_t = torch.as_tensor(np.asarray(pose), dtype=torch.float32)
        if pose_t.ndim != 2 or pose_t.shape[1] != POSE_DIM:
            raise ValueError(f"pose: expected shape (N, {POSE_DIM}) axis-angle, got {tuple(pose_t.shape)}")
        if not torch.isfinite(pose_t).all():
            raise ValueError("pose contains NaN or inf")
        n = pose_t.shape[0]
        rest = self._rest_joints(self._betas(betas, n))  # (N, 24, 3)
        rot_mats = batch_rodrigues(pose_t.reshape(-1, 3)).reshape(n, NUM_SMPL_JOINTS, 3, 3)
        joints, _ = batch_rigid_transform(rot_mats, rest, self._parents, dtype=torch.float32)
        return joints.numpy()

    __call__ = forward

    def _betas(self, betas: np.ndarray, n: int) -> torch.Tensor:
        betas_t = torch.as_tensor(np.asarray(betas), dtype=torch.float32)
        if betas_t.ndim == 1:
            betas_t = betas_t.expand(n, -1)
        if betas_t.ndim != 2 or betas_t.shape[1] != self.num_betas or betas_t.shape[0] not in (n, 1):
            raise ValueError(
                f"betas: expected shape ({n}, {self.num_betas}) or ({self.num_betas},), got {tuple(betas_t.shape)}"
            )
        if not torch.isfinite(betas_t).all():
            raise ValueError("betas contain NaN or inf")
        return betas_t.expand(n, -1) if betas_t.shape[0] == 1 else betas_t

    def _rest_joints(self, betas: torch.Tensor) -> torch.Tensor:
        return self._j_template + torch.einsum("jcb,nb->njc", self._j_shapedirs, betas)


# --------------------------------------------------------------------------------------------------------------------
# a synthetic model, for tests and smoke runs without the licensed SMPL files
# --------------------------------------------------------------------------------------------------------------------


def synthetic_smpl_arrays(num_betas: int = 10, seed: int = 0) -> SMPLArrays:
    """A tiny SMPL-format model (48 vertices, 24 joints, 207 pose blend columns); not a body model.

    The rest skeleton is the HumanML3D target skeleton (y-up, facing +Z, left on +X, arms down) plus two hands; each
    joint owns two vertices 1 cm either side of it, regressed with weight 1/2 each and skinned rigidly to it, so the
    regressed rest joints are exactly the skeleton. Shape and pose blend shapes are small seeded noise.
    """
    rng = np.random.default_rng(seed)
    offsets = np.concatenate([TARGET_OFFSETS, [[0.08, 0.0, 0.0], [-0.08, 0.0, 0.0]]])  # hands beyond the wrists
    joints = np.zeros((NUM_SMPL_JOINTS, 3))
    joints[0] = (0.0, -0.2, 0.0)
    for j in range(1, NUM_SMPL_JOINTS):
        joints[j] = joints[SMPL24_PARENTS[j]] + offsets[j]
    side = np.array([0.01, 0.0, 0.0])
    v_template = np.concatenate([joints - side, joints + side])  # (48, 3): vertex j and j + 24 surround joint j
    num_verts = len(v_template)
    owner = np.tile(np.arange(NUM_SMPL_JOINTS), 2)
    jreg = np.zeros((NUM_SMPL_JOINTS, num_verts))
    jreg[owner, np.arange(num_verts)] = 0.5
    weights = np.zeros((num_verts, NUM_SMPL_JOINTS))
    weights[np.arange(num_verts), owner] = 1.0
    faces = np.stack([np.arange(num_verts - 2), np.arange(1, num_verts - 1), np.arange(2, num_verts)], axis=1)
    return SMPLArrays(
        v_template=v_template,
        shapedirs=0.01 * rng.standard_normal((num_verts, 3, num_betas)),
        posedirs=0.001 * rng.standard_normal((num_verts, 3, NUM_POSE_BLEND)),
        J_regressor=sp.csr_matrix(jreg),
        parents=np.array(SMPL24_PARENTS, dtype=np.int64),
        weights=weights,
        faces=faces.astype(np.int64),
    )
