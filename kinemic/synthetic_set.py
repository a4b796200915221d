"""The generated set as a file: what stage `generate` writes and the classifier stages read.

One `.npz` with every sample's features (T_i, 263) and joints (T_i, 22, 3) back to back, their lengths, labels and the
class names. Kept apart from `kinemic.generation` so readers of the set do not import the sampler, the student and MDM.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kinemic.stage_files import read_stage_file


@dataclass
class SyntheticSet:
    """Generated motions: per-sample features (T_i, 263) and joints (T_i, 22, 3), labels, class names."""

    features: list[np.ndarray]
    joints: list[np.ndarray]
    labels: np.ndarray
    class_names: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def save(self, path: Path) -> None:
        lengths = np.array([len(f) for f in self.features], dtype=np.int64)
        np.savez(
            path,
            features=np.concatenate(self.features).astype(np.float32),
            joints=np.concatenate(self.joints).astype(np.float32),
            lengths=lengths,
            labels=self.labels.astype(np.int64),
            class_names=np.array(self.class_names),
        )

    @classmethod
    def load(cls, path: Path) -> SyntheticSet:
        """Errors name the missing, truncated or corrupt file and say to re-run `generate`."""
        return read_stage_file(path, "generate", cls._read)

    @classmethod
    def _read(cls, path: Path) -> SyntheticSet:
        with np.load(path, allow_pickle=False) as data:
            splits = np.cumsum(data["lengths"])[:-1]
            return cls(
                features=np.split(data["features"], splits),
                joints=np.split(data["joints"], splits),
                labels=data["labels"],
                class_names=[str(c) for c in data["class_names"]],
            )
