"""The teacher's text condition travels as a spec; the embedder uses the shared cache."""

from __future__ import annotations

import numpy as np
import pytest

from kinemic.conditioning import TextSpec, default_cache_dir, text_embedder


def test_spec_round_trip_and_validation():
    spec = TextSpec("clip-vit-b32", {"context_length": 22}, normalize=False)
    assert TextSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="unknown keys"):
        TextSpec.from_dict({"encoder": "minilm", "normalize": True, "colour": 1})


def test_default_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("KINEMIC_CACHE", str(tmp_path / "k"))
    assert default_cache_dir() == tmp_path / "k" / "text-embeddings"
    monkeypatch.delenv("KINEMIC_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x" / "kinemic" / "text-embeddings"


def test_embedder_normalises_and_caches(tmp_path):
    embed = text_embedder(TextSpec("minilm", {}, normalize=True), tmp_path)
    out = embed(["a person walks", "someone kicks"])
    assert out.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert any(tmp_path.rglob("*.npz")), "embeddings were written to the cache"
    np.testing.assert_allclose(text_embedder(TextSpec("minilm"), tmp_path)(["someone kicks"])[0], out[1], atol=1e-6)
