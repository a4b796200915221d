"""MDM: config, official-checkpoint layout, parity with the official forward, conditioning, masking, gradients."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from torch import nn

from kinemic.models.mdm import MDM, MDMConfig, count_parameters, sinusoidal_table

# The shared parity model: official constructor with latent 64, ff 128, 2 layers, 4 heads (mdm_small_config.json).
SMALL = dict(latent_dim=64, ff_size=128, num_layers=2, num_heads=4)
TINY = dict(latent_dim=32, ff_size=64, num_layers=2, num_heads=4, njoints=12, text_dim=16, max_len=1000)


def official_to_ours(array: np.ndarray) -> torch.Tensor:
    """Official (B, J, 1, T) motion -> kinemic (B, T, J)."""
    return torch.from_numpy(array)[:, :, 0].permute(0, 2, 1)  # (B, J, 1, T) -> (B, T, J)


def tiny_model(seed: int = 0, **overrides) -> MDM:
    torch.manual_seed(seed)
    return MDM(**{**TINY, "dropout": 0.0, **overrides}).eval()


def tiny_inputs(batch: int = 3, frames: int = 10, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, frames, TINY["njoints"], generator=gen)
    t = torch.randint(0, 1000, (batch,), generator=gen)
    text = torch.randn(batch, TINY["text_dim"], generator=gen)
    return x, t, text


# -- config ----------------------------------------------------------------------------------------------------------


def test_config_defaults_are_the_official_model():
    cfg = MDMConfig()
    assert (cfg.latent_dim, cfg.ff_size, cfg.num_layers, cfg.num_heads, cfg.njoints, cfg.text_dim) == (
        512, 1024, 8, 4, 263, 512,
    )
    assert cfg.activation == "gelu" and not cfg.mask_frames and cfg.num_actions == 0


def test_config_round_trip():
    cfg = MDMConfig(latent_dim=256, num_layers=4, text_dim=384, num_actions=3, mask_frames=True)
    assert MDMConfig.from_dict(cfg.to_dict()) == cfg
    assert MDM.from_config(cfg).config == cfg


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("latent_dim", 0, "latent_dim must be an integer >= 1"),
        ("latent_dim", 30, "divisible by num_heads"),
        ("num_layers", 2.0, "num_layers must be an integer"),
        ("num_heads", True, "num_heads must be an integer"),
        ("num_actions", -1, "num_actions must be an integer >= 0"),
        ("dropout", 1.0, r"dropout must be a number in \[0, 1\)"),
        ("cond_mask_prob", 1.5, r"cond_mask_prob must be a number in \[0, 1\]"),
        ("action_mask_prob", -0.1, "action_mask_prob"),
        ("activation", "swish", "activation must be one of"),
        ("mask_frames", 1, "mask_frames must be a bool"),
        ("max_len", 1, "max_len must be an integer >= 2"),
    ],
)
def test_config_validation_names_field_and_value(field, value, message):
    with pytest.raises(ValueError, match=message) as err:
        MDMConfig(**{field: value})
    assert repr(value) in str(err.value) or str(value) in str(err.value)


def test_config_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match=r"unknown MDMConfig keys \['layers'\]"):
        MDMConfig.from_dict({"layers": 8})


def test_model_rejects_unknown_arguments_and_double_config():
    with pytest.raises(ValueError, match=r"unknown MDM arguments \['layers'\]"):
        MDM(layers=8)
    with pytest.raises(ValueError, match="either a config or"):
        MDM(MDMConfig(), latent_dim=64)


# -- official layout ---------------------------------------------------------------------------------------------------


def test_full_size_keys_shapes_and_parameter_count(parity_dir):
    expected = [(key, tuple(shape)) for key, shape in json.loads((parity_dir / "mdm_full_keys.json").read_text())]
    with torch.device("meta"):  # shapes only: no memory, no init
        model = MDM()
    assert [(key, tuple(value.shape)) for key, value in model.state_dict().items()] == expected
    assert count_parameters(model) == 17_880_327


def test_positional_table_matches_official_buffer(parity_dir):
    stored = torch.load(parity_dir / "mdm_small_state_dict.pt", weights_only=True)["sequence_pos_encoder.pe"]
    table = sinusoidal_table(5000, 64)
    assert table.shape == stored.shape == (5000, 1, 64)
    # Float32 round-off of exp() and of arguments up to 5000 rad (see sinusoidal_table); tight where sequences live.
    torch.testing.assert_close(table[:200], stored[:200], atol=1e-5, rtol=0)
    torch.testing.assert_close(table, stored, atol=5e-4, rtol=0)


def test_timestep_embedder_shares_the_positional_table():
    model = tiny_model()
    assert model.embed_timestep.sequence_pos_encoder is model.sequence_pos_encoder
    state = model.state_dict()
    assert torch.equal(state["sequence_pos_encoder.pe"], state["embed_timestep.sequence_pos_encoder.pe"])
    assert "pe" not in dict(model.named_parameters())


@pytest.mark.parametrize("suffix", ["", "_perturbed"])
@pytest.mark.parametrize("fast_path", [False, True], ids=["regular", "inference_fast_path"])
def test_parity_with_official_forward(parity_dir, suffix, fast_path):
    config = json.loads((parity_dir / "mdm_small_config.json").read_text())["config"]
    model = MDM(**{key: config[key] for key in SMALL}, dropout=config["dropout"], activation=config["activation"])
    state = torch.load(parity_dir / f"mdm_small_state_dict{suffix}.pt", weights_only=True)
    model.load_state_dict(state, strict=True)
    model.eval()
    with np.load(parity_dir / f"mdm_forward{suffix}.npz") as data:
        ref = {key: data[key] for key in data.files}
    x, t, text = official_to_ours(ref["x"]), torch.from_numpy(ref["timesteps"]), torch.from_numpy(ref["text_emb"])
    x_before = x.clone()
    context = torch.inference_mode() if fast_path else torch.enable_grad()
    with context:
        cond, latent = model(x, t, text, return_latent=True)
        uncond = model(x, t, text, uncond=True)
    torch.testing.assert_close(cond, official_to_ours(ref["out_cond"]), atol=1e-5, rtol=0)
    torch.testing.assert_close(uncond, official_to_ours(ref["out_uncond"]), atol=1e-5, rtol=0)
    assert torch.equal(x, x_before)
    if not suffix:  # debug tensors of the plain set: the latent is the encoder output without the condition token
        encoder_out = torch.from_numpy(ref["dbg_encoder_out_cond"])[1:].permute(1, 0, 2)  # (T, B, D) -> (B, T, D)
        torch.testing.assert_close(latent, encoder_out, atol=1e-5, rtol=0)
        time_emb = torch.from_numpy(ref["dbg_timestep_emb_cond"])[0]  # (1, B, D) -> (B, D)
        with torch.no_grad():
            torch.testing.assert_close(model.embed_timestep(t), time_emb, atol=1e-6, rtol=0)


# -- conditioning ----------------------------------------------------------------------------------------------------


def test_null_condition_is_embed_text_bias():
    model = tiny_model()
    x, t, text = tiny_inputs()
    with torch.no_grad():
        uncond = model(x, t, text, uncond=True)
        no_text = model(x, t, None)
        zero_text = model(x, t, torch.zeros_like(text))
        token = model.condition_token(t, text, uncond=True)
        expected_token = model.embed_timestep(t) + model.embed_text.bias
    assert torch.equal(uncond, no_text)
    torch.testing.assert_close(uncond, zero_text, atol=1e-6, rtol=0)
    torch.testing.assert_close(token, expected_token, atol=1e-6, rtol=0)


def test_per_sample_uncond_equals_separate_passes():
    model = tiny_model()
    x, t, text = tiny_inputs(batch=4)
    flags = torch.tensor([False, True, True, False])
    with torch.no_grad():
        mixed = model(x, t, text, uncond=flags)
        cond = model(x, t, text)
        uncond = model(x, t, text, uncond=True)
    torch.testing.assert_close(mixed[~flags], cond[~flags], atol=1e-6, rtol=0)
    torch.testing.assert_close(mixed[flags], uncond[flags], atol=1e-6, rtol=0)


def test_action_embedding_is_added_to_the_condition_token_and_dropped_with_uncond():
    model = tiny_model(num_actions=3)
    assert model.embed_action.action_embedding.shape == (3, TINY["latent_dim"])
    x, t, text = tiny_inputs()
    action = torch.tensor([0, 2, 1])
    with torch.no_grad():
        token = model.condition_token(t, text, action)
        torch.testing.assert_close(
            token, model.condition_token(t, text) + model.embed_action.action_embedding[action], atol=1e-6, rtol=0
        )
        with_action = model(x, t, text, action=action)
        assert not torch.allclose(with_action, model(x, t, text), atol=1e-4)
        assert torch.equal(model(x, t, text, action=action, uncond=True), model(x, t, text, uncond=True))
        model.embed_action.action_embedding.zero_()
        torch.testing.assert_close(model(x, t, text, action=action), model(x, t, text), atol=1e-6, rtol=0)


def test_action_without_action_embedding_is_an_error():
    model = tiny_model()
    x, t, text = tiny_inputs()
    with pytest.raises(ValueError, match="num_actions=0"):
        model(x, t, text, action=torch.zeros(3, dtype=torch.long))


@pytest.mark.parametrize(
    ("text_prob", "action_prob", "text_dropped", "action_dropped"),
    [(1.0, 0.0, True, False), (0.0, 1.0, False, True), (0.0, 0.0, False, False), (1.0, 1.0, True, True)],
)
def test_training_condition_dropout_is_per_condition(text_prob, action_prob, text_dropped, action_dropped):
    model = tiny_model(num_actions=3, cond_mask_prob=text_prob, action_mask_prob=action_prob)
    x, t, text = tiny_inputs()
    action = torch.tensor([0, 1, 2])
    with torch.no_grad():
        expected = model.condition_token(t, None if text_dropped else text, None if action_dropped else action)
        model.train()
        torch.testing.assert_close(model.condition_token(t, text, action), expected, atol=1e-6, rtol=0)


def test_training_condition_dropout_is_seeded_and_independent_per_sample():
    model = tiny_model(cond_mask_prob=0.5).train()
    batch = 2000
    t = torch.zeros(batch, dtype=torch.long)
    text = torch.ones(batch, TINY["text_dim"])
    with torch.no_grad():
        first = model.condition_token(t, text, generator=torch.Generator().manual_seed(3))
        second = model.condition_token(t, text, generator=torch.Generator().manual_seed(3))
        model.eval()
        null = model.condition_token(t[:1], None)
    assert torch.equal(first, second)
    dropped = (first - null).abs().amax(dim=1) < 1e-6
    assert 0.45 < dropped.float().mean().item() < 0.55


def test_eval_mode_never_drops_conditions():
    model = tiny_model(cond_mask_prob=1.0)
    x, t, text = tiny_inputs()
    with torch.no_grad():
        assert not torch.allclose(model(x, t, text), model(x, t, text, uncond=True), atol=1e-4)


# -- frame masking ---------------------------------------------------------------------------------------------------


def padded_batch(frames: int = 12):
    x, t, text = tiny_inputs(frames=frames)
    lengths = torch.tensor([12, 7, 4])
    mask = torch.arange(frames)[None, :] < lengths[:, None]  # (B, T)
    return x, t, text, lengths, mask


def test_mask_is_ignored_without_mask_frames():
    model = tiny_model(mask_frames=False)
    x, t, text, _, mask = padded_batch()
    with torch.no_grad():
        assert torch.equal(model(x, t, text, mask=mask), model(x, t, text))


def test_mask_frames_changes_outputs_only_when_frames_are_padded():
    model = tiny_model(mask_frames=True)
    x, t, text, _, mask = padded_batch()
    with torch.no_grad():
        unmasked = model(x, t, text)
        full = model(x, t, text, mask=torch.ones_like(mask))
        masked = model(x, t, text, mask=mask)
    torch.testing.assert_close(full, unmasked, atol=1e-6, rtol=0)
    torch.testing.assert_close(masked[0], unmasked[0], atol=1e-6, rtol=0)  # sample 0 has no padding
    assert not torch.allclose(masked[1:], unmasked[1:], atol=1e-4)


@pytest.mark.parametrize("fast_path", [False, True], ids=["regular", "inference_fast_path"])
def test_mask_frames_makes_valid_frames_independent_of_padding(fast_path):
    model = tiny_model(mask_frames=True)
    x, t, text, lengths, mask = padded_batch()
    garbage = torch.where(mask.unsqueeze(-1), x, 100 * torch.randn_like(x))
    context = torch.inference_mode() if fast_path else torch.no_grad()
    with context:
        out = model(x, t, text, mask=mask)
        out_garbage = model(garbage, t, text, mask=mask)
        for i, length in enumerate(lengths.tolist()):  # same as running the unpadded sequence alone
            alone = model(x[i : i + 1, :length], t[i : i + 1], text[i : i + 1])
            torch.testing.assert_close(out[i, :length], alone[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[mask], out_garbage[mask], atol=1e-5, rtol=0)


class DeltaLinear(nn.Module):
    """Stands in for an unmerged peft LoRA layer: exposes the base `weight`/`bias` but adds a delta in `forward`."""

    def __init__(self, base: nn.Linear) -> None:
        super().__init__()
        self.base_layer = base
        self.delta = nn.Linear(base.in_features, base.out_features, bias=False)

    weight = property(lambda self: self.base_layer.weight)
    bias = property(lambda self: self.base_layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base_layer(x) + self.delta(x)


def test_fast_path_does_not_bypass_wrapped_sublayers():
    """torch's fused path reads linear1.weight directly; an unmerged adapter must still count in eval mode."""
    model = tiny_model(mask_frames=True)
    merged = copy.deepcopy(model)
    for layer, merged_layer in zip(model.seqTransEncoder.layers, merged.seqTransEncoder.layers, strict=True):
        layer.linear1 = DeltaLinear(layer.linear1)
        with torch.no_grad():
            merged_layer.linear1.weight += layer.linear1.delta.weight
    x, t, text, _, mask = padded_batch()
    with torch.inference_mode():
        torch.testing.assert_close(model(x, t, text, mask=mask), merged(x, t, text, mask=mask), atol=1e-5, rtol=0)


# -- shapes, gradients, errors ---------------------------------------------------------------------------------------


def test_shapes_and_latent():
    model = tiny_model()
    x, t, text = tiny_inputs(batch=2, frames=7)
    with torch.no_grad():
        x0, latent = model(x, t, text, return_latent=True)
    assert x0.shape == (2, 7, TINY["njoints"])
    assert latent.shape == (2, 7, TINY["latent_dim"])
    torch.testing.assert_close(model.output_process(latent), x0)


def test_gradients_reach_every_parameter():
    model = tiny_model(num_actions=3, dropout=0.1, mask_frames=True).train()
    x, t, text, _, mask = padded_batch()
    x.requires_grad_(True)
    x0, latent = model(x, t, text, action=torch.tensor([0, 1, 2]), mask=mask, return_latent=True,
                       generator=torch.Generator().manual_seed(0))
    (x0.square().mean() + latent.mean()).backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_input_errors_are_explained():
    model = tiny_model(mask_frames=True)
    x, t, text = tiny_inputs()
    with pytest.raises(ValueError, match=r"x_t must be \(B, T, 12\)"):
        model(x[..., :5], t, text)
    with pytest.raises(ValueError, match=r"t must be a \(3,\) tensor"):
        model(x, t[:2], text)
    with pytest.raises(ValueError, match=r"text_emb must have shape \(3, 16\)"):
        model(x, t, text[:, :4])
    with pytest.raises(ValueError, match="mask must be a"):
        model(x, t, text, mask=torch.ones(3, 10))
    with pytest.raises(ValueError, match="exceed max_len=1000"):
        model(torch.zeros(1, 1000, TINY["njoints"]), t[:1])
