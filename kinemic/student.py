"""The student stream: a copy of the teacher with LoRA adapters (peft) and a new action embedding.

LoRA goes where the authors put it (reference/mdm_kinemic.md 7.5): attention (q, k, v and out), the feed-forward
`linear1`/`linear2`, the input and output projections and both Linears of the timestep MLP. Everything else is frozen
(text projection and LayerNorms included) except the action embedding, which is new and trained fully.

`nn.MultiheadAttention` in peft: peft wraps it by merging the adapter into the packed `in_proj_weight` for the duration
of each forward (gradients reach the adapter through the merge) and applies a plain LoRA Linear to `out_proj`. PyTorch's
fused inference path of `nn.TransformerEncoderLayer` would read `in_proj_weight` straight from the wrapped module and
silently use the base weights; MDM's `EncoderLayer` therefore takes that path only while its sublayers are plain
modules (tested in both places).

The saved student (`StudentCheckpoint`) holds merged MDM weights (`merged_model`), so generation runs the plain, fast
model and treats every method alike.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from kinemic.checkpoints import (
    atomic_torch_save,
    mdm_from_dict,
    mdm_to_dict,
    read_checkpoint,
    stats_from_dict,
    stats_to_dict,
)
from kinemic.diffusion import GaussianDiffusion
from kinemic.models.mdm import MDM, MDMConfig
from kinemic.motion import FeatureStats

STUDENT_FORMAT = "kinemic.student/1"
# Full-name regex over MDM's modules: attention, feed-forward, input/output projections, timestep MLP.
LORA_TARGETS = r".*(self_attn|linear1|linear2|poseEmbedding|poseFinal|time_embed\.0|time_embed\.2)$"


@dataclass(frozen=True)
class LoRASettings:
    """Params `train.lora`: the adapters' rank, scale (alpha / rank) and dropout; the defaults are the paper's."""

    rank: int = 16
    alpha: float = 32.0
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {self.rank}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LoRA dropout must be in [0, 1), got {self.dropout}")


def with_actions(teacher: MDM, num_actions: int, seed: int) -> MDM:
    """A copy of the teacher with a fresh N(0, 1) action embedding for `num_actions` classes (seeded)."""
    if num_actions < 1:
        raise ValueError(f"the student needs at least one action class, got {num_actions}")
    config = MDMConfig.from_dict({**teacher.config.to_dict(), "num_actions": num_actions})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        student = MDM.from_config(config)
    missing, unexpected = student.load_state_dict(teacher.state_dict(), strict=False)
    if unexpected or set(missing) != {"embed_action.action_embedding"}:
        raise RuntimeError(f"teacher -> student weight copy mismatch: missing {missing}, unexpected {unexpected}")
    return student.to(next(teacher.parameters()).device)


def add_lora(student: MDM, settings: LoRASettings) -> nn.Module:
    """Wrap the student with LoRA adapters; only adapters and the action embedding stay trainable."""
    # Imported here: peft pulls in transformers and torch._dynamo (~2.7 s on 2 cores), which the stages that only
    # load a merged student (generate, evaluate) never need.
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=LORA_TARGETS,
        bias="none",
    )
    wrapped = get_peft_model(student, config)
    for name, param in wrapped.named_parameters():
        param.requires_grad = "lora_" in name or name.endswith("embed_action.action_embedding")
    return wrapped


def trainable_parameter_names(model: nn.Module) -> list[str]:
    return [name for name, p in model.named_parameters() if p.requires_grad]


def merged_model(model: nn.Module) -> MDM:
    """A plain MDM with any LoRA adapters folded into its weights (the wrapped model is left untouched)."""
    if isinstance(model, MDM):
        return copy.deepcopy(model)
    merged = copy.deepcopy(model).merge_and_unload()
    if not isinstance(merged, MDM):
        raise TypeError(f"merging adapters gave {type(merged).__name__}, expected MDM")
    return merged


def lora_targets(model: nn.Module) -> list[str]:
    """Names of the modules LoRA attaches to (for documentation and tests)."""
    pattern = re.compile(LORA_TARGETS)
    return [name for name, _ in model.named_modules() if pattern.fullmatch(name)]


@dataclass
class StudentCheckpoint:
    """What `generate` needs: merged weights, class conditioning, normalisation and the sampling schedule."""

    model: MDM
    method: str
    class_names: list[str]
    class_prompts: list[str]
    prompt_embeddings: np.ndarray  # (C, text_dim): the text condition of each class
    stats: FeatureStats
    diffusion_steps: int
    noise_schedule: str
    max_frames: int
    text_encoder: dict[str, Any]  # the teacher's TextSpec: what embeds any new text condition
    extra: dict[str, Any]

    @property
    def uses_action(self) -> bool:
        return self.model.config.num_actions > 0

    def diffusion(self, respacing: int | None = None) -> GaussianDiffusion:
        return GaussianDiffusion(self.diffusion_steps, self.noise_schedule, respacing)

    def save(self, path: Path) -> None:
        atomic_torch_save(
            {
                "format": STUDENT_FORMAT,
                "method": self.method,
                **mdm_to_dict(self.model),
                "class_names": list(self.class_names),
                "class_prompts": list(self.class_prompts),
                "prompt_embeddings": torch.from_numpy(np.asarray(self.prompt_embeddings, np.float32)),
                "stats": stats_to_dict(self.stats),
                "diffusion": {"steps": self.diffusion_steps, "schedule": self.noise_schedule},
                "max_frames": self.max_frames,
                "text_encoder": dict(self.text_encoder),
                "extra": self.extra,
            },
            path,
        )

    @classmethod
    def load(cls, path: Path, device: str | torch.device = "cpu") -> StudentCheckpoint:
        data = read_checkpoint(path, STUDENT_FORMAT, stage="train")
        return cls(
            model=mdm_from_dict(data, device),
            method=data["method"],
            class_names=list(data["class_names"]),
            class_prompts=list(data["class_prompts"]),
            prompt_embeddings=data["prompt_embeddings"].numpy(),
            stats=stats_from_dict(data["stats"]),
            diffusion_steps=int(data["diffusion"]["steps"]),
            noise_schedule=str(data["diffusion"]["schedule"]),
            max_frames=int(data["max_frames"]),
            text_encoder=dict(data["text_encoder"]),
            extra=dict(data["extra"]),
        )
