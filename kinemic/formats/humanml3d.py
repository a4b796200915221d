"""HumanML3D directory layout: reading with the official loading rules, and writing.

A HumanML3D directory holds `new_joint_vecs/<id>.npy` (T-1, 263) features, `new_joints/<id>.npy` (T-1, 22, 3) joints
recovered from them, `texts/<id>.txt` with one `caption#word/POS word/POS ...#from#to` line per caption (from/to in
seconds; 0#0 means the whole motion), `Mean.npy` / `Std.npy` and split lists (`train.txt`, `val.txt`, `test.txt`,
`all.txt`, one id per line). Mirrored copies carry an `M` prefix.

The loader follows text-to-motion's `Text2MotionDatasetV2`: motions with fewer than 40 or with 200+ frames are dropped
(with their captions), a caption with a span becomes its own sub-clip `motion[int(from*20):int(to*20)]` under the same
length rule, and a motion is kept whole only if at least one caption describes all of it. The official code names
sub-clips with a random letter; here they are named `<letter>_<id>` with letters assigned in caption order, so the
result is deterministic.
"""

from __future__ import annotations

import logging
import math
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kinemic.motion import FeatureStats
from kinemic.skeleton import FEATURE_DIM, FPS

log = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "val", "test")
MIN_MOTION_LEN = 40
MAX_MOTION_LEN = 200  # exclusive
_SUBCLIP_LETTERS = string.ascii_uppercase[:23]  # A..W, the official alphabet


class HumanML3DFormatError(ValueError):
    """A HumanML3D file or directory does not follow the format."""


@dataclass(frozen=True)
class Caption:
    """One line of a HumanML3D text file. `start`/`end` are seconds; 0/0 means the whole motion."""

    text: str
    tokens: tuple[str, ...] = ()
    start: float = 0.0
    end: float = 0.0

    @property
    def is_whole(self) -> bool:
        return self.start == 0.0 and self.end == 0.0

    def to_line(self) -> str:
        for name, value in (("caption", self.text), *((f"token {t!r}", t) for t in self.tokens)):
            if "#" in value or "\n" in value:
                raise HumanML3DFormatError(f"{name} {value!r} contains '#' or a newline, which the format cannot hold")
        return f"{self.text}#{' '.join(self.tokens)}#{self.start:g}#{self.end:g}"


@dataclass
class MotionRecord:
    """A loaded training sample: a whole motion or a captioned sub-clip of one."""

    motion_id: str
    source_id: str
    features: np.ndarray
    captions: list[Caption]
    start_frame: int = 0
    split: str = ""


@dataclass
class LoadReport:
    """What the loader dropped and why, for the stage's metrics."""

    files: int = 0
    kept_motions: int = 0
    subclips: int = 0
    dropped_length: list[str] = field(default_factory=list)
    dropped_nan: list[str] = field(default_factory=list)
    dropped_no_whole_caption: list[str] = field(default_factory=list)
    dropped_subclip_spans: int = 0

    def as_metrics(self) -> dict[str, int]:
        return {
            "files": self.files,
            "motions": self.kept_motions,
            "subclips": self.subclips,
            "dropped_length": len(self.dropped_length),
            "dropped_nan": len(self.dropped_nan),
            "dropped_no_whole_caption": len(self.dropped_no_whole_caption),
            "dropped_subclip_spans": self.dropped_subclip_spans,
        }


# --------------------------------------------------------------------------------------------------------------------
# text files
# --------------------------------------------------------------------------------------------------------------------


def parse_caption_line(line: str, where: str = "<text>") -> Caption:
    """Parse `caption#tokens#from#to`; NaN spans count as 0 like the official loader."""
    parts = line.rstrip("\n").split("#")
    if len(parts) != 4:
        raise HumanML3DFormatError(
            f"{where}: expected 'caption#word/POS ...#from#to' (4 fields separated by '#'), got {len(parts)} fields "
            f"in {line.strip()!r}"
        )
    text, tokens, start, end = parts
    try:
        start_s, end_s = float(start), float(end)
    except ValueError as err:
        raise HumanML3DFormatError(f"{where}: span {start!r}#{end!r} is not two numbers (seconds)") from err
    start_s = 0.0 if math.isnan(start_s) else start_s
    end_s = 0.0 if math.isnan(end_s) else end_s
    if not text.strip():
        raise HumanML3DFormatError(f"{where}: empty caption")
    return Caption(text=text.strip(), tokens=tuple(tokens.split()), start=start_s, end=end_s)


def read_captions(path: Path) -> list[Caption]:
    """All captions of one text file; a file without any caption is an error."""
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not lines:
        raise HumanML3DFormatError(f"{path}: no caption lines")
    return [parse_caption_line(line, f"{path}:{i + 1}") for i, line in enumerate(lines)]


def write_captions(path: Path, captions: Sequence[Caption]) -> None:
    path.write_text("\n".join(c.to_line() for c in captions) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------------------------------------
# directory
# --------------------------------------------------------------------------------------------------------------------


def read_split(root: Path, split: str) -> list[str]:
    path = Path(root) / f"{split}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: split list not found (a HumanML3D directory has train/val/test/all.txt)")
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]


def read_stats(root: Path) -> FeatureStats:
    """`Mean.npy` and `Std.npy` of a HumanML3D directory."""
    root = Path(root)
    paths = {name: root / f"{name}.npy" for name in ("Mean", "Std")}
    for name, path in paths.items():
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: HumanML3D {name}.npy is missing; it ships with the dataset (or compute it with "
                "kinemic.motion.compute_stats over all new_joint_vecs)"
            )
    return FeatureStats(mean=np.load(paths["Mean"]).astype(np.float32), std=np.load(paths["Std"]).astype(np.float32))


def check_layout(root: Path) -> None:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: HumanML3D directory not found; set the location in params.yaml")
    for sub in ("new_joint_vecs", "texts"):
        if not (root / sub).is_dir():
            raise FileNotFoundError(f"{root / sub}: missing; a HumanML3D directory needs new_joint_vecs/ and texts/")


def load_motions(
    root: Path,
    ids: Iterable[str],
    split: str = "",
    min_len: int = MIN_MOTION_LEN,
    max_len: int = MAX_MOTION_LEN,
    fps: int = FPS,
    report: LoadReport | None = None,
) -> list[MotionRecord]:
    """Load motions and their captions with the official rules (see module docstring)."""
    root = Path(root)
    check_layout(root)
    report = report if report is not None else LoadReport()
    records: list[MotionRecord] = []
    for motion_id in ids:
        report.files += 1
        feat_path = root / "new_joint_vecs" / f"{motion_id}.npy"
        text_path = root / "texts" / f"{motion_id}.txt"
        if not feat_path.is_file():
            raise FileNotFoundError(f"{feat_path}: listed in the {split or 'requested'} split but missing")
        if not text_path.is_file():
            raise FileNotFoundError(f"{text_path}: captions for motion {motion_id} are missing")
        features = np.load(feat_path)
        if features.ndim != 2 or features.shape[1] != FEATURE_DIM:
            raise HumanML3DFormatError(f"{feat_path}: expected shape (T, {FEATURE_DIM}), got {features.shape}")
        if not np.isfinite(features).all():
            log.warning("%s: contains NaN/inf, dropped (as HumanML3D does for 007975)", feat_path)
            report.dropped_nan.append(motion_id)
            continue
        if not min_len <= len(features) < max_len:
            report.dropped_length.append(motion_id)
            continue
        captions = read_captions(text_path)
        whole = [c for c in captions if c.is_whole]
        letters = iter(_SUBCLIP_LETTERS)
        for caption in captions:
            if caption.is_whole:
                continue
            lo, hi = int(caption.start * fps), int(caption.end * fps)
            clip = features[lo:hi]
            if not min_len <= len(clip) < max_len:
                report.dropped_subclip_spans += 1
                continue
            letter = next(letters, None)
            if letter is None:
                raise HumanML3DFormatError(f"{text_path}: more than {len(_SUBCLIP_LETTERS)} sub-clip captions")
            records.append(
                MotionRecord(f"{letter}_{motion_id}", motion_id, clip.astype(np.float32), [caption], lo, split)
            )
            report.subclips += 1
        if whole:
            records.append(MotionRecord(motion_id, motion_id, features.astype(np.float32), whole, 0, split))
            report.kept_motions += 1
        else:
            report.dropped_no_whole_caption.append(motion_id)
    return records


def write_motion(
    root: Path,
    motion_id: str,
    features: np.ndarray,
    joints: np.ndarray | None,
    captions: Sequence[Caption],
) -> None:
    """Write one motion's feature, joint and text files."""
    root = Path(root)
    if features.ndim != 2 or features.shape[1] != FEATURE_DIM:
        raise HumanML3DFormatError(f"{motion_id}: features must be (T, {FEATURE_DIM}), got {features.shape}")
    for sub in ("new_joint_vecs", "new_joints", "texts"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    np.save(root / "new_joint_vecs" / f"{motion_id}.npy", features.astype(np.float32))
    if joints is not None:
        np.save(root / "new_joints" / f"{motion_id}.npy", joints.astype(np.float32))
    write_captions(root / "texts" / f"{motion_id}.txt", captions)


def write_split_files(root: Path, splits: dict[str, Sequence[str]]) -> None:
    """Write `<split>.txt` for each split plus `all.txt` and `train_val.txt` as HumanML3D ships them."""
    root = Path(root)
    for name, ids in splits.items():
        (root / f"{name}.txt").write_text("".join(f"{i}\n" for i in ids))
    all_ids = [i for name in SPLIT_NAMES for i in splits.get(name, ())]
    (root / "all.txt").write_text("".join(f"{i}\n" for i in all_ids))
    train_val = [*splits.get("train", ()), *splits.get("val", ())]
    (root / "train_val.txt").write_text("".join(f"{i}\n" for i in train_val))


def write_stats(root: Path, stats: FeatureStats) -> None:
    np.save(Path(root) / "Mean.npy", np.asarray(stats.mean, np.float32))
    np.save(Path(root) / "Std.npy", np.asarray(stats.std, np.float32))
