"""MDM: the transformer-encoder text-to-motion denoiser of Tevet et al. (2022), with KineMIC's action embedding.

The module names and parameter shapes are those of the official `model/mdm.py` (trans_enc architecture), so the released
HumanML3D checkpoints load with `load_state_dict(strict=True)` once their `clip_model.*` keys are dropped (see
`kinemic.checkpoint_import`). CLIP itself is not part of this module: `forward` takes a precomputed text embedding (for
official checkpoints, the raw `clip_model.encode_text` output), which is what the official code caches anyway.

What differs from the official code, on purpose:
- batch-first everywhere: motions are (B, T, njoints) as in the rest of kinemic; the weights do not care about the
  layout. Batch-first also lets `nn.TransformerEncoderLayer` take its fused inference fast path
  (`torch._transformer_encoder_layer_fwd`: one kernel sequence per layer, fused attention) whenever gradients are off,
  e.g. under `torch.inference_mode()`. It matches the regular path to float32 round-off (~1e-6, checked by the parity
  tests in both modes). In training the regular path runs, and its attention is `scaled_dot_product_attention` anyway.
  The fast path is skipped for layers whose sublayers are wrapped (unmerged LoRA), which it would silently bypass.
- condition dropout for classifier-free guidance can be seeded (`generator`), and `uncond` can be set per sample so that
  the conditional and unconditional guidance passes run as one batch;
- KineMIC's dual conditioning (paper Fig. 3; `cond_mode='mixed'` in the authors' code): a learned action embedding is
  added to the same condition token as the timestep and text embeddings; text and action are dropped independently,
  each with its own probability ("independently dropped", paper sec. 4; the authors' code uses 0.1 for both).

Shapes: B batch, T frames, J = njoints (263 for HumanML3D features), D = latent_dim, C = text_dim.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

ACTIVATIONS = ("gelu", "relu")


def _require_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"MDMConfig.{name} must be an integer >= {minimum}, got {value!r}")


def _require_probability(name: str, value: Any, upper_open: bool = False) -> None:
    valid = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not valid or not (0.0 <= value < 1.0 if upper_open else 0.0 <= value <= 1.0):
        interval = "[0, 1)" if upper_open else "[0, 1]"
        raise ValueError(f"MDMConfig.{name} must be a number in {interval}, got {value!r}")


@dataclass(frozen=True)
class MDMConfig:
    """Sizes and conditioning of an MDM. Defaults are the official HumanML3D model (512 wide, 8 layers, text only).

    `num_actions > 0` adds KineMIC's action embedding. `mask_frames=True` hides padded frames from attention (the 2025
    fix of the official repo, used by the 50-step model KineMIC starts from); `False` reproduces the 2022 model, which
    attended to padding. `cond_mask_prob` / `action_mask_prob`: per-sample probability of dropping the text / action
    condition in training (classifier-free guidance). `max_len`: rows of the positional table; it bounds both the
    sequence (frames + the condition token) and the diffusion step, since the timestep embedding reads the same table.
    """

    latent_dim: int = 512
    ff_size: int = 1024
    num_layers: int = 8
    num_heads: int = 4
    dropout: float = 0.1
    activation: str = "gelu"
    njoints: int = 263
    text_dim: int = 512
    num_actions: int = 0
    mask_frames: bool = False
    cond_mask_prob: float = 0.1
    action_mask_prob: float = 0.1
    max_len: int = 5000

    def __post_init__(self) -> None:
        for name in ("latent_dim", "ff_size", "num_layers", "num_heads", "njoints", "text_dim"):
            _require_int(name, getattr(self, name), 1)
        _require_int("num_actions", self.num_actions, 0)
        _require_int("max_len", self.max_len, 2)
        if self.latent_dim % self.num_heads:
            raise ValueError(
                f"MDMConfig.latent_dim ({self.latent_dim}) must be divisible by num_heads ({self.num_heads})"
            )
        if self.latent_dim % 2:
            raise ValueError(f"MDMConfig.latent_dim must be even (sin/cos positional table), got {self.latent_dim}")
        _require_probability("dropout", self.dropout, upper_open=True)
        _require_probability("cond_mask_prob", self.cond_mask_prob)
        _require_probability("action_mask_prob", self.action_mask_prob)
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"MDMConfig.activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if not isinstance(self.mask_frames, bool):
            raise ValueError(f"MDMConfig.mask_frames must be a bool, got {self.mask_frames!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> MDMConfig:
        """Build from a plain mapping (params.yaml section, checkpoint JSON); unknown keys are an error, not ignored."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown MDMConfig keys {unknown}; valid keys are {sorted(known)}")
        return cls(**values)


def sinusoidal_table(max_len: int, dim: int) -> Tensor:
    """The official positional table, [max_len, 1, dim] float32, sin on even and cos on odd columns (interleaved).

    Computed in float32 with the official formula. It matches the `pe` buffers stored in checkpoints to float32
    round-off only (an ulp of exp() differs between CPU math libraries, and an ulp of an argument near 5000 rad is
    5e-4): measured <= 2.5e-4 over all 5000 rows and < 1e-5 over the first 200. Loading a checkpoint restores its
    exact table. Always computed on CPU (even under a `torch.device('meta')` context, whose arange would import the
    whole decomposition stack): it is a constant that moves with the module.
    """
    position = torch.arange(max_len, dtype=torch.float32, device="cpu").unsqueeze(1)  # (max_len, 1)
    div_term = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device="cpu") * (-math.log(10000.0) / dim))
    table = torch.zeros(max_len, dim, device="cpu")
    table[:, 0::2] = torch.sin(position * div_term)
    table[:, 1::2] = torch.cos(position * div_term)
    return table.unsqueeze(1)  # (max_len, 1, dim): the official seq-first buffer layout


def _drop_mask(batch: int, prob: float, device: torch.device, generator: torch.Generator | None) -> Tensor:
    """(B,) bool, True where a condition is dropped: independent Bernoulli(prob) draws, seedable with `generator`."""
    if prob <= 0.0:
        return torch.zeros(batch, dtype=torch.bool, device=device)
    draw_device = generator.device if generator is not None else device
    return (torch.rand(batch, generator=generator, device=draw_device) < prob).to(device)


class InputProcess(nn.Module):
    """Per-frame linear embedding of the motion features (official `InputProcess`, hml_vec branch)."""

    def __init__(self, njoints: int, latent_dim: int) -> None:
        super().__init__()
        self.poseEmbedding = nn.Linear(njoints, latent_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.poseEmbedding(x)  # (B, T, J) -> (B, T, D)


class OutputProcess(nn.Module):
    """Per-frame linear read-out to motion features (official `OutputProcess`, hml_vec branch)."""

    def __init__(self, njoints: int, latent_dim: int) -> None:
        super().__init__()
        self.poseFinal = nn.Linear(latent_dim, njoints)

    def forward(self, h: Tensor) -> Tensor:
        return self.poseFinal(h)  # (B, T, D) -> (B, T, J)


class PositionalEncoding(nn.Module):
    """Adds the sinusoidal table to a batch-first token sequence, then dropout (official `PositionalEncoding`)."""

    def __init__(self, latent_dim: int, dropout: float, max_len: int) -> None:
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        # Persistent so the official state dict (which stores it) loads with strict=True.
        self.register_buffer("pe", sinusoidal_table(max_len, latent_dim).to(torch.get_default_device()))

    def forward(self, tokens: Tensor) -> Tensor:
        length = tokens.shape[1]
        return self.dropout(tokens + self.pe[:length].transpose(0, 1))  # pe (L, 1, D) -> (1, L, D), broadcast over B


class TimestepEmbedder(nn.Module):
    """Diffusion step t -> D vector: the positional table row t through Linear-SiLU-Linear (official, no dropout).

    Holds a reference to the model's `PositionalEncoding` (as the official module does), which is why the same `pe`
    tensor appears twice in the state dict.
    """

    def __init__(self, latent_dim: int, sequence_pos_encoder: PositionalEncoding) -> None:
        super().__init__()
        self.sequence_pos_encoder = sequence_pos_encoder
        self.time_embed = nn.Sequential(nn.Linear(latent_dim, latent_dim), nn.SiLU(), nn.Linear(latent_dim, latent_dim))

    def forward(self, t: Tensor) -> Tensor:
        return self.time_embed(self.sequence_pos_encoder.pe[t, 0])  # pe[t, 0]: (B, D) -> (B, D)


class EmbedAction(nn.Module):
    """KineMIC's learned class embedding: one N(0, 1)-initialised D vector per target action class."""

    def __init__(self, num_actions: int, latent_dim: int) -> None:
        super().__init__()
        self.action_embedding = nn.Parameter(torch.randn(num_actions, latent_dim))

    def forward(self, action: Tensor) -> Tensor:
        return self.action_embedding[action]  # (B,) -> (B, D)


class EncoderLayer(nn.TransformerEncoderLayer):
    """Post-norm `nn.TransformerEncoderLayer` (same parameter names) that takes torch's fused inference fast path only
    while its sublayers are the plain torch modules.

    The fast path reads `self_attn.in_proj_weight`, `linear1.weight`, ... directly instead of calling the sublayers, so
    an adapter that wraps a sublayer (peft LoRA before merging) would be silently ignored in eval mode. Wrapped layers
    therefore run the composed path below, which calls each sublayer and equals the regular torch path.
    """

    _PLAIN_SUBLAYERS = (
        ("self_attn", nn.MultiheadAttention), ("linear1", nn.Linear), ("linear2", nn.Linear),
        ("norm1", nn.LayerNorm), ("norm2", nn.LayerNorm),
    )

    def forward(
        self, src: Tensor, src_mask: Tensor | None = None, src_key_padding_mask: Tensor | None = None,
        is_causal: bool = False,
    ) -> Tensor:
        if all(type(getattr(self, name)) is plain for name, plain in self._PLAIN_SUBLAYERS):
            return super().forward(src, src_mask, src_key_padding_mask, is_causal)
        attended = self.self_attn(
            src, src, src, attn_mask=src_mask, key_padding_mask=src_key_padding_mask, need_weights=False
        )[0]
        x = self.norm1(src + self.dropout1(attended))
        return self.norm2(x + self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x))))))


class MDM(nn.Module):
    """Motion Diffusion Model denoiser: predicts x0 from a noisy motion x_t, the step t and a condition.

    Build with `MDM(latent_dim=256, ...)` (any `MDMConfig` field, unknown names are an error) or
    `MDM.from_config(config)`; `model.config` is the frozen config, saved with checkpoints.
    """

    def __init__(self, config: MDMConfig | None = None, **fields: Any) -> None:
        super().__init__()
        if config is not None and fields:
            raise ValueError(f"pass either a config or MDMConfig fields, not both (got config and {sorted(fields)})")
        if config is None:
            valid = {field.name for field in dataclasses.fields(MDMConfig)}
            unknown = sorted(set(fields) - valid)
            if unknown:
                raise ValueError(f"unknown MDM arguments {unknown}; valid MDMConfig fields are {sorted(valid)}")
            config = MDMConfig(**fields)
        self.config = config
        d = config.latent_dim

        # Registration order follows the official module, so `state_dict()` lists keys in the official order.
        self.input_process = InputProcess(config.njoints, d)
        self.sequence_pos_encoder = PositionalEncoding(d, config.dropout, config.max_len)
        layer = EncoderLayer(
            d_model=d,
            nhead=config.num_heads,
            dim_feedforward=config.ff_size,
            dropout=config.dropout,
            activation=config.activation,
            batch_first=True,
        )
        # Post-norm, no final norm, as trained. Nested tensors are off: they would zero the outputs at padded frames in
        # the inference fast path only, so eval and train outputs at padding would disagree.
        self.seqTransEncoder = nn.TransformerEncoder(layer, num_layers=config.num_layers, enable_nested_tensor=False)
        self.embed_timestep = TimestepEmbedder(d, self.sequence_pos_encoder)
        self.embed_text = nn.Linear(config.text_dim, d)
        if config.num_actions > 0:
            self.embed_action = EmbedAction(config.num_actions, d)
        self.output_process = OutputProcess(config.njoints, d)

    @classmethod
    def from_config(cls, config: MDMConfig) -> MDM:
        return cls(config)

    def condition_token(
        self,
        t: Tensor,
        text_emb: Tensor | None = None,
        action: Tensor | None = None,
        uncond: bool | Tensor = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """(B, D) condition token: timestep embedding + embed_text(text, zeroed if dropped) [+ action embedding].

        The text embedding is zeroed BEFORE `embed_text`, so the null text condition is `embed_text.bias` (official
        `mask_cond`), not an embedding of the empty string. A dropped action contributes nothing (KineMIC).
        """
        batch = t.shape[0]
        device = t.device
        if isinstance(uncond, Tensor):
            if uncond.shape != (batch,):
                raise ValueError(f"uncond must be a bool or a ({batch},) bool tensor, got shape {tuple(uncond.shape)}")
            drop = uncond.to(device=device, dtype=torch.bool)
        else:
            drop = torch.full((batch,), bool(uncond), dtype=torch.bool, device=device)
        drop_text, drop_action = drop, drop
        if self.training:  # classifier-free guidance training: drop each condition independently per sample
            drop_text = drop | _drop_mask(batch, self.config.cond_mask_prob, device, generator)
            drop_action = drop | _drop_mask(batch, self.config.action_mask_prob, device, generator)

        token = self.embed_timestep(t)
        if text_emb is None:
            text_emb = torch.zeros(batch, self.config.text_dim, device=device, dtype=token.dtype)
        elif text_emb.shape != (batch, self.config.text_dim):
            raise ValueError(
                f"text_emb must have shape ({batch}, {self.config.text_dim}), got {tuple(text_emb.shape)}"
            )
        text_emb = torch.where(drop_text.unsqueeze(1), torch.zeros_like(text_emb), text_emb)  # (B, C)
        token = token + self.embed_text(text_emb)
        if action is not None:
            if self.config.num_actions == 0:
                raise ValueError("action was given but the model has num_actions=0 (no action embedding)")
            if action.shape != (batch,):
                raise ValueError(f"action must be a ({batch},) tensor of class ids, got shape {tuple(action.shape)}")
            action_emb = self.embed_action(action)  # (B, D)
            token = token + torch.where(drop_action.unsqueeze(1), torch.zeros_like(action_emb), action_emb)
        return token

    def forward(
        self,
        x_t: Tensor,
        t: Tensor,
        text_emb: Tensor | None = None,
        action: Tensor | None = None,
        uncond: bool | Tensor = False,
        mask: Tensor | None = None,
        return_latent: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Predict x0.

        Args:
            x_t: (B, T, J) noisy motions.
            t: (B,) long diffusion steps (as the model was trained on: original, not respaced, indices).
            text_emb: (B, C) precomputed text embeddings, or None for the null text condition.
            action: (B,) long class ids (needs num_actions > 0), or None for no action.
            uncond: True, or a (B,) bool tensor, to drop text and action for those samples (guidance's null pass).
            mask: (B, T) bool, True on valid frames. Used only when `config.mask_frames`; otherwise padded frames are
                attended to, as in the 2022 model.
            return_latent: also return the (B, T, D) output of the last encoder layer without the condition token,
                before `poseFinal` (what KineMIC's MIC module and latent distillation read).
            generator: seeds the training-mode condition dropout; unused in eval mode.

        Returns:
            x0 (B, T, J), or (x0, latent) when `return_latent`.
        """
        if x_t.dim() != 3 or x_t.shape[-1] != self.config.njoints:
            raise ValueError(f"x_t must be (B, T, {self.config.njoints}), got {tuple(x_t.shape)}")
        batch, frames, _ = x_t.shape
        if t.shape != (batch,):
            raise ValueError(f"t must be a ({batch},) tensor of steps, got shape {tuple(t.shape)}")
        if frames + 1 > self.config.max_len:
            raise ValueError(f"{frames} frames + the condition token exceed max_len={self.config.max_len}")

        token = self.condition_token(t, text_emb, action, uncond, generator)  # (B, D)
        tokens = torch.cat([token.unsqueeze(1), self.input_process(x_t)], dim=1)  # (B, T+1, D)
        tokens = self.sequence_pos_encoder(tokens)
        padding = self._key_padding_mask(mask, batch, frames, x_t.device)
        encoded = self.seqTransEncoder(tokens, src_key_padding_mask=padding)  # (B, T+1, D)
        latent = encoded[:, 1:]  # (B, T, D): the condition token is dropped
        x0 = self.output_process(latent)
        return (x0, latent) if return_latent else x0

    def _key_padding_mask(self, mask: Tensor | None, batch: int, frames: int, device: torch.device) -> Tensor | None:
        """(B, T+1) bool, True = ignore, with the condition token always visible; None when frames are not masked."""
        if mask is None or not self.config.mask_frames:
            return None
        if mask.shape != (batch, frames) or mask.dtype != torch.bool:
            raise ValueError(f"mask must be a ({batch}, {frames}) bool tensor, got {mask.dtype} {tuple(mask.shape)}")
        token_visible = torch.ones(batch, 1, dtype=torch.bool, device=device)
        return ~torch.cat([token_visible, mask], dim=1)  # (B, T+1)


def count_parameters(model: nn.Module) -> int:
    """Learnable parameters (the `pe` tables are buffers and do not count), as the official model reports them."""
    return sum(p.numel() for p in model.parameters())
