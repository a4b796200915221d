"""PYSKL / mmaction2 skeleton annotation pickles, and the SMPL-22 graph those toolkits need.

The file is what pyskl's `PoseDataset` loads (reference/pyskl_dvc.md A2): a pickle of

    dict(split={split name: [frame_dir, ...]},
         annotations=[dict(frame_dir=str, label=int, total_frames=int, keypoint=float32 (M=1, T, V=22, C=3)), ...])

`PoseDataset` asserts the `.pkl` suffix and keeps an annotation when its `frame_dir` is listed in the chosen split. The
graph is given as the dict mmaction2 1.x accepts for `layout` (num_node, inward, center); pyskl needs the same three
values added to `pyskl/utils/graph.py` (A3). SMPL data also need PYSKL's `PreNormalize3D` adapted or done offline:
its defaults assume NTU's 25 Kinect joints.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kinemic.io import atomic_file
from kinemic.skeleton import NUM_JOINTS, SMPL22_CENTER, SMPL22_INWARD

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class SkeletonSample:
    """One motion for a PYSKL pickle: joints (T, 22, 3), an integer label and a unique id (`frame_dir`)."""

    frame_dir: str
    label: int
    keypoint: np.ndarray  # (T, 22, 3); stored as float32 (1, T, 22, 3). Read back: (T, V, C), or (M, T, V, C) if M > 1


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class PysklAnnotations:
    split: dict[str, list[str]]
    samples: list[SkeletonSample]

    def by_split(self, name: str) -> list[SkeletonSample]:
        if name not in self.split:
            raise KeyError(f"split {name!r} not in the file; splits are {sorted(self.split)}")
        wanted = set(self.split[name])
        return [s for s in self.samples if s.frame_dir in wanted]


@dataclass(frozen=True)
class GraphLayout:
    """A skeleton graph as PYSKL / mmaction2 define one: 0-based (child, parent) edges pointing to the root."""

    num_node: int
    inward: tuple[tuple[int, int], ...]
    center: int

    def as_dict(self) -> dict:
        """The dict mmaction2 1.x takes as `Graph(layout=...)`."""
        return {"num_node": self.num_node, "inward": [list(e) for e in self.inward], "center": self.center}


def smpl22_graph(center: int = SMPL22_CENTER) -> GraphLayout:
    """SMPL-22 graph: the 21 edges (joint, parent) of `kinemic.skeleton.SMPL22_INWARD`.

    `center` only matters for ST-GCN's 'stgcn_spatial' partition (which neighbours count as closer to the centre):
    9 (spine3, the analogue of NTU's spine-shoulder centre) by default, as kinemic's own ST-GCN uses.
    """
    if not 0 <= center < NUM_JOINTS:
        raise ValueError(f"center={center}: expected a joint index 0..{NUM_JOINTS - 1}")
    return GraphLayout(num_node=NUM_JOINTS, inward=SMPL22_INWARD, center=center)


# --------------------------------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------------------------------


def _checked_keypoint(sample: SkeletonSample) -> np.ndarray:
    kp = np.asarray(sample.keypoint)
    if kp.ndim == 4 and kp.shape[0] == 1:
        kp = kp[0]
    if kp.ndim != 3 or kp.shape[1:] != (NUM_JOINTS, 3) or len(kp) == 0:
        raise ValueError(f"{sample.frame_dir}: keypoint must be (T, {NUM_JOINTS}, 3) with T >= 1, got {kp.shape}")
    if not np.isfinite(kp).all():
        raise ValueError(f"{sample.frame_dir}: keypoint contains NaN or inf")
    return kp.astype(np.float32)[None]  # (1, T, 22, 3): one person


def _checked_label(sample: SkeletonSample) -> int:
    label = sample.label
    if isinstance(label, bool) or not isinstance(label, int | np.integer) or label < 0:
        raise ValueError(f"{sample.frame_dir}: label {label!r} must be a non-negative int (a 0-based class index)")
    return int(label)


def write_pyskl(path: str | Path, samples: Sequence[SkeletonSample], split: Mapping[str, Sequence[str]]) -> None:
    """Write samples and named splits as a PYSKL annotation pickle (written to a temp file, then renamed)."""
    path = Path(path)
    if path.suffix != ".pkl":
        raise ValueError(f"{path}: PYSKL's PoseDataset only loads files ending in .pkl")
    frame_dirs = [s.frame_dir for s in samples]
    bad = [d for d in frame_dirs if not isinstance(d, str) or not d]
    if bad:
        raise ValueError(f"frame_dir must be a non-empty string, got {bad[:5]}")
    seen, duplicates = set(), set()
    for d in frame_dirs:
        (duplicates if d in seen else seen).add(d)
    if duplicates:
        raise ValueError(f"{path}: frame_dir values must be unique; repeated: {sorted(duplicates)[:10]}")
    split_out = {}
    for name, members in split.items():
        unknown = sorted(set(members) - seen)
        if unknown:
            raise ValueError(f"{path}: split {name!r} lists frame_dir(s) with no annotation: {unknown[:10]}")
        split_out[str(name)] = [str(m) for m in members]
    annotations = []
    for sample in samples:
        keypoint = _checked_keypoint(sample)
        annotations.append(dict(frame_dir=sample.frame_dir, label=_checked_label(sample),
                                total_frames=int(keypoint.shape[1]), keypoint=keypoint))
    with atomic_file(path) as tmp, open(tmp, "wb") as f:
        pickle.dump(dict(split=split_out, annotations=annotations), f, protocol=pickle.HIGHEST_PROTOCOL)
    log.info("wrote %s: %d samples, splits %s", path, len(annotations), {k: len(v) for k, v in split_out.items()})


# --------------------------------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------------------------------


class _ArrayUnpickler(pickle.Unpickler):
    """Only what an annotation pickle holds: builtins containers and numpy arrays; no other globals."""

    _ALLOWED = {
        ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.numeric", "_frombuffer"), ("numpy.core.numeric", "_frombuffer"),  # protocol 5 arrays
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        if module.startswith("numpy.core."):  # numpy 1's name of numpy._core
            module = "numpy._core." + module.removeprefix("numpy.core.")
        return super().find_class(module, name)


def read_pyskl(path: str | Path) -> PysklAnnotations:
    """Read an annotation pickle written by `write_pyskl` (or by pyskl's own tools for 3D data)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"PYSKL annotation file not found: {path}")
    try:
        with open(path, "rb") as f:
            data = _ArrayUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as err:
        raise ValueError(f"{path}: not a readable PYSKL annotation pickle ({type(err).__name__}: {err})") from err
    if not isinstance(data, dict) or not {"split", "annotations"} <= set(data):
        raise ValueError(f"{path}: expected dict(split=..., annotations=...), got {type(data).__name__}")
    samples = []
    for i, ann in enumerate(data["annotations"]):
        try:
            sample = SkeletonSample(str(ann["frame_dir"]), ann["label"], np.asarray(ann["keypoint"]))
        except (KeyError, TypeError) as err:
            raise ValueError(f"{path}: annotations[{i}] lacks frame_dir, label or keypoint ({err})") from err
        kp = sample.keypoint
        if kp.ndim != 4 or kp.shape[0] < 1:
            raise ValueError(f"{path}: {sample.frame_dir}: keypoint must be (M, T, V, C), got {kp.shape}")
        if ann.get("total_frames", kp.shape[1]) != kp.shape[1]:
            raise ValueError(f"{path}: {sample.frame_dir}: total_frames {ann['total_frames']} != {kp.shape[1]} frames")
        samples.append(SkeletonSample(sample.frame_dir, _checked_label(sample), kp[0] if kp.shape[0] == 1 else kp))
    split = {str(k): [str(d) for d in v] for k, v in data["split"].items()}
    return PysklAnnotations(split=split, samples=samples)
