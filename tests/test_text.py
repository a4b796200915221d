"""Text encoders, the embedding cache and the CLIP path up to the weights (random weights; never the network)."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import socket
import time

import numpy as np
import pandas as pd
import pytest
import torch

from kinemic.mining import MiningConfig, build_prompts, mine_soft_pairs
from kinemic.runtime import kernel_identity
from kinemic.text import (
    CLIPEncoder,
    EmbeddingCache,
    MiniLMEncoder,
    TextEncoder,
    build_encoder,
    encode_cached,
    find_clip_weights,
    tokenize,
)
from kinemic.text.clip import HF_REPO, OPENAI_FILENAME, TextTower

# ----------------------------------------------------------------------------------------------------------------------
# MiniLM (loaded once per module: ~8 s)


@pytest.fixture(scope="module")
def minilm():
    """The packaged MiniLM, loaded while every socket connection and DNS lookup is recorded and refused."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args[:2])
        raise OSError("network access is blocked in this test")

    saved = socket.socket.connect, socket.getaddrinfo, socket.create_connection
    socket.socket.connect = lambda self, *args: refuse(*args)
    socket.getaddrinfo = refuse
    socket.create_connection = refuse
    try:
        encoder = MiniLMEncoder()
        encoder.encode(["warm up"])
    finally:
        socket.socket.connect, socket.getaddrinfo, socket.create_connection = saved
    return encoder, attempts


def test_minilm_loads_offline_without_network(minilm):
    _, attempts = minilm
    assert attempts == []


def test_minilm_interface_and_normalisation(minilm):
    encoder, _ = minilm
    assert isinstance(encoder, TextEncoder)
    assert (encoder.name, encoder.dim) == ("minilm", 384)
    texts = ["a person walks forward", "someone jumps", "a person walks forward"]
    emb = encoder.encode(texts)
    assert emb.shape == (3, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(emb[0], emb[2])
    np.testing.assert_array_equal(emb, encoder.encode(texts))  # deterministic
    raw = encoder.encode(texts, normalize=False)
    assert raw.dtype == np.float32
    np.testing.assert_allclose(raw, emb, atol=1e-6)  # the model ends in a Normalize layer
    assert encoder.encode([]).shape == (0, 384)
    with pytest.raises(TypeError, match="single string"):
        encoder.encode("a person walks")
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        encoder.encode(["ok", 3])


def test_minilm_semantics(minilm):
    encoder, _ = minilm
    kick, sideways, walk = encoder.encode(
        ["a person performs a side kick", "someone kicks sideways with the left leg", "a person walks forward"]
    )
    assert kick @ sideways > kick @ walk + 0.1


def test_minilm_mines_the_kicks(minilm):
    encoder, _ = minilm
    captions = pd.DataFrame(
        {
            "motion_id": ["m0", "m0", "m1", "m1", "m2", "m3"],
            "caption": [
                "a person walks forward slowly", "someone strolls ahead",
                "a man kicks to the side with his right leg", "a person practices martial arts",
                "a person waves with the left hand", "someone kicks sideways",
            ],
        }
    )
    config = MiningConfig(k=2)
    prompts = build_prompts(["side kick"], config.prompt_template)
    pairs = mine_soft_pairs([102], ["side kick"], encoder.encode(prompts), captions,
                            encoder.encode(captions["caption"].tolist()), config)
    assert set(pairs["motion_id"]) == {"m1", "m3"}
    assert "kick" in pairs.loc[pairs["motion_id"] == "m1", "caption"].item()


def test_build_encoder_names_and_options():
    with pytest.raises(ValueError, match="minilm, clip-vit-b32"):
        build_encoder("clip")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['batchsize'\].*batch_size"):
        build_encoder("minilm", batchsize=8)
    encoder = build_encoder("minilm", batch_size=8)
    assert isinstance(encoder, MiniLMEncoder) and encoder.config.batch_size == 8
    with pytest.raises(ValueError, match="device"):
        build_encoder("minilm", device="tpu")


# ----------------------------------------------------------------------------------------------------------------------
# Embedding cache


class CountingEncoder:
    """Deterministic fake encoder (raw rows of norm != 1) that records every text it encodes."""

    def __init__(self, name: str = "fake", dim: int = 8, cache_key: str = "fake-v1") -> None:
        self.name, self.dim, self.cache_key = name, dim, cache_key
        self.seen: list[str] = []

    def encode(self, texts: list[str], normalize: bool = True) -> np.ndarray:
        self.seen.extend(texts)
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            rows.append(np.random.default_rng(seed).normal(size=self.dim) * 3)
        out = np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim)
        return out / np.linalg.norm(out, axis=1, keepdims=True) if normalize else out


def test_cache_encodes_each_text_once_and_persists(tmp_path):
    encoder = CountingEncoder()
    texts = ["walk", "run", "walk", "jump", "run"]
    first = encode_cached(encoder, texts, EmbeddingCache(tmp_path))
    assert encoder.seen == ["walk", "run", "jump"]  # deduplicated, first-seen order
    np.testing.assert_allclose(first, encoder.encode(texts), atol=1e-6)  # order and duplicates preserved
    encoder.seen.clear()

    second = encode_cached(encoder, ["jump", "walk", "kick"], EmbeddingCache(tmp_path))  # a new instance: from disk
    assert encoder.seen == ["kick"]
    np.testing.assert_array_equal(second[:2], first[[3, 0]])
    assert EmbeddingCache(tmp_path).size(encoder) == 4


def test_cache_stores_raw_embeddings(tmp_path):
    encoder = CountingEncoder()
    cache = EmbeddingCache(tmp_path)
    raw = encode_cached(encoder, ["walk", "run"], cache, normalize=False)
    np.testing.assert_allclose(raw, encoder.encode(["walk", "run"], normalize=False), rtol=1e-6)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    unit = encode_cached(encoder, ["walk", "run"], cache, normalize=True)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-6)
    assert encode_cached(encoder, [], cache).shape == (0, 8)


def test_cache_keys_separate_encoders(tmp_path):
    cache = EmbeddingCache(tmp_path)
    short, full = CountingEncoder(cache_key="fake-ctx22"), CountingEncoder(cache_key="fake-ctx77")
    encode_cached(short, ["walk"], cache)
    encode_cached(full, ["walk"], cache)
    assert short.seen == ["walk"] and full.seen == ["walk"]
    assert cache.directory(short) != cache.directory(full)


def test_cache_keys_separate_the_kernels_that_computed(tmp_path, monkeypatch):
    """Embeddings computed under other kernel settings (an unpinned script on an AVX-512 machine against a pinned stage)
    round otherwise: a process with other settings encodes its own and never reads the other's."""
    cache, encoder = EmbeddingCache(tmp_path), CountingEncoder()
    monkeypatch.delenv("MKL_ENABLE_INSTRUCTIONS", raising=False)
    encode_cached(encoder, ["walk", "run"], cache)
    native = cache.directory(encoder)
    monkeypatch.setenv("MKL_ENABLE_INSTRUCTIONS", "AVX2")
    pinned = cache.directory(encoder)
    assert pinned != native and cache.size(encoder) == 0  # nothing of the other process's is visible
    encoder.seen.clear()
    encode_cached(encoder, ["walk"], cache)
    assert encoder.seen == ["walk"]  # encoded again under these kernels
    assert json.loads((pinned / "meta.json").read_text())["kernels"] == kernel_identity()
    monkeypatch.delenv("MKL_ENABLE_INSTRUCTIONS")
    assert cache.directory(encoder) == native and cache.size(encoder) == 2  # the first process's entries, intact


def test_cache_mismatch_errors(tmp_path):
    cache = EmbeddingCache(tmp_path)
    encode_cached(CountingEncoder(dim=8), ["walk"], cache)
    impostor = CountingEncoder(name="other", dim=16)  # same cache_key, another encoder
    with pytest.raises(ValueError, match="written by another encoder.*'encoder': 'fake', 'dim': 8"):
        encode_cached(impostor, ["walk"], cache)
    with pytest.raises(ValueError, match="pass the cache root"):
        EmbeddingCache(cache.directory(impostor))
    with pytest.raises(ValueError, match=r"do not match 2 texts x dim 8"):
        cache.add(CountingEncoder(), ["a", "b"], np.zeros((2, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        cache.add(CountingEncoder(), ["a"], np.full((1, 8), np.nan))


def test_cache_writes_are_atomic(tmp_path, monkeypatch):
    encoder = CountingEncoder()
    cache = EmbeddingCache(tmp_path)
    encode_cached(encoder, ["walk", "run"], cache)
    folder = cache.directory(encoder)
    names = sorted(path.name for path in folder.iterdir())
    assert names[0] == "meta.json" and len(names) == 2 and names[1].startswith("shard-")

    def crash(file, **arrays):
        file.write(b"partial bytes")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        encode_cached(encoder, ["kick"], cache)
    assert sorted(path.name for path in folder.iterdir()) == names  # no partial shard, no temp file
    monkeypatch.undo()
    encoder.seen.clear()
    assert encode_cached(encoder, ["walk", "kick"], EmbeddingCache(tmp_path)).shape == (2, 8)
    assert encoder.seen == ["kick"]


def test_cache_merges_shards_and_sees_other_writers(tmp_path):
    writer_a, writer_b = EmbeddingCache(tmp_path, max_shards=2), EmbeddingCache(tmp_path, max_shards=2)
    encoder = CountingEncoder()
    encode_cached(encoder, ["first"], writer_a)
    stale = writer_a.directory(encoder) / ".tmp-dead-shard-0.npz"  # left by a writer killed mid-write
    stale.write_bytes(b"partial")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    for i in range(3):
        encode_cached(encoder, [f"a{i}"], writer_a)
        encode_cached(encoder, [f"b{i}"], writer_b)
    shards = list(writer_a.directory(encoder).glob("shard-*.npz"))
    assert 1 <= len(shards) <= 2
    assert not stale.exists()
    reader = EmbeddingCache(tmp_path)
    assert reader.size(encoder) == 7
    emb, found = reader.get(encoder, ["a0", "b2", "zzz"])
    assert found.tolist() == [True, True, False]
    np.testing.assert_allclose(emb[:2], encoder.encode(["a0", "b2"], normalize=False), rtol=1e-6)
    assert not emb[2].any()


# ----------------------------------------------------------------------------------------------------------------------
# CLIP up to the weights: random weights stored as the OpenAI release stores them (fp16 values)

TEXTS = [
    "a person walks forward",
    "a man kicks with his right leg, then jumps up and down twice and runs in a circle waving both arms above his head",
    "someone does a side kick",
]


@pytest.fixture(scope="module")
def random_clip(tmp_path_factory):
    """open_clip's random-weights ViT-B/32 (`pretrained=None`) with weights rounded to fp16 as in the OpenAI release,
    saved as a full state dict and (text tower only) as TorchScript; references from open_clip's own `encode_text`
    on tokens zero-padded to 77 columns, as MDM calls it."""
    import open_clip

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32", pretrained=None, force_quick_gelu=True).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if not name.startswith("visual."):  # the loader ignores the vision tower
                param.copy_(param.half().float())
    folder = tmp_path_factory.mktemp("clip")
    state_path = folder / "open_clip_random.pt"
    torch.save({key: value.half() for key, value in model.state_dict().items()}, state_path)
    script_path = folder / "traced_text_tower.pt"
    # Only the archive's state dict is read back, so a 3-token trace input is enough.
    traced = torch.jit.trace(copy.deepcopy(TextTower(model)), tokenize(["jump"], 3), check_trace=False)
    torch.jit.save(traced.half(), script_path)
    with torch.inference_mode():
        tokens = torch.cat([tokenize(TEXTS, 77), torch.nn.functional.pad(tokenize(TEXTS, 22), (0, 55))])  # (6, 77)
        references = dict(zip((77, 22), model.encode_text(tokens).numpy().reshape(2, len(TEXTS), 512), strict=True))
    return state_path, script_path, references


@pytest.fixture(scope="module")
def clip_raw(random_clip):
    """Raw embeddings of TEXTS from CLIPEncoder at contexts 22 and 77 (batches of 2: two exact-length batches)."""
    state_path, _, _ = random_clip
    encoders = {length: build_encoder("clip-vit-b32", weights=str(state_path), context_length=length, batch_size=2)
                for length in (22, 77)}
    return encoders, {length: encoder.encode(TEXTS, normalize=False) for length, encoder in encoders.items()}


def test_tokenizer_truncates_like_mdm():
    full = tokenize(TEXTS, 77)
    short = tokenize(TEXTS, 22)
    assert full.shape == (3, 77) and short.shape == (3, 22)
    assert int(full[1].argmax()) + 1 > 22  # the long caption really is truncated
    assert short[1, 0] == 49406 and short[1, 21] == 49407
    torch.testing.assert_close(short[1, 1:21], full[1, 1:21])  # first 20 BPE tokens kept
    torch.testing.assert_close(short[0], full[0, :22])  # short captions: same tokens, zero padding


@pytest.mark.parametrize("context_length", [77, 22])
def test_clip_exact_length_batches_equal_full_context(random_clip, clip_raw, context_length):
    _, _, references = random_clip
    encoders, raw = clip_raw
    assert isinstance(encoders[context_length], CLIPEncoder) and isinstance(encoders[context_length], TextEncoder)
    assert raw[context_length].shape == (3, 512) and raw[context_length].dtype == np.float32
    np.testing.assert_allclose(raw[context_length], references[context_length], atol=1e-5, rtol=1e-5)


def test_clip_normalisation_and_context(clip_raw):
    encoders, raw = clip_raw
    unit = encoders[77].encode(TEXTS[:2])
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(unit, raw[77][:2] / np.linalg.norm(raw[77][:2], axis=1, keepdims=True), atol=1e-6)
    assert encoders[22].cache_key != encoders[77].cache_key
    np.testing.assert_allclose(raw[22][[0, 2]], raw[77][[0, 2]], atol=1e-5)  # short captions: no truncation
    assert np.abs(raw[22][1] - raw[77][1]).max() > 1e-3


def test_clip_loads_torchscript_checkpoint(random_clip):
    """The OpenAI `ViT-B-32.pt` is a TorchScript archive; a traced text tower with the same names stands in for it."""
    state_path, script_path, references = random_clip
    encoder = build_encoder("clip-vit-b32", weights=str(script_path))
    np.testing.assert_allclose(encoder.encode(TEXTS, normalize=False), references[77], atol=1e-5, rtol=1e-5)
    assert encoder.cache_key != build_encoder("clip-vit-b32", weights=str(state_path)).cache_key


def _isolate_caches(monkeypatch, home):
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("HF_HOME", str(home / ".cache" / "huggingface"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)


def test_clip_missing_weights_fails_fast_and_says_where(tmp_path, monkeypatch):
    _isolate_caches(monkeypatch, tmp_path)
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError) as error:
        build_encoder("clip-vit-b32")
    assert time.perf_counter() - start < 1.0
    message = str(error.value)
    for expected in (str(tmp_path / ".cache" / "clip" / OPENAI_FILENAME), "openaipublic", HF_REPO,
                     "open_clip_model.safetensors", "weights="):
        assert expected in message
    with pytest.raises(FileNotFoundError, match="nowhere.pt"):
        build_encoder("clip-vit-b32", weights=str(tmp_path / "nowhere.pt"))


def test_clip_finds_weights_in_user_caches(tmp_path, monkeypatch):
    _isolate_caches(monkeypatch, tmp_path)
    snapshot = tmp_path / ".cache/huggingface/hub/models--timm--vit_base_patch32_clip_224.openai/snapshots/abc"
    snapshot.mkdir(parents=True)
    (snapshot / "open_clip_model.safetensors").write_bytes(b"x")
    assert find_clip_weights() == snapshot / "open_clip_model.safetensors"
    (tmp_path / ".cache/clip").mkdir(parents=True)
    (tmp_path / ".cache/clip" / OPENAI_FILENAME).write_bytes(b"x")
    assert find_clip_weights() == tmp_path / ".cache/clip" / OPENAI_FILENAME
    extra = tmp_path / "mine"
    extra.mkdir()
    (extra / OPENAI_FILENAME).write_bytes(b"x")
    assert find_clip_weights(cache_dir=extra) == extra / OPENAI_FILENAME


def test_clip_bad_files_and_options(tmp_path):
    garbage = tmp_path / "ViT-B-32.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="(?s)could not read CLIP weights.*truncated download"):
        build_encoder("clip-vit-b32", weights=str(garbage)).encode(["walk"])
    other = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(2)}, other)
    with pytest.raises(RuntimeError, match="not a CLIP ViT-B/32 checkpoint"):
        build_encoder("clip-vit-b32", weights=str(other)).encode(["walk"])
    torch.save({"positional_embedding": torch.zeros(77, 768)}, other)
    with pytest.raises(RuntimeError, match="(?s)not a CLIP ViT-B/32 checkpoint.*size mismatch"):
        build_encoder("clip-vit-b32", weights=str(other)).encode(["walk"])
    with pytest.raises(ValueError, match="context_length=78"):
        build_encoder("clip-vit-b32", weights=str(other), context_length=78)


def test_minilm_row_depends_on_its_text_alone():
    """The same caption gives the same bytes whatever shares its batch, its position, the batch size or the thread
    count: the cache then returns the same numbers whatever ran before (issue: 196 of 750 mined similarities moved
    with cache history)."""
    texts = ["a person jogs in place", "someone kicks sideways with the left leg while raising both arms high above "
             "the head, then walks forward slowly and turns around twice", "a man walks", "the person stretches"]
    alone = MiniLMEncoder().encode(texts[:1], normalize=False)
    crowd = texts[::-1] + [f"filler caption number {i}" for i in range(70)]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        mixed = build_encoder("minilm", batch_size=8).encode(crowd, normalize=False)
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(alone[0], mixed[3])
    reference = MiniLMEncoder().encode(texts, normalize=False)
    np.testing.assert_array_equal(reference[::-1], mixed[:4])
    # Still the model's embedding: sentence-transformers' own batching agrees to float32 rounding.
    model = MiniLMEncoder()._load()
    np.testing.assert_allclose(model.encode(texts, normalize_embeddings=False), reference, atol=1e-6)
