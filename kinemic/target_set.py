"""The prepared target set (`data/prepared/target/`): NTU-style clips as HumanML3D features, joints and a table.

Layout:
- `features.npy` (F, 263) float32 and `joints.npy` (F, 22, 3) float32 (recovered from the features), clips back to back;
- `samples.parquet`: sample_id, setup, camera, performer, replication, action, class_index, class_name, caption, split
  ('fewshot' / 'test' / 'unused'), offset, length;
- `undrawn.parquet`: the same table before the few-shot draw (every training clip 'unused'). What trains on all real
  clips (the all-real baseline, the evaluator) reads it with the arrays, so it does not depend on
  `prepare_target.seed` or `shots`, and DVC reuses it across the draws of a benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kinemic.stage_files import read_stage_file

SAMPLE_COLUMNS = (
    "sample_id", "setup", "camera", "performer", "replication", "action", "class_index", "class_name", "caption",
    "split", "offset", "length",
)
SPLITS = ("fewshot", "test", "unused")
STAGE = "prepare_target"  # the stage that writes the prepared target set
SAMPLES_TABLE = "samples.parquet"
UNDRAWN_TABLE = "undrawn.parquet"  # the samples table without the few-shot draw (module docstring)


@dataclass
class PreparedTarget:
    features: np.ndarray
    joints: np.ndarray
    samples: pd.DataFrame

    def __post_init__(self) -> None:
        missing = sorted(set(SAMPLE_COLUMNS) - set(self.samples.columns))
        if missing:
            raise ValueError(f"target samples table lacks columns {missing}")
        if len(self.features) != len(self.joints):
            raise ValueError(f"features ({len(self.features)} frames) and joints ({len(self.joints)}) disagree")

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def class_names(self) -> list[str]:
        """Class names ordered by class index."""
        table = self.samples.drop_duplicates("class_index").sort_values("class_index")
        return table["class_name"].tolist()

    def split(self, name: str) -> PreparedTarget:
        if name not in SPLITS:
            raise ValueError(f"unknown target split {name!r}; valid: {SPLITS}")
        return self.select([name])

    def select(self, names: Sequence[str]) -> PreparedTarget:
        keep = self.samples["split"].isin(list(names))
        return PreparedTarget(self.features, self.joints, self.samples[keep].reset_index(drop=True))

    def sample_features(self, index: int) -> np.ndarray:
        row = self.samples.iloc[index]
        return self.features[row.offset : row.offset + row.length]

    def sample_joints(self, index: int) -> np.ndarray:
        row = self.samples.iloc[index]
        return self.joints[row.offset : row.offset + row.length]

    def all_features(self) -> list[np.ndarray]:
        return [self.sample_features(i) for i in range(len(self))]

    def all_joints(self) -> list[np.ndarray]:
        return [self.sample_joints(i) for i in range(len(self))]

    @property
    def labels(self) -> np.ndarray:
        return self.samples["class_index"].to_numpy(dtype=np.int64)

    def save(self, root: Path) -> None:
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        np.save(root / "features.npy", np.ascontiguousarray(self.features, dtype=np.float32))
        np.save(root / "joints.npy", np.ascontiguousarray(self.joints, dtype=np.float32))
        self.samples.to_parquet(root / SAMPLES_TABLE, index=False)
        self.undrawn().samples.to_parquet(root / UNDRAWN_TABLE, index=False)

    def undrawn(self) -> PreparedTarget:
        """The set before the few-shot draw: the few-shot clips become 'unused' like every other training clip, in
        the same order, so training on all real clips sees exactly the same data."""
        split = self.samples["split"].replace({"fewshot": "unused"})
        return PreparedTarget(self.features, self.joints, self.samples.assign(split=split))

    @classmethod
    def load(cls, root: Path, undrawn: bool = False) -> PreparedTarget:
        """The set as prepared, or (`undrawn`) its table before the few-shot draw. Errors name the missing, truncated
        or corrupt file and say to re-run `prepare_target`."""
        root = Path(root)
        table = UNDRAWN_TABLE if undrawn else SAMPLES_TABLE
        for name in ("features.npy", "joints.npy", table):
            if not (root / name).is_file():
                raise FileNotFoundError(f"{root / name}: missing; run `dvc repro {STAGE}` first")
        samples = read_stage_file(root / table, STAGE, pd.read_parquet)
        features = read_stage_file(root / "features.npy", STAGE, np.load)
        joints = read_stage_file(root / "joints.npy", STAGE, np.load)
        try:
            return cls(features, joints, samples)
        except ValueError as err:
            raise ValueError(f"{root}: {err}; re-run `dvc repro -f {STAGE}`") from err

    @classmethod
    def from_clips(
        cls, samples: pd.DataFrame, features: Sequence[np.ndarray], joints: Sequence[np.ndarray]
    ) -> PreparedTarget:
        """Concatenate per-clip arrays and fill in offset/length."""
        lengths = np.array([len(f) for f in features], dtype=np.int64)
        if any(len(j) != n for j, n in zip(joints, lengths, strict=True)):
            raise ValueError("each clip needs as many joint frames as feature rows")
        table = samples.copy()
        table["length"] = lengths
        table["offset"] = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        return cls(np.concatenate(features).astype(np.float32), np.concatenate(joints).astype(np.float32), table)
