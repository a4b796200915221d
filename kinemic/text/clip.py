"""CLIP ViT-B/32 text encoder (OpenAI weights) through open_clip, offline, exact and fast on CPU.

Two settings matter (reference/mdm_kinemic.md sections 3 and 7.6):
- MDM conditions on `encode_text` of `clip.tokenize(text, context_length=22, truncate=True)`: 20 BPE tokens plus
  SOT/EOT, and it feeds the RAW (unnormalised) output to its `embed_text` layer -> `context_length=22`,
  `encode(..., normalize=False)`.
- The KineMIC authors mine soft positives with the full 77-token context, L2-normalised -> `context_length=77`,
  `encode(..., normalize=True)`.

MDM runs the tower in fp16 (`convert_weights`); here it runs in fp32 on CPU (fp16 matmuls are slow or missing on CPU).
The two differ by about 1e-3 relative, far below anything the text condition can resolve.

Speed: the text transformer is causal and the embedding is read at the EOT token, so tokens after the longest caption
of a batch never influence the result. `encode` sorts texts by token length and cuts each batch to its longest
sequence (slicing the positional embedding and the causal mask to match): exact, and about 9x faster than the padded
77-token context on short captions (reference/environment.md "Text encoders").

Weights are never downloaded: they come from `CLIPConfig.weights` or from a cache that open_clip, the openai `clip`
package (used by MDM) or Hugging Face filled earlier. Without them the constructor fails at once and says which file to
put where, instead of open_clip's ~47 s of DNS retries.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from kinemic.devices import resolve_device
from kinemic.text.encoders import check_texts, fixed_shape_batches, l2_normalize, show_progress

logger = logging.getLogger(__name__)

MODEL_NAME = "ViT-B-32"
EMBED_DIM = 512
MAX_CONTEXT_LENGTH = 77  # the positional embedding's length: every CLIP text model uses 77
MDM_CONTEXT_LENGTH = 22  # MDM for HumanML3D/KIT: max_text_len 20 + SOT + EOT
OPENAI_SHA256 = "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af"
OPENAI_FILENAME = "ViT-B-32.pt"
OPENAI_URL = f"https://openaipublic.azureedge.net/clip/models/{OPENAI_SHA256}/{OPENAI_FILENAME}"
HF_REPO = "timm/vit_base_patch32_clip_224.openai"  # where open_clip's pretrained='openai' fetches from the Hub
HF_FILENAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
_TEXT_PREFIXES = ("token_embedding.", "positional_embedding", "transformer.", "ln_final.", "text_projection")
# Entries of the OpenAI TorchScript state dict (and of traced models) that are not text-tower parameters.
_NON_PARAMETER_KEYS = ("input_resolution", "context_length", "vocab_size", "attn_mask")


@dataclass(frozen=True)
class CLIPConfig:
    """Options of `CLIPEncoder`.

    weights: path to a checkpoint file: the OpenAI `ViT-B-32.pt` (TorchScript), or an open_clip state dict
        (`open_clip_model.safetensors` / `open_clip_pytorch_model.bin`, or any `torch.save`d CLIP state dict).
        None searches the caches (see `find_clip_weights`).
    cache_dir: an extra folder to search first, like open_clip's `cache_dir` (flat file or Hugging Face layout).
    context_length: tokens per caption including SOT and EOT; longer captions are truncated and end in EOT.
        22 reproduces MDM's conditioning, 77 the authors' mining.
    batch_size, device, progress: speed, placement and a progress bar; they never change the embeddings.
    """

    weights: str | None = None
    cache_dir: str | None = None
    context_length: int = MAX_CONTEXT_LENGTH
    batch_size: int = 64
    device: str = "cpu"
    progress: bool | None = None  # None: a bar when encoding takes AUTO_PROGRESS_BATCHES batches or more

    def __post_init__(self) -> None:
        if not 3 <= self.context_length <= MAX_CONTEXT_LENGTH:
            raise ValueError(
                f"context_length={self.context_length} is not valid: use 3..{MAX_CONTEXT_LENGTH} "
                f"({MDM_CONTEXT_LENGTH} as MDM, {MAX_CONTEXT_LENGTH} for the authors' mining)"
            )
        if self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size} must be >= 1")
        resolve_device(self.device)


# ----------------------------------------------------------------------------------------------------------------------
# Finding the weights


def _openai_cache_dir() -> Path:
    # Both open_clip (URL downloads) and the openai `clip` package (hence MDM) use ~/.cache/clip, not XDG.
    return Path(os.path.expanduser("~/.cache/clip"))


def _hf_hub_cache_dir() -> Path:
    """The Hugging Face hub cache, resolved from the environment now (huggingface_hub reads it once at import)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(xdg) / "huggingface" / "hub"


def _candidates_in(folder: Path) -> list[Path]:
    """Weight files open_clip could have left in `folder`: the flat OpenAI file or a Hugging Face snapshot."""
    found = [folder / OPENAI_FILENAME]
    snapshots = folder / ("models--" + HF_REPO.replace("/", "--")) / "snapshots"
    for name in HF_FILENAMES:
        found.extend(sorted(snapshots.glob(f"*/{name}")))
    return found


def _missing_weights_message(searched: list[Path]) -> str:
    where = "\n".join(f"  - {path}" for path in searched)
    return (
        "CLIP ViT-B/32 (OpenAI) weights not found, and kinemic never downloads weights. Searched:\n"
        f"{where}\n"
        "Put ONE of these files in place (copy it from a machine with internet):\n"
        f"  (a) the OpenAI checkpoint {OPENAI_FILENAME} (338 MB, sha256 {OPENAI_SHA256[:16]}...) from\n"
        f"      {OPENAI_URL}\n"
        f"      at {_openai_cache_dir() / OPENAI_FILENAME} (where the openai `clip` package and MDM keep it);\n"
        f"  (b) {HF_FILENAMES[0]} from the Hugging Face repo {HF_REPO}, e.g.\n"
        f"      `huggingface-cli download {HF_REPO} {HF_FILENAMES[0]}`, which fills {_hf_hub_cache_dir()};\n"
        "  (c) either file anywhere, passed as the encoder option weights=<path>\n"
        "      (build_encoder('clip-vit-b32', weights=...), i.e. CLIPConfig.weights)."
    )


def find_clip_weights(weights: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None) -> Path:
    """The checkpoint file to load, found by file checks only (no network, returns in milliseconds).

    Order: `weights` if given (it must exist), then `cache_dir`, `~/.cache/clip/ViT-B-32.pt`, then the Hugging Face
    hub cache (`$HF_HUB_CACHE`, `$HF_HOME/hub` or `~/.cache/huggingface/hub`) for the open_clip files of
    `timm/vit_base_patch32_clip_224.openai`.
    """
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"CLIP weights file {path} (option weights=) does not exist.\n" + _missing_weights_message([path])
            )
        return path
    folders = ([Path(cache_dir).expanduser()] if cache_dir else []) + [_openai_cache_dir(), _hf_hub_cache_dir()]
    searched = []
    for folder in folders:
        for path in _candidates_in(folder):
            if path.is_file():
                return path
        searched.append(folder / OPENAI_FILENAME)
        searched.append(folder / ("models--" + HF_REPO.replace("/", "--")) / "snapshots" / "*" / HF_FILENAMES[0])
    raise FileNotFoundError(_missing_weights_message(searched))


def file_fingerprint(path: Path) -> str:
    """A short content hash (size + first and last MiB): tells checkpoints apart without reading 338 MB."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as f:
        digest.update(f.read(1 << 20))
        f.seek(max(0, size - (1 << 20)))
        digest.update(f.read(1 << 20))
    return digest.hexdigest()[:12]


# ----------------------------------------------------------------------------------------------------------------------
# Loading


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("constants.pkl") for name in archive.namelist())


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A CLIP state dict from the OpenAI TorchScript file, a safetensors file or a `torch.save`d dict (weights only)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        elif _is_torchscript(path):
            # The OpenAI release is a TorchScript archive, which torch.load(weights_only=True) refuses.
            state = torch.jit.load(str(path), map_location="cpu").state_dict()
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any reader failure means the same thing to the user: a bad file
        first_line = (str(error).splitlines() or [""])[0][:200]
        raise RuntimeError(
            f"could not read CLIP weights from {path} ({type(error).__name__}: {first_line}). A truncated download is "
            f"the usual cause; the OpenAI file {OPENAI_FILENAME} has sha256 {OPENAI_SHA256}."
        ) from error
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise RuntimeError(f"{path} holds a {type(state).__name__}, not a CLIP state dict")
    return {key.removeprefix("module."): value for key, value in state.items() if key not in _NON_PARAMETER_KEYS}


class TextTower(torch.nn.Module):
    """The text half of CLIP, with the parameter names of the OpenAI / open_clip checkpoints.

    Built from an open_clip `CLIP` (QuickGELU, as the OpenAI weights were trained); the vision tower is dropped.
    """

    def __init__(self, clip_model: torch.nn.Module) -> None:
        super().__init__()
        if clip_model.text_pool_type != "argmax" or not isinstance(clip_model.text_projection, torch.nn.Parameter):
            raise ValueError("TextTower expects an OpenAI-style CLIP text tower (argmax pooling, matrix projection)")
        self.token_embedding = clip_model.token_embedding
        self.positional_embedding = clip_model.positional_embedding
        self.transformer = clip_model.transformer
        self.ln_final = clip_model.ln_final
        self.text_projection = clip_model.text_projection
        self.register_buffer("attn_mask", clip_model.attn_mask, persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, L) int64 with L <= 77, each row SOT ... EOT then zeros -> raw embeddings (B, 512)."""
        length = tokens.shape[1]
        x = self.token_embedding(tokens) + self.positional_embedding[:length]  # (B, L, 512)
        # Causal attention: cutting the sequence at L leaves positions < L exactly as in the 77-token forward.
        x = self.transformer(x, attn_mask=self.attn_mask[:length, :length])
        x = self.ln_final(x)
        eot = tokens.argmax(dim=-1)  # EOT (49407) is the largest token id
        return x[torch.arange(x.shape[0], device=x.device), eot] @ self.text_projection


def _causal_mask(size: int) -> torch.Tensor:
    """Additive mask (size, size): -inf above the diagonal, as open_clip builds it."""
    return torch.full((size, size), float("-inf")).triu_(1)


def build_text_tower(state_dict: dict[str, torch.Tensor] | None = None) -> TextTower:
    """A fp32 ViT-B/32 text tower in eval mode, loaded strictly from `state_dict` (None: open_clip's random init)."""
    import open_clip

    config = open_clip.get_model_config(MODEL_NAME)
    if state_dict is None:
        tower = TextTower(open_clip.CLIP(**config, quick_gelu=True))
    else:
        # Build on the meta device and adopt the checkpoint's tensors: skips ~2.5 s of random init of both towers.
        with torch.device("meta"):
            tower = TextTower(open_clip.CLIP(**config, quick_gelu=True))
        text_state = {key: value for key, value in state_dict.items() if key.startswith(_TEXT_PREFIXES)}
        try:
            missing, unexpected = tower.load_state_dict(text_state, strict=False, assign=True)
        except RuntimeError as error:  # shape mismatches: another CLIP size (e.g. ViT-L/14's 768-wide text tower)
            raise RuntimeError(f"not a CLIP ViT-B/32 checkpoint: {str(error)[:300]}") from error
        if missing or unexpected:
            raise RuntimeError(
                f"not a CLIP ViT-B/32 checkpoint: missing text-tower keys {missing[:5]}, unexpected {unexpected[:5]} "
                f"(of {len(missing)} missing / {len(unexpected)} unexpected)"
            )
        tower.attn_mask = _causal_mask(tower.positional_embedding.shape[0])
    tower.float().eval().requires_grad_(False)
    return tower


@functools.lru_cache(maxsize=2)
def _load_tower(path: str, fingerprint: str, device: str) -> TextTower:
    """One tower per checkpoint and device per process: MDM's 22-token encoder and the 77-token mining encoder share
    it (the weights are frozen and the forward never mutates them). `fingerprint` keys a file replaced in place."""
    logger.info("loading CLIP ViT-B/32 text tower from %s (fingerprint %s) on %s", path, fingerprint, device)
    return build_text_tower(read_state_dict(Path(path))).to(device)


@functools.lru_cache(maxsize=1)
def _tokenizer():
    import open_clip

    return open_clip.get_tokenizer(MODEL_NAME)


def tokenize(texts: list[str], context_length: int = MAX_CONTEXT_LENGTH) -> torch.Tensor:
    """int64 (N, context_length): SOT + BPE tokens + EOT, zero-padded; longer texts keep the first
    `context_length - 2` tokens and end in EOT, exactly as `clip.tokenize(..., truncate=True)` (open_clip's tokenizer
    applies the same cleaning: ftfy, whitespace, lower case)."""
    return _tokenizer()(check_texts(texts), context_length=context_length)


# ----------------------------------------------------------------------------------------------------------------------
# The encoder


class CLIPEncoder:
    """CLIP ViT-B/32 text embeddings (512-d), fp32. Finds the weights at construction, loads them on first use."""

    name = "clip-vit-b32"
    dim = EMBED_DIM

    def __init__(self, config: CLIPConfig | None = None) -> None:
        self.config = config or CLIPConfig()
        self.weights_path = find_clip_weights(self.config.weights, self.config.cache_dir)
        self._fingerprint = file_fingerprint(self.weights_path)
        self._device = str(resolve_device(self.config.device))
        self.cache_key = f"clip-vit-b32-{self._fingerprint}-ctx{self.config.context_length}-fp32-fixed"

    def _load(self) -> TextTower:
        return _load_tower(str(self.weights_path.resolve()), self._fingerprint, self._device)

    def encode(self, texts: list[str], normalize: bool = True) -> np.ndarray:
        texts = check_texts(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        tower = self._load()
        tokens = tokenize(texts, self.config.context_length)
        lengths = tokens.argmax(dim=-1).numpy() + 1  # tokens up to and including EOT
        size = self.config.batch_size
        # Each text cut to its own ladder length, in full batches: its row never depends on the other texts.
        batches = fixed_shape_batches(lengths, self.config.context_length, size)
        with torch.inference_mode():
            hidden = not show_progress(self.config.progress, batches)
            for rows, length in tqdm(batches, desc="CLIP text", unit="batch", disable=hidden):
                index = torch.from_numpy(np.concatenate([rows, np.full(size - len(rows), rows[0])]))
                batch = tokens[index, :length].to(self._device)
                out[rows] = tower(batch)[: len(rows)].float().cpu().numpy()
        return l2_normalize(out) if normalize else out
