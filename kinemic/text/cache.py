"""On-disk text-embedding cache, so each caption is encoded once across stages, experiments and queue workers.

Layout: one folder per encoder identity (`encoder.cache_key`, which names the model, the weights and every setting
that changes the numbers) and per kernel identity of the process that computes (`kinemic.runtime.kernel_identity`:
torch's version and CPU kernels, or the GPU, which change the last digits), holding
    meta.json                       {format, encoder, dim, cache_key, kernels}: checked on every open
    shard-<time_ns>-<random>.npz    `embeddings` float32 (n, dim) + `texts_utf8` (the n texts as UTF-8 JSON)
Each write adds one shard through a temporary file and `os.replace`, so a reader sees a whole shard or none, and two
DVC queue workers adding captions at the same time both keep their work (no read-modify-write of a shared file).
Shards never change once written; past `max_shards` they are merged into one (the old ones are deleted after the merged
shard is in place, so a concurrent reader that loses a shard just lists the folder again).

The cache stores RAW embeddings (`encode(..., normalize=False)`) and normalises on the way out, so MDM's raw CLIP
conditioning and the normalised mining embeddings come from the same entries.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from kinemic.io import atomic_file
from kinemic.runtime import kernel_identity
from kinemic.text.encoders import TextEncoder, check_texts, l2_normalize

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1
META_NAME = "meta.json"
_SHARD_GLOB = "shard-*.npz"
_READ_ATTEMPTS = 5
_STALE_TMP_SECONDS = 3600


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """`write` into a temporary file of its own (several queue workers share the folder), renamed into place."""
    with atomic_file(path, unique=True) as tmp, tmp.open("wb") as f:
        write(f)


def _folder_name(cache_key: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", cache_key)


def _kernels(encoder: TextEncoder) -> str:
    """The kernel identity the encoder computes with now: its device (`config.device`; CPU for encoders without one)
    under this process's kernel settings."""
    return kernel_identity(getattr(getattr(encoder, "config", None), "device", "cpu"))


def _write_shard(folder: Path, texts: list[str], embeddings: np.ndarray) -> Path:
    path = folder / f"shard-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.npz"
    texts_utf8 = np.frombuffer(json.dumps(texts, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, embeddings=embeddings, texts_utf8=texts_utf8))
    return path


class EmbeddingCache:
    """Text embeddings on disk under `root`, one sub-folder per encoder identity (see the module docstring)."""

    def __init__(self, root: str | os.PathLike, max_shards: int = 16) -> None:
        self.root = Path(root)
        if max_shards < 1:
            raise ValueError(f"max_shards={max_shards} must be >= 1")
        self.max_shards = max_shards
        if (self.root / META_NAME).is_file():
            raise ValueError(
                f"{self.root} is the folder of a single encoder inside an embedding cache (it holds {META_NAME}); "
                f"pass the cache root, its parent {self.root.parent}"
            )
        self._memo: dict[Path, tuple[list[str], np.ndarray]] = {}  # shard path -> contents; shards are immutable

    def directory(self, encoder: TextEncoder) -> Path:
        return self._folder(encoder, _kernels(encoder))

    def _folder(self, encoder: TextEncoder, kernels: str) -> Path:
        return self.root / _folder_name(f"{encoder.cache_key}--{kernels}")

    def _open(self, encoder: TextEncoder, create: bool) -> Path | None:
        """The encoder's folder after checking its metadata; None when absent and `create` is False."""
        kernels = _kernels(encoder)
        folder = self._folder(encoder, kernels)
        meta_path = folder / META_NAME
        expected = {"format": CACHE_FORMAT, "encoder": encoder.name, "dim": int(encoder.dim),
                    "cache_key": encoder.cache_key, "kernels": kernels}
        if meta_path.is_file():
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            wrong = {key: meta.get(key) for key, value in expected.items() if meta.get(key) != value}
            if wrong:
                raise ValueError(
                    f"embedding cache folder {folder} was written by another encoder: its {META_NAME} has {wrong}, "
                    f"this encoder is {expected}. Use another cache root, or delete {folder} to rebuild it."
                )
            return folder
        if any(folder.glob(_SHARD_GLOB)):
            raise ValueError(f"{folder} holds embedding shards but no {META_NAME}; delete the folder to rebuild it")
        if not create:
            return None
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(meta_path, lambda f: f.write(json.dumps(expected, indent=2).encode("utf-8")))
        return folder

    def _read_shard(self, path: Path, dim: int) -> tuple[list[str], np.ndarray]:
        if path not in self._memo:
            with np.load(path, allow_pickle=False) as data:
                embeddings = data["embeddings"]
                texts = json.loads(data["texts_utf8"].tobytes().decode("utf-8"))
            if embeddings.ndim != 2 or embeddings.shape != (len(texts), dim):
                raise ValueError(
                    f"cache shard {path} holds embeddings {embeddings.shape} for {len(texts)} texts, expected "
                    f"({len(texts)}, {dim}); delete {path.parent} to rebuild the cache"
                )
            self._memo[path] = (texts, embeddings)
        return self._memo[path]

    def _shards(self, folder: Path, dim: int) -> dict[Path, tuple[list[str], np.ndarray]]:
        for _ in range(_READ_ATTEMPTS):
            paths = sorted(folder.glob(_SHARD_GLOB))
            try:
                return {path: self._read_shard(path, dim) for path in paths}
            except FileNotFoundError:  # another process merged shards between our listing and reading: list again
                continue
        raise RuntimeError(f"the shards of {folder} kept changing while being read ({_READ_ATTEMPTS} attempts)")

    def get(self, encoder: TextEncoder, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Raw embeddings float32 (N, dim) and a found mask (N,); rows of texts not in the cache are zero."""
        texts = check_texts(texts)
        out = np.zeros((len(texts), encoder.dim), dtype=np.float32)
        found = np.zeros(len(texts), dtype=bool)
        folder = self._open(encoder, create=False)
        if folder is None or not texts:
            return out, found
        wanted: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            wanted.setdefault(text, []).append(i)
        for shard_texts, embeddings in self._shards(folder, encoder.dim).values():
            rows, targets = [], []
            for row, text in enumerate(shard_texts):
                positions = wanted.pop(text, None)  # pop: the first shard holding a text wins
                if positions is not None:
                    rows.extend([row] * len(positions))
                    targets.extend(positions)
            out[targets] = embeddings[rows]
            found[targets] = True
        return out, found

    def add(self, encoder: TextEncoder, texts: Sequence[str], embeddings: np.ndarray) -> None:
        """Store raw embeddings (N, dim) of `texts` as one new shard (merging shards past `max_shards`)."""
        texts = check_texts(texts)
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.shape != (len(texts), encoder.dim):
            raise ValueError(f"embeddings {embeddings.shape} do not match {len(texts)} texts x dim {encoder.dim}")
        if not np.isfinite(embeddings).all():
            raise ValueError(f"refusing to cache non-finite embeddings from encoder {encoder.name!r}")
        if not texts:
            return
        folder = self._open(encoder, create=True)
        _write_shard(folder, texts, embeddings)
        shards = self._shards(folder, encoder.dim)
        if len(shards) > self.max_shards:
            self._merge(folder, shards)

    def _merge(self, folder: Path, shards: dict[Path, tuple[list[str], np.ndarray]]) -> None:
        index: dict[str, tuple[np.ndarray, int]] = {}
        for shard_texts, embeddings in shards.values():
            for row, text in enumerate(shard_texts):
                index.setdefault(text, (embeddings, row))
        texts = list(index)
        merged = np.stack([embeddings[row] for embeddings, row in index.values()])
        _write_shard(folder, texts, merged)
        for path in shards:
            path.unlink(missing_ok=True)
            self._memo.pop(path, None)
        # Temporary files outlive only writers killed mid-write (SIGKILL); an hour is far longer than any write.
        for tmp in folder.glob(".tmp-*"):
            try:
                if time.time() - tmp.stat().st_mtime > _STALE_TMP_SECONDS:
                    tmp.unlink()
            except FileNotFoundError:
                pass
        logger.info("merged %d cache shards of %s into one (%d texts)", len(shards), folder, len(texts))

    def size(self, encoder: TextEncoder) -> int:
        """Number of distinct texts cached for `encoder`."""
        folder = self._open(encoder, create=False)
        if folder is None:
            return 0
        return len({text for shard_texts, _ in self._shards(folder, encoder.dim).values() for text in shard_texts})


def encode_cached(
    encoder: TextEncoder, texts: Sequence[str], cache: EmbeddingCache | None = None, normalize: bool = True
) -> np.ndarray:
    """Embeddings float32 (N, dim) of `texts` in their order; each distinct text missing from `cache` is encoded once
    and stored. `cache=None` just encodes (still once per distinct text)."""
    texts = check_texts(texts)
    unique = list(dict.fromkeys(texts))
    if cache is None:
        raw = encoder.encode(unique, normalize=False)
    else:
        raw, found = cache.get(encoder, unique)
        missing = [text for text, hit in zip(unique, found, strict=True) if not hit]
        logger.info("%s embeddings: %d cached, %d to encode", encoder.name, len(unique) - len(missing), len(missing))
        if missing:
            new = np.asarray(encoder.encode(missing, normalize=False), dtype=np.float32)
            cache.add(encoder, missing, new)
            raw[~found] = new
    position = {text: i for i, text in enumerate(unique)}
    out = np.asarray(raw, dtype=np.float32)[[position[text] for text in texts]].reshape(len(texts), encoder.dim)
    return l2_normalize(out) if normalize else out
