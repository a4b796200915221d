"""The LoRA student: where adapters go, what trains, and why inference always uses merged weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kinemic.models.mdm import MDM
from kinemic.motion import FeatureStats
from kinemic.student import (
    LoRASettings,
    StudentCheckpoint,
    add_lora,
    lora_targets,
    merged_model,
    trainable_parameter_names,
    with_actions,
)


def _teacher() -> MDM:
    torch.manual_seed(0)
    return MDM(latent_dim=32, ff_size=64, num_layers=2, num_heads=2, text_dim=16, mask_frames=True).eval()


def _inputs():
    g = torch.Generator().manual_seed(1)
    return (torch.randn(2, 9, 263, generator=g), torch.tensor([3, 5]), torch.randn(2, 16, generator=g),
            torch.tensor([0, 2]))


def test_adapters_on_the_authors_layers():
    names = lora_targets(with_actions(_teacher(), 3, seed=1))
    assert sorted(names) == sorted(
        ["input_process.poseEmbedding", "output_process.poseFinal", "embed_timestep.time_embed.0",
         "embed_timestep.time_embed.2"]
        + [f"seqTransEncoder.layers.{i}.{m}" for i in range(2) for m in ("self_attn", "linear1", "linear2")]
    )


def test_only_adapters_and_action_embedding_get_gradients():
    student = add_lora(with_actions(_teacher(), 3, seed=1), LoRASettings(rank=4, alpha=8))
    student.train()
    x, t, text, action = _inputs()
    student(x, t, text_emb=text, action=action).square().mean().backward()
    with_grad = {n for n, p in student.named_parameters() if p.grad is not None}
    assert with_grad == set(trainable_parameter_names(student))
    assert all("lora_" in n or n.endswith("embed_action.action_embedding") for n in with_grad)
    # every adapted layer gets gradient: q/k/v (packed), out_proj, feed-forward, projections, timestep MLP
    adapted = {
        n.split(".lora_")[0] for n in with_grad if "lora_B" in n and student.get_parameter(n).grad.abs().sum() > 0
    }
    assert len(adapted) == len(lora_targets(student.get_base_model())) + 2  # + out_proj of each attention
    assert any(n.endswith("embed_action.action_embedding") for n in with_grad)


def test_merged_and_wrapped_students_agree_on_every_path():
    student = add_lora(with_actions(_teacher(), 3, seed=1), LoRASettings(rank=4, alpha=8))
    for name, param in student.named_parameters():
        if "lora_B" in name:
            param.data.normal_()  # a trained adapter
    student.eval()
    x, t, text, action = _inputs()
    merged = merged_model(student)
    assert type(merged) is MDM
    with torch.enable_grad():  # gradients on: PyTorch's regular path, through peft's merge-on-forward
        reference = student(x, t, text_emb=text, action=action)
    with torch.no_grad():
        torch.testing.assert_close(merged(x, t, text_emb=text, action=action), reference, rtol=1e-4, atol=1e-4)
        # torch's fused inference path would read the un-adapted in_proj_weight; MDM's encoder layers skip it while
        # a sublayer is wrapped, so the wrapped student agrees in eval mode too.
        torch.testing.assert_close(student(x, t, text_emb=text, action=action), reference, rtol=1e-4, atol=1e-4)


def test_student_starts_as_the_teacher_with_actions_dropped():
    teacher = _teacher()
    student = with_actions(teacher, 3, seed=1).eval()
    x, t, text, _ = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(student(x, t, text_emb=text), teacher(x, t, text_emb=text))


def test_checkpoint_round_trip(tmp_path):
    model = merged_model(with_actions(_teacher(), 2, seed=1))
    stats = FeatureStats(mean=np.zeros(263, np.float32), std=np.ones(263, np.float32))
    ckpt = StudentCheckpoint(model, "lora", ["a", "b"], ["p a", "p b"], np.ones((2, 16), np.float32), stats, 50,
                             "cosine", 64, {"encoder": "minilm", "options": {}, "normalize": True}, {"steps": 3})
    ckpt.save(tmp_path / "student.pt")
    loaded = StudentCheckpoint.load(tmp_path / "student.pt")
    assert loaded.method == "lora" and loaded.uses_action and loaded.class_names == ["a", "b"]
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[key], value)
    path = tmp_path / "student.pt"
    path.write_bytes(path.read_bytes()[:1000])  # cut short: the error names the file and the stage that writes it
    with pytest.raises(ValueError, match=r"student\.pt.*dvc repro -f train"):
        StudentCheckpoint.load(path)
