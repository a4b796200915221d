"""The prepared prior corpus: every motion's features in one contiguous array plus two tables.

Layout of `data/prepared/prior/` (written by the `prepare_prior` stage):
- `features.npy` (F, 263) float32: the frames of every source file that contributes a sample, back to back;
- `motions.parquet`: motion_id, source_id, split, offset, length, start_frame — a sample is the window
  `features[offset : offset + length]`; sub-clips (captions with a `#from#to` span) are windows into their source's
  frames rather than copies;
- `captions.parquet`: motion_id, caption, tokens, start, end;
- `stats.npz`: the Mean/Std the corpus ships with (HumanML3D's own files), used to normalise for the teacher.
A few large files instead of tens of thousands of small ones keep DVC hashing and loading fast.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kinemic.formats import humanml3d as hml
from kinemic.motion import FeatureStats
from kinemic.skeleton import FEATURE_DIM
from kinemic.stage_files import read_stage_file

log = logging.getLogger(__name__)

MOTION_COLUMNS = ("motion_id", "source_id", "split", "offset", "length", "start_frame")
CAPTION_COLUMNS = ("motion_id", "caption", "tokens", "start", "end")
STAGE = "prepare_prior"  # the stage that writes the prepared prior


@dataclass(frozen=True)
class PriorConfig:
    """Params section `prepare_prior`."""

    source: str = "data/raw/synthetic/prior"
    splits: tuple[str, ...] = ("train", "val", "test")
    min_length: int = hml.MIN_MOTION_LEN
    max_length: int = hml.MAX_MOTION_LEN
    fps: int = 20

    def __post_init__(self) -> None:
        unknown = sorted(set(self.splits) - set(hml.SPLIT_NAMES))
        if not self.splits or unknown:
            raise ValueError(
                f"prepare_prior.splits: {list(self.splits)} must be a non-empty subset of {hml.SPLIT_NAMES}"
            )
        if not 1 <= self.min_length < self.max_length:
            raise ValueError(
                f"prepare_prior: need 1 <= min_length < max_length, got {self.min_length}, {self.max_length}"
            )


@dataclass
class PreparedPrior:
    """In-memory view of `data/prepared/prior/` (features may be memory-mapped)."""

    features: np.ndarray
    motions: pd.DataFrame
    captions: pd.DataFrame
    stats: FeatureStats

    def __len__(self) -> int:
        return len(self.motions)

    def motion(self, index: int) -> np.ndarray:
        row = self.motions.iloc[index]
        return self.features[row.offset : row.offset + row.length]

    def subset(self, splits: Sequence[str]) -> PreparedPrior:
        """The motions (and their captions) of the given splits; features are shared, not copied."""
        keep = self.motions["split"].isin(list(splits))
        motions = self.motions[keep].reset_index(drop=True)
        captions = self.captions[self.captions["motion_id"].isin(motions["motion_id"])].reset_index(drop=True)
        return PreparedPrior(self.features, motions, captions, self.stats)

    def save(self, root: Path) -> None:
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        np.save(root / "features.npy", np.ascontiguousarray(self.features, dtype=np.float32))
        self.motions.to_parquet(root / "motions.parquet", index=False)
        self.captions.to_parquet(root / "captions.parquet", index=False)
        self.stats.save(root / "stats.npz")

    @classmethod
    def load(cls, root: Path, mmap: bool = True) -> PreparedPrior:
        """Errors name the missing, truncated or corrupt file and say to re-run `prepare_prior`."""
        root = Path(root)
        for name in ("features.npy", "motions.parquet", "captions.parquet", "stats.npz"):
            if not (root / name).is_file():
                raise FileNotFoundError(f"{root / name}: missing; run `dvc repro {STAGE}` first")
        features = read_stage_file(root / "features.npy", STAGE, lambda p: np.load(p, mmap_mode="r" if mmap else None))
        motions = read_stage_file(root / "motions.parquet", STAGE, lambda p: _read_table(p, MOTION_COLUMNS))
        captions = read_stage_file(root / "captions.parquet", STAGE, lambda p: _read_table(p, CAPTION_COLUMNS))
        return cls(features, motions, captions, read_stage_file(root / "stats.npz", STAGE, FeatureStats.load))


def _read_table(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    table = pd.read_parquet(path)
    missing = sorted(set(columns) - set(table.columns))
    if missing:
        raise ValueError(f"missing columns {missing}")
    return table


def prepare_prior(config: PriorConfig) -> tuple[PreparedPrior, hml.LoadReport]:
    """Load a HumanML3D directory (real or the embedded world's) with the official rules into one corpus."""
    root = Path(config.source)
    hml.check_layout(root)
    stats = hml.read_stats(root)
    report = hml.LoadReport()
    records: list[hml.MotionRecord] = []
    for split in config.splits:
        ids = hml.read_split(root, split)
        records += hml.load_motions(root, ids, split, config.min_length, config.max_length, config.fps, report)
    if not records:
        raise ValueError(f"{root}: no motion survived the loading rules ({report.as_metrics()})")

    # One copy of each source's frames; samples are windows into it.
    source_frames: dict[str, np.ndarray] = {}
    for rec in records:
        if rec.start_frame == 0 and rec.motion_id == rec.source_id:
            source_frames[rec.source_id] = rec.features
    for rec in records:  # sub-clips whose source was dropped as a whole still need its frames
        if rec.source_id not in source_frames:
            source_frames[rec.source_id] = np.load(root / "new_joint_vecs" / f"{rec.source_id}.npy").astype(np.float32)
    order = list(source_frames)
    starts = np.cumsum([0] + [len(source_frames[s]) for s in order])
    source_offset = dict(zip(order, starts[:-1].tolist(), strict=True))
    features = np.concatenate([source_frames[s] for s in order]).astype(np.float32)
    assert features.shape[1] == FEATURE_DIM

    motions = pd.DataFrame(
        {
            "motion_id": [r.motion_id for r in records],
            "source_id": [r.source_id for r in records],
            "split": [r.split for r in records],
            "offset": np.array([source_offset[r.source_id] + r.start_frame for r in records], dtype=np.int64),
            "length": np.array([len(r.features) for r in records], dtype=np.int64),
            "start_frame": np.array([r.start_frame for r in records], dtype=np.int64),
        }
    )
    if motions["motion_id"].duplicated().any():
        dup = motions.loc[motions["motion_id"].duplicated(), "motion_id"].tolist()[:5]
        raise ValueError(f"{root}: motion ids appear in more than one split or twice: {dup}")
    caption_rows = [
        (r.motion_id, c.text, " ".join(c.tokens), c.start, c.end) for r in records for c in r.captions
    ]
    captions = pd.DataFrame(caption_rows, columns=list(CAPTION_COLUMNS))
    log.info("prepared %d samples (%d frames) from %d files", len(motions), len(features), report.files)
    return PreparedPrior(features, motions, captions, stats), report
