"""The Mining-In-Context module: a BiGRU with attention pooling over a stream's frame features (paper sec. 4.2).

It condenses the last transformer layer's per-frame features (condition token removed) into one context vector z, and
its attention weights over frames are what the window search reads (eq. 2). Sizes follow the authors' module
(reference/mdm_kinemic.md 7.3): input projection, one bidirectional GRU layer with a learnable initial state, an
attention head Linear-LayerNorm-LeakyReLU-Linear, and an output head of the same shape; Xavier-normal weights, zero
biases.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


@dataclass(frozen=True)
class MICConfig:
    input_dim: int = 512
    hidden_dim: int = 512
    output_dim: int = 512

    def __post_init__(self) -> None:
        for name in ("input_dim", "hidden_dim", "output_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"MICConfig.{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class MICOutput:
    z: Tensor  # (B, output_dim) context vector
    attention: Tensor  # (B, T) softmax weights over valid frames, 0 on padding


def _head(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.LayerNorm(hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, out_dim))


class MIC(nn.Module):
    def __init__(self, config: MICConfig) -> None:
        super().__init__()
        self.config = config
        h = config.hidden_dim
        self.input_emb = nn.Linear(config.input_dim, h)
        self.gru = nn.GRU(h, h, batch_first=True, bidirectional=True)
        self.hidden0 = nn.Parameter(torch.randn(2, 1, h))
        self.attention_net = _head(2 * h, h, 1)
        self.output_net = _head(2 * h, h, config.output_dim)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_normal_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, features: Tensor, lengths: Tensor) -> MICOutput:
        """features (B, T, input_dim) and lengths (B,) of valid frames -> z (B, output_dim), attention (B, T)."""
        batch, frames, _ = features.shape
        if lengths.shape != (batch,) or int(lengths.min()) < 1 or int(lengths.max()) > frames:
            raise ValueError(f"lengths must be ({batch},) in [1, {frames}], got {lengths.tolist()}")
        x = self.input_emb(features)  # (B, T, H)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed, self.hidden0.expand(-1, batch, -1).contiguous())
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=frames)  # (B, T, 2H)
        valid = torch.arange(frames, device=features.device)[None, :] < lengths.to(features.device)[:, None]
        scores = self.attention_net(out).squeeze(-1)  # (B, T)
        scores = scores.masked_fill(~valid, float("-inf"))
        attention = torch.softmax(scores, dim=1)  # padding gets exactly 0
        context = torch.einsum("bt,btc->bc", attention, out)  # (B, 2H)
        return MICOutput(z=self.output_net(context), attention=attention)
