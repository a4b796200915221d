"""The text condition of the teacher and student: which encoder, with which options, normalised or not.

A teacher is only meaningful with the text encoder it was trained with, so the choice is stored in the teacher
checkpoint (`TextSpec.to_dict`) and every later stage rebuilds the same embedder from there, never from its own params.
Official MDM checkpoints take the raw CLIP ViT-B/32 `encode_text` output with 20-token truncation (context 22),
unnormalised; the embedded default uses the packaged MiniLM sentence encoder.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kinemic.text import EmbeddingCache, build_encoder, encode_cached

Embedder = Callable[[list[str]], np.ndarray]


def default_cache_dir() -> Path:
    """Where text embeddings are cached: `$KINEMIC_CACHE/text-embeddings`, else `~/.cache/kinemic/text-embeddings`.

    A user-level folder, not a DVC output: it outlives stage re-runs and is shared by every clone and every queued
    experiment, so each caption is encoded once per encoder on a machine.
    """
    root = os.environ.get("KINEMIC_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kinemic"
    return Path(root) / "text-embeddings"


@dataclass(frozen=True)
class TextSpec:
    encoder: str = "minilm"
    options: dict = field(default_factory=dict)
    normalize: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"encoder": self.encoder, "options": dict(self.options), "normalize": self.normalize}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TextSpec:
        unknown = sorted(set(data) - {"encoder", "options", "normalize"})
        if unknown:
            raise ValueError(f"text encoder spec: unknown keys {unknown}")
        return cls(encoder=data["encoder"], options=dict(data.get("options", {})), normalize=bool(data["normalize"]))


def text_embedder(spec: TextSpec, cache_dir: str | Path | None) -> Embedder:
    """A function embedding captions with the spec's encoder, through the on-disk cache when one is given.

    The encoder is built lazily, so stages that find everything cached never load model weights.
    """
    cache = EmbeddingCache(cache_dir) if cache_dir else None
    encoder = build_encoder(spec.encoder, **spec.options)

    def embed(texts: list[str]) -> np.ndarray:
        return encode_cached(encoder, list(texts), cache, normalize=spec.normalize)

    return embed
