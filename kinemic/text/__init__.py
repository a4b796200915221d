"""Text encoders behind one interface, and an on-disk embedding cache.

    encoder = build_encoder("minilm")                                  # offline, the embedded default
    encoder = build_encoder("clip-vit-b32", context_length=22)         # MDM's conditioning (use normalize=False)
    emb = encode_cached(encoder, captions, EmbeddingCache(".cache/text-embeddings"))
"""

from __future__ import annotations

import dataclasses

from kinemic.text.cache import EmbeddingCache, encode_cached
from kinemic.text.clip import CLIPConfig, CLIPEncoder, find_clip_weights, tokenize
from kinemic.text.encoders import MiniLMConfig, MiniLMEncoder, TextEncoder, l2_normalize

_REGISTRY = {
    MiniLMEncoder.name: (MiniLMEncoder, MiniLMConfig),
    CLIPEncoder.name: (CLIPEncoder, CLIPConfig),
}
ENCODER_NAMES = tuple(_REGISTRY)


def build_encoder(name: str, **options) -> TextEncoder:
    """The encoder called `name` ('minilm' or 'clip-vit-b32'), configured by its config dataclass's fields."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown text encoder {name!r}; valid names: {', '.join(ENCODER_NAMES)}")
    encoder_cls, config_cls = _REGISTRY[name]
    valid = [field.name for field in dataclasses.fields(config_cls)]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for text encoder {name!r}; valid options: {valid}")
    return encoder_cls(config_cls(**options))


__all__ = [
    "CLIPConfig",
    "CLIPEncoder",
    "ENCODER_NAMES",
    "EmbeddingCache",
    "MiniLMConfig",
    "MiniLMEncoder",
    "TextEncoder",
    "build_encoder",
    "encode_cached",
    "find_clip_weights",
    "l2_normalize",
    "tokenize",
]
