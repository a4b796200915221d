"""Official MDM checkpoint import: file forms, args.json, strict key check and its error messages."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from kinemic.checkpoint_import import load_official_mdm, official_key_shapes, read_checkpoint
from kinemic.models.mdm import MDM, MDMConfig

SMALL = MDMConfig(latent_dim=32, ff_size=48, num_layers=2, num_heads=2, njoints=10, text_dim=12)


def official_state(seed: int = 0, config: MDMConfig = SMALL) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return MDM.from_config(config).state_dict()


def same_weights(model: MDM, state: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(model.state_dict()[key], value) for key, value in state.items())


def official_args(**overrides) -> dict:
    """The keys of an official args.json that matter here (an old file: no num_heads, ff_size, mask_frames)."""
    args = {"latent_dim": 32, "layers": 2, "arch": "trans_enc", "cond_mask_prob": 0.1, "dataset": "humanml"}
    return {**args, **overrides}


def test_plain_state_dict_with_args_json_beside(tmp_path):
    state = official_state()
    torch.save(state, tmp_path / "model000475000.pt")
    (tmp_path / "args.json").write_text(json.dumps(official_args(num_heads=2, ff_size=48, diffusion_steps=50)))
    model, info = load_official_mdm(tmp_path / "model000475000.pt")
    assert info.weights == "state_dict" and info.config == SMALL and info.diffusion_steps == 50
    assert info.config_source == str(tmp_path / "args.json")
    assert "mask_frames=False" in " ".join(info.assumed)
    assert same_weights(model, state) and not model.training


def test_old_args_json_defaults(tmp_path):
    """Keys absent from an old args.json take the official defaults: num_heads 4, ff_size 1024, mask_frames False."""
    config = MDMConfig(latent_dim=32, ff_size=1024, num_layers=2, num_heads=4, njoints=10, text_dim=12)
    torch.save(official_state(config=config), tmp_path / "model.pt")
    (tmp_path / "args.json").write_text(json.dumps(official_args(cond_mask_prob=0.2)))
    _, info = load_official_mdm(tmp_path / "model.pt")
    assert info.config == MDMConfig(**{**config.to_dict(), "cond_mask_prob": 0.2})
    assert info.diffusion_steps == 1000


def test_mask_frames_and_explicit_args(tmp_path):
    torch.save(official_state(), tmp_path / "model.pt")
    args = official_args(num_heads=2, ff_size=48, mask_frames=True, diffusion_steps=50)
    _, info = load_official_mdm(tmp_path / "model.pt", args_json=args)
    assert info.config.mask_frames and info.diffusion_steps == 50 and info.assumed == ()


def test_sizes_inferred_from_shapes_without_args_json(tmp_path):
    config = MDMConfig(latent_dim=32, ff_size=48, num_layers=3, num_heads=4, njoints=10, text_dim=12, max_len=300)
    state = official_state(config=config)
    torch.save(state, tmp_path / "model.pt")
    model, info = load_official_mdm(tmp_path / "model.pt")
    assert info.config == config and info.config_source == "tensor shapes"
    assert any(note.startswith("num_heads=4") for note in info.assumed)
    assert same_weights(model, state)


def test_ema_weights_preferred_and_clip_keys_dropped(tmp_path):
    plain, ema = official_state(0), official_state(1)
    with_clip = {**ema, "clip_model.positional_embedding": torch.zeros(77, 512, dtype=torch.float16),
                 "clip_model.visual.conv1.weight": torch.zeros(2, 3)}
    torch.save({"model": plain, "model_avg": with_clip}, tmp_path / "ema.pt")
    model, info = load_official_mdm(tmp_path / "ema.pt", config=SMALL)
    assert info.weights == "model_avg" and same_weights(model, ema)
    assert sorted(info.dropped_keys) == ["clip_model.positional_embedding", "clip_model.visual.conv1.weight"]
    torch.save({"model": plain}, tmp_path / "model_only.pt")
    model, info = load_official_mdm(tmp_path / "model_only.pt", config=SMALL)
    assert info.weights == "model" and same_weights(model, plain)


def test_missing_positional_tables_are_rebuilt(tmp_path):
    state = official_state()
    for key in ("sequence_pos_encoder.pe", "embed_timestep.sequence_pos_encoder.pe"):
        del state[key]
    torch.save(state, tmp_path / "model.pt")
    model, _ = load_official_mdm(tmp_path / "model.pt", config=SMALL)
    assert torch.equal(model.sequence_pos_encoder.pe, MDM.from_config(SMALL).sequence_pos_encoder.pe)


def test_every_key_problem_is_listed_before_failing(tmp_path):
    state = official_state()
    state["embed_action.extra"] = torch.zeros(3)
    state["embed_text.weight"] = torch.zeros(32, 99)
    del state["output_process.poseFinal.bias"]
    torch.save(state, tmp_path / "broken.pt")
    with pytest.raises(ValueError) as err:
        load_official_mdm(tmp_path / "broken.pt", config=SMALL)
    message = str(err.value)
    assert "missing (1): ['output_process.poseFinal.bias']" in message
    assert "unexpected (1): ['embed_action.extra']" in message
    assert "shape mismatch: embed_text.weight is [32, 99] in the file, the model expects [32, 12]" in message


def test_wrong_num_layers_in_args_is_reported(tmp_path):
    torch.save(official_state(), tmp_path / "model.pt")
    with pytest.raises(ValueError, match=r"unexpected \(12\): \['seqTransEncoder.layers.1"):
        load_official_mdm(tmp_path / "model.pt", args_json=official_args(layers=1, num_heads=2, ff_size=48))


def test_pickled_objects_are_refused_with_a_conversion_hint(tmp_path):
    path = tmp_path / "kinemic_style.pt"
    torch.save({"model": official_state(), "info": argparse.Namespace(model_type="KineMIC")}, path)
    with pytest.raises(ValueError, match="weights_only=True") as err:
        load_official_mdm(path)
    assert "argparse.Namespace" in str(err.value) and "convert it once" in str(err.value)


def test_other_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_official_mdm(tmp_path / "absent.pt")
    torch.save({"weights": [1, 2]}, tmp_path / "odd.pt")
    with pytest.raises(ValueError, match=r"these entries are not tensors: \{'weights': 'list'\}"):
        read_checkpoint(tmp_path / "odd.pt")
    torch.save(official_state(), tmp_path / "model.pt")
    with pytest.raises(FileNotFoundError, match="args.json"):
        load_official_mdm(tmp_path / "model.pt", args_json=tmp_path / "missing_args.json")
    with pytest.raises(ValueError, match="only the 'trans_enc'"):
        load_official_mdm(tmp_path / "model.pt", args_json=official_args(arch="trans_dec"))
    with pytest.raises(ValueError, match="does not look like an MDM"):
        torch.save({"linear.weight": torch.zeros(2, 2)}, tmp_path / "other.pt")
        load_official_mdm(tmp_path / "other.pt")


def test_official_key_shapes_of_the_full_model(parity_dir):
    expected = {key: tuple(shape) for key, shape in json.loads((parity_dir / "mdm_full_keys.json").read_text())}
    assert official_key_shapes(MDMConfig()) == expected


def test_shared_parity_checkpoint_imports_and_reproduces_official_output(parity_dir):
    model, info = load_official_mdm(parity_dir / "mdm_small_state_dict.pt")
    assert (info.config.latent_dim, info.config.ff_size, info.config.num_layers) == (64, 128, 2)
    with np.load(parity_dir / "mdm_forward.npz") as data:
        x = torch.from_numpy(data["x"])[:, :, 0].permute(0, 2, 1)  # (B, J, 1, T) -> (B, T, J)
        expected = torch.from_numpy(data["out_cond"])[:, :, 0].permute(0, 2, 1)
        t, text = torch.from_numpy(data["timesteps"]), torch.from_numpy(data["text_emb"])
    with torch.inference_mode():
        torch.testing.assert_close(model(x, t, text), expected, atol=1e-5, rtol=0)
