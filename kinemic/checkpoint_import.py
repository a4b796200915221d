"""Load an official MDM checkpoint (GuyTevet/motion-diffusion-model, trans_enc) into `kinemic.models.mdm.MDM`.

The file is read with `torch.load(weights_only=True)`: a downloaded checkpoint must not be able to run code. The
official 2022 HumanML3D files are plain dicts of tensors; newer EMA files are `{'model': sd, 'model_avg': sd}` (we
prefer the EMA weights, as the official loader does). `clip_model.*` keys, present in files saved before the
CLIP-dropping fix, are dropped: CLIP is not part of our MDM (text embeddings are precomputed).

Sizes come from the official `args.json` beside the checkpoint when there is one, with the official defaults for keys
that old files lack (num_heads 4, ff_size 1024, mask_frames False, diffusion_steps 1000); without it they are inferred
from tensor shapes, except num_heads and mask_frames, which shapes cannot tell (defaults, logged). Every key is checked
against the model before loading, and all missing / unexpected / mis-shaped keys are listed in one error.
"""

from __future__ import annotations

import json
import logging
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from kinemic.models.mdm import MDM, MDMConfig

log = logging.getLogger(__name__)

CLIP_PREFIX = "clip_model."
_POS_KEYS = ("sequence_pos_encoder.pe", "embed_timestep.sequence_pos_encoder.pe")
_LAYER_KEY = re.compile(r"^seqTransEncoder\.layers\.(\d+)\.")

# Official defaults for args.json keys that older files lack (utils/model_util.py, utils/parser_util.py).
_ARGS_DEFAULTS = {"num_heads": 4, "ff_size": 1024, "mask_frames": False, "diffusion_steps": 1000, "cond_mask_prob": 0.1}


@dataclass(frozen=True)
class OfficialCheckpointInfo:
    """What `load_official_mdm` read and decided. `diffusion_steps` is the schedule length the model was trained on."""

    path: Path
    weights: str  # 'model_avg' (EMA), 'model', or 'state_dict' (a plain dict of tensors)
    config: MDMConfig
    config_source: str  # 'args.json' path, or 'tensor shapes'
    diffusion_steps: int
    dropped_keys: tuple[str, ...]  # clip_model.* keys left out
    assumed: tuple[str, ...]  # settings neither args.json nor the shapes gave, with the default used
    args: Mapping[str, Any] = field(default_factory=dict)  # the args.json content, if read


@dataclass(frozen=True)
class KeyReport:
    """Differences between a state dict and the keys/shapes a model expects."""

    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    mismatched: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...]  # (key, in file, expected)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self) -> str:
        lines = [f"missing ({len(self.missing)}): {list(self.missing)}"] if self.missing else []
        if self.unexpected:
            lines.append(f"unexpected ({len(self.unexpected)}): {list(self.unexpected)}")
        lines += [f"shape mismatch: {key} is {list(got)} in the file, the model expects {list(want)}"
                  for key, got, want in self.mismatched]
        return "\n".join(lines)


def official_key_shapes(config: MDMConfig) -> dict[str, tuple[int, ...]]:
    """State-dict keys (in order) and shapes of an MDM with this config, built on the meta device (no memory used)."""
    with torch.device("meta"):
        model = MDM.from_config(config)
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def compare_keys(state: Mapping[str, Tensor], expected: Mapping[str, tuple[int, ...]]) -> KeyReport:
    mismatched = tuple(
        (key, tuple(state[key].shape), expected[key])
        for key in expected
        if key in state and tuple(state[key].shape) != expected[key]
    )
    return KeyReport(
        missing=tuple(key for key in expected if key not in state),
        unexpected=tuple(sorted(key for key in state if key not in expected)),
        mismatched=mismatched,
    )


def read_checkpoint(path: str | Path) -> tuple[dict[str, Tensor], str]:
    """The state dict of an official checkpoint file (EMA weights preferred) and which entry it came from."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MDM checkpoint {path} does not exist")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
        culprit = f" (it needs {found.group(1)})" if found else ""
        raise ValueError(
            f"{path} holds Python objects besides tensors{culprit}, and loading it with weights_only=True (so that "
            "a downloaded file cannot run code) failed. Official MDM checkpoints are plain tensor dicts; this is "
            "probably a training checkpoint (e.g. KineMIC's, with an argparse Namespace). If you trust its source, "
            "convert it once:\n"
            f"  python -c \"import torch; ck = torch.load('{path}', weights_only=False); "
            "torch.save(ck.get('model_avg', ck.get('model', ck)), 'converted.pt')\"\n"
            "then load converted.pt."
        ) from err
    if not isinstance(content, Mapping):
        raise ValueError(f"{path} holds a {type(content).__name__}, expected a state dict or {{'model', 'model_avg'}}")
    weights = "state_dict"
    for entry in ("model_avg", "model"):
        if isinstance(content.get(entry), Mapping):
            weights, content = entry, content[entry]
            break
    not_tensors = {key: type(value).__name__ for key, value in content.items() if not isinstance(value, Tensor)}
    if not_tensors:
        raise ValueError(
            f"{path}: expected a state dict of tensors or {{'model', 'model_avg'}} holding one; these entries are not "
            f"tensors: {not_tensors}"
        )
    return dict(content), weights


def _read_args(path: Path, args_json: str | Path | Mapping[str, Any] | None) -> tuple[dict[str, Any], str | None]:
    if isinstance(args_json, Mapping):
        return dict(args_json), "args mapping"
    if args_json is None:
        beside = path.parent / "args.json"
        if not beside.is_file():
            return {}, None
        args_json = beside
    args_path = Path(args_json)
    if not args_path.is_file():
        raise FileNotFoundError(f"args.json {args_path} does not exist")
    with args_path.open() as handle:
        return json.load(handle), str(args_path)


def _shape(state: Mapping[str, Tensor], key: str) -> tuple[int, ...]:
    if key not in state:
        raise ValueError(
            f"cannot infer MDM sizes: key {key!r} is missing, so this does not look like an MDM trans_enc state dict "
            f"(first keys: {list(state)[:5]})"
        )
    return tuple(state[key].shape)


def infer_config(
    state: Mapping[str, Tensor], args: Mapping[str, Any] | None = None
) -> tuple[MDMConfig, int, tuple[str, ...]]:
    """MDMConfig and diffusion steps from official args (when given) and tensor shapes; also what was assumed.

    Sizes the official args.json holds (latent_dim, layers, num_heads, ff_size, mask_frames, cond_mask_prob,
    diffusion_steps) come from it; the rest (njoints, text_dim, number of actions, positional table length) from shapes.
    """
    args = dict(args or {})
    arch = args.get("arch", "trans_enc")
    if arch != "trans_enc":
        raise ValueError(f"only the 'trans_enc' MDM architecture is supported, args.json says arch={arch!r}")
    latent_dim, njoints = _shape(state, "input_process.poseEmbedding.weight")
    text_dim = _shape(state, "embed_text.weight")[1]
    layer_ids = {int(match.group(1)) for key in state if (match := _LAYER_KEY.match(key))}
    pe_rows = _shape(state, _POS_KEYS[0])[0] if _POS_KEYS[0] in state else 5000
    action_shape = state.get("embed_action.action_embedding")
    assumed = []
    values = {}
    if args:
        for key, default in _ARGS_DEFAULTS.items():
            if key not in args:
                assumed.append(f"{key}={default!r} (absent from args.json: official default)")
        values = {
            "latent_dim": int(args.get("latent_dim", latent_dim)),
            "num_layers": int(args.get("layers", len(layer_ids))),
            "num_heads": int(args.get("num_heads", _ARGS_DEFAULTS["num_heads"])),
            "ff_size": int(args.get("ff_size", _ARGS_DEFAULTS["ff_size"])),
            "mask_frames": bool(args.get("mask_frames", _ARGS_DEFAULTS["mask_frames"])),
            "cond_mask_prob": float(args.get("cond_mask_prob", _ARGS_DEFAULTS["cond_mask_prob"])),
            "max_len": int(args.get("pos_embed_max_len", pe_rows)),
        }
        steps = int(args.get("diffusion_steps", _ARGS_DEFAULTS["diffusion_steps"]))
    else:
        ff_size = _shape(state, "seqTransEncoder.layers.0.linear1.weight")[0]
        assumed = [
            "num_heads=4 (not visible in tensor shapes: official default)",
            "mask_frames=False (not visible in tensor shapes: the 2022 model; pass args.json for later models)",
            "diffusion_steps=1000 (no args.json: official default)",
        ]
        values = {"latent_dim": latent_dim, "num_layers": len(layer_ids), "ff_size": ff_size, "max_len": pe_rows}
        steps = 1000
    config = MDMConfig(
        njoints=njoints,
        text_dim=text_dim,
        num_actions=0 if action_shape is None else int(action_shape.shape[0]),
        **values,
    )
    return config, steps, tuple(assumed)


def load_official_mdm(
    path: str | Path,
    args_json: str | Path | Mapping[str, Any] | None = None,
    *,
    config: MDMConfig | None = None,
) -> tuple[MDM, OfficialCheckpointInfo]:
    """Build an MDM from an official checkpoint and load its weights strictly; returns (model in eval mode, info).

    Args:
        path: the `.pt` file (plain state dict, or `{'model', 'model_avg'}`).
        args_json: the official args.json (path or already-read mapping); by default `args.json` beside the file.
        config: use this config instead of reading or inferring one (its keys are still checked against the file).
    """
    path = Path(path)
    state, weights = read_checkpoint(path)
    dropped = tuple(key for key in state if key.startswith(CLIP_PREFIX))
    state = {key: value for key, value in state.items() if not key.startswith(CLIP_PREFIX)}
    if dropped:
        log.info("%s: dropped %d clip_model.* keys (CLIP is not part of kinemic's MDM)", path, len(dropped))

    args, args_source = _read_args(path, args_json)
    if config is None:
        config, steps, assumed = infer_config(state, args)
        source = args_source or "tensor shapes"
    else:
        steps = int(args.get("diffusion_steps", _ARGS_DEFAULTS["diffusion_steps"]))
        assumed, source = (), "given config"
    for note in assumed:
        log.warning("%s: assuming %s", path, note)

    model = MDM.from_config(config)
    for key in _POS_KEYS:  # fixed tables: some files leave them out (the official loader drops them on purpose)
        if key not in state:
            state[key] = model.sequence_pos_encoder.pe.clone()
    report = compare_keys(state, official_key_shapes(config))
    if not report.ok:
        raise ValueError(
            f"{path} does not fit an MDM with {config} (config from {source}):\n{report.describe()}\n"
            "Check args.json (latent_dim, layers, num_heads, ff_size) or pass config=MDMConfig(...)."
        )
    model.load_state_dict(state, strict=True)
    model.eval()
    info = OfficialCheckpointInfo(
        path=path,
        weights=weights,
        config=config,
        config_source=source,
        diffusion_steps=steps,
        dropped_keys=dropped,
        assumed=assumed,
        args=args,
    )
    log.info("loaded %s (%s weights, %s) into MDM %s", path, weights, source, config)
    return model, info
