"""Stage logic of `prepare_target`: raw target clips (three input kinds) -> `PreparedTarget` with splits.

Input kinds (`prepare_target.kind`):
- `smpl24`: a directory of 24-joint arrays in VIBE's camera frame (what the embedded world writes; see
  `kinemic.formats.target_joints`);
- `vibe`: one `vibe_output.pkl` per video (`<source>/<video name>/vibe_output.pkl`, the layout VIBE's demo writes, or
  `<source>/<NTU id>.pkl`), plus an SMPL model file for the forward pass;
- `humanml3d`: a HumanML3D-layout directory whose features are already computed, e.g. the NTU-VIBE release of the
  KineMIC authors (`new_joint_vecs/`, `texts/`).
The first two share the path joints -> y-up -> 20 fps -> features; all three end with joints recovered from the
features (`features_to_joints`), which is what the classifier and the previews see.

Splits: N shots per class drawn with a seeded generator from the training side of the protocol (official NTU RGB+D 120
cross-subject by default), or an explicit few-shot list (`fewshot_list`, e.g. the authors' `fewshot_train.txt`). The
test set is the evaluation side of the same classes minus any few-shot sample, so a list that strays onto the test side
(the authors' split bug does) cannot leak into the test set; such samples are counted in the metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kinemic.formats import humanml3d as hml
from kinemic.formats.ntu import (
    FewShotConfig,
    action_name,
    action_tag,
    assign_splits,
    is_training,
    load_ntu_metadata,
    parse_action,
    parse_ntu_id,
    samples_table,
)
from kinemic.formats.target_joints import joints24_dir_to_humanml, list_joints24, smpl24_to_humanml
from kinemic.motion import MotionError, features_to_joints
from kinemic.target_set import PreparedTarget

log = logging.getLogger(__name__)

KINDS = ("smpl24", "vibe", "humanml3d")


@dataclass(frozen=True)
class TargetConfig:
    """Params section `prepare_target`."""

    kind: str = "smpl24"
    source: str = "data/raw/synthetic/target"
    classes: tuple = (99, 102, 104)
    shots: int = 10
    protocol: str = "xsub120"
    seed: int = 0
    fewshot_list: str = ""  # a file of few-shot ids; overrides the seeded draw
    metadata: str = ""  # ntu_metadata.json for class names and captions; built-in official names otherwise
    smpl_model: str = "models/smpl/SMPL_NEUTRAL.pkl"  # vibe only
    vibe_fps: float = 30.0
    average_betas: bool = True
    on_error: str = "raise"  # or 'skip': drop a clip that cannot be read, with a warning and a count

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"prepare_target.kind must be one of {KINDS}, got {self.kind!r}")
        if self.on_error not in ("raise", "skip"):
            raise ValueError(f"prepare_target.on_error must be 'raise' or 'skip', got {self.on_error!r}")
        FewShotConfig(tuple(self.classes), self.shots, self.protocol, self.seed)  # validates classes/shots/protocol


@dataclass
class TargetReport:
    read: int = 0
    other_classes: int = 0
    skipped: list[str] | None = None
    fewshot_on_test_side: int = 0


# --------------------------------------------------------------------------------------------------------------------
# readers: each yields (sample id, features, caption or None)
# --------------------------------------------------------------------------------------------------------------------


def _wanted(sample_ids: list[str], classes: set[int], report: TargetReport) -> list[str]:
    keep = []
    for sample_id in sample_ids:
        if parse_ntu_id(sample_id).action in classes:
            keep.append(sample_id)
        else:
            report.other_classes += 1
    return keep


def _guarded(config: TargetConfig, report: TargetReport, sample_id: str, fn: Callable[[], np.ndarray]):
    try:
        return fn()
    except (ValueError, MotionError) as err:  # VibeError, SMPLModelError and format errors are ValueErrors
        if config.on_error == "raise":
            raise
        log.warning("skipping %s: %s", sample_id, err)
        report.skipped.append(sample_id)
        return None


def _read_smpl24(config: TargetConfig, classes: set[int], report: TargetReport) -> dict[str, tuple]:
    ids = _wanted(list_joints24(config.source), classes, report)
    motions = joints24_dir_to_humanml(config.source, ids)
    return {sample_id: (motion.features, None) for sample_id, motion in motions.items()}


def _vibe_files(root: Path) -> dict[str, Path]:
    """NTU id -> vibe_output.pkl, for both `<id>[_rgb]/vibe_output.pkl` and `<id>.pkl` layouts."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: VIBE output directory not found; set prepare_target.source")
    files = {}
    for path in sorted([*root.glob("*/vibe_output.pkl"), *root.glob("*.pkl")]):
        sample_id = parse_ntu_id(path.parent.name if path.name == "vibe_output.pkl" else path.stem).name
        if sample_id in files:
            raise ValueError(f"{root}: two VIBE outputs for {sample_id}: {files[sample_id]} and {path}")
        files[sample_id] = path
    if not files:
        raise FileNotFoundError(f"{root}: no vibe_output.pkl found (expected <video>/vibe_output.pkl per video)")
    return files


def _read_vibe(config: TargetConfig, classes: set[int], report: TargetReport) -> dict[str, tuple]:
    from kinemic.formats.smpl import SMPLModel
    from kinemic.formats.vibe import VibeConfig, read_vibe

    model_path = Path(config.smpl_model)
    if not model_path.exists():
        raise FileNotFoundError(
            f"{model_path}: SMPL model not found. VIBE's joints need an SMPL forward pass: register at "
            "https://smpl.is.tue.mpg.de, download 'SMPL for Python' (basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl, or "
            "VIBE's data/vibe_data/SMPL_NEUTRAL.pkl) and put it at this path (prepare_target.smpl_model)"
        )
    smpl = SMPLModel.from_file(model_path)
    vibe_config = VibeConfig(fps=config.vibe_fps, average_betas=config.average_betas)
    files = _vibe_files(Path(config.source))
    out = {}
    for sample_id in _wanted(sorted(files), classes, report):
        def convert(path=files[sample_id], sample_id=sample_id):
            motion = read_vibe(path, smpl, vibe_config)
            return smpl24_to_humanml(motion.joints24, motion.fps, "camera_y_down", name=sample_id).features

        features = _guarded(config, report, sample_id, convert)
        if features is not None:
            out[sample_id] = (features, None)
    return out


def _read_humanml3d(config: TargetConfig, classes: set[int], report: TargetReport) -> dict[str, tuple]:
    root = Path(config.source)
    hml.check_layout(root)
    ids = sorted(p.stem for p in (root / "new_joint_vecs").glob("*.npy"))
    out = {}
    for sample_id in _wanted(ids, classes, report):
        def load(sample_id=sample_id):
            features = np.load(root / "new_joint_vecs" / f"{sample_id}.npy").astype(np.float32)
            if features.ndim != 2 or features.shape[1] != 263 or len(features) < 1:
                raise hml.HumanML3DFormatError(f"{root}/new_joint_vecs/{sample_id}.npy: shape {features.shape}")
            if not np.isfinite(features).all():
                raise hml.HumanML3DFormatError(f"{root}/new_joint_vecs/{sample_id}.npy: contains NaN or inf")
            return features

        features = _guarded(config, report, sample_id, load)
        if features is None:
            continue
        text_path = root / "texts" / f"{sample_id}.txt"
        caption = hml.read_captions(text_path)[0].text if text_path.is_file() else None
        out[sample_id] = (features, caption)
    return out


_READERS = {"smpl24": _read_smpl24, "vibe": _read_vibe, "humanml3d": _read_humanml3d}


# --------------------------------------------------------------------------------------------------------------------
# splits and assembly
# --------------------------------------------------------------------------------------------------------------------


def _read_fewshot_list(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: few-shot list not found (prepare_target.fewshot_list)")
    return [parse_ntu_id(line.strip()).name for line in path.read_text().splitlines() if line.strip()]


def assign_target_splits(table: pd.DataFrame, config: TargetConfig, report: TargetReport) -> pd.DataFrame:
    fewshot_config = FewShotConfig(tuple(config.classes), config.shots, config.protocol, config.seed)
    if not config.fewshot_list:
        return assign_splits(table, fewshot_config)
    listed = set(_read_fewshot_list(Path(config.fewshot_list)))
    missing = sorted(listed - set(table["sample_id"]))
    if missing:
        raise ValueError(f"{config.fewshot_list}: {len(missing)} listed sample(s) not in the data, e.g. {missing[:3]}")
    report.fewshot_on_test_side = sum(not is_training(s, config.protocol) for s in listed)
    if report.fewshot_on_test_side:
        log.warning("%d few-shot sample(s) of %s lie on the test side of %s; they are kept out of the test set",
                    report.fewshot_on_test_side, config.fewshot_list, config.protocol)
    out = table.copy()
    out["split"] = [
        "fewshot" if s in listed else ("unused" if is_training(s, config.protocol) else "test")
        for s in table["sample_id"]
    ]
    return out


def class_names_for(classes: list[int], metadata: str) -> tuple[dict[int, str], dict[int, str]]:
    """Names and default captions per action: from ntu_metadata.json if given, else the official names."""
    if metadata:
        meta = load_ntu_metadata(metadata)
        unknown = [action_tag(c) for c in classes if c not in meta]
        if unknown:
            raise ValueError(f"{metadata}: no entry for classes {unknown}")
        names = {c: meta[c].name for c in classes}
        captions = {c: (meta[c].captions[0] if meta[c].captions else f"a person performs {names[c]}.") for c in classes}
        return names, captions
    names = {c: action_name(c) for c in classes}
    return names, {c: f"a person performs {names[c]}." for c in classes}


def prepare_target(config: TargetConfig) -> tuple[PreparedTarget, TargetReport]:
    classes = sorted(parse_action(c) for c in config.classes)
    report = TargetReport(skipped=[])
    clips = _READERS[config.kind](config, set(classes), report)
    report.read = len(clips)
    if not clips:
        raise ValueError(f"{config.source}: no clip of classes {[action_tag(c) for c in classes]} could be read")
    ids = sorted(clips)
    names, captions = class_names_for(classes, config.metadata)
    table = samples_table(ids)
    table["class_index"] = table["action"].map({c: i for i, c in enumerate(classes)}).astype(np.int64)
    table["class_name"] = table["action"].map(names)
    table["caption"] = [clips[s][1] or captions[a] for s, a in zip(ids, table["action"], strict=True)]
    table = assign_target_splits(table, config, report)
    features = [clips[s][0] for s in ids]
    joints = [features_to_joints(f) for f in features]
    return PreparedTarget.from_clips(table, features, joints), report
