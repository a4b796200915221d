"""An mmaction2 training config written next to a PYSKL pickle, so the export trains there as is.

Why: with a stock ST-GCN config, kinemic's pickles train to chance accuracy (wrong layout, wrong centring, an empty
second person; see `kinemic.mmaction.transforms`). The config written here states the SMPL-22 graph, pelvis
centring, one person and kinemic's clip sampling, and the protocol of a `ClassifierConfig` (epochs, batch, SGD with
nesterov momentum, per-iteration cosine to 0, test clips). The pickle is referenced through mmengine's
`{{ fileDirname }}`, so the pair can be moved together.

With `ClassifierConfig.recalibrate_bn` (the default) it also runs kinemic's BatchNorm recalibration after the last
epoch (`kinemic.mmaction.hooks.KinemicPreciseBN`), which mmaction2 lacks.

Writing needs neither mmcv nor mmaction2 (the stages that export run in the core install); training on the config needs
the `mm` extra and the `kinemic` package importable (its `custom_imports` registers the transforms and the hook).
"""

from __future__ import annotations

import os
from pathlib import Path

from kinemic.classifier import RECALIBRATION_BATCH, ClassifierConfig
from kinemic.formats.pyskl import read_pyskl
from kinemic.io import atomic_file
from kinemic.mmaction.model import recognizer_cfg

CONFIG_SUFFIX = "_mmaction2.py"
_LINE = 100  # longer literals are broken one item per line


class _Code(str):
    """Python source written as is (a reference to another config variable)."""


def _packed(items: list[str], indent: int) -> str:
    """Short items several to a line, for long lists such as the graph's edges."""
    lines, line = [], ""
    for item in items:
        if line and indent + 4 + len(line) + len(item) + 2 > _LINE:
            lines.append(line)
            line = ""
        line += f"{item}, "
    lines.append(line)
    pad = " " * (indent + 4)
    return "[\n" + "".join(f"{pad}{text.rstrip()}\n" for text in lines) + " " * indent + "]"


def _literal(value, indent: int = 0) -> str:
    """Python source for plain data, dicts as `dict(k=v)` like mmaction2's own configs."""
    pad = " " * (indent + 4)
    if isinstance(value, _Code):
        return str(value)
    if isinstance(value, dict):
        if not all(isinstance(k, str) and k.isidentifier() for k in value):
            raise ValueError(f"config keys must be identifiers, got {list(value)}")
        items = [f"{k}={_literal(v, indent + 4)}" for k, v in value.items()]
        flat = f"dict({', '.join(items)})"
        return flat if len(flat) + indent <= _LINE and "\n" not in flat else "dict(\n" + "".join(
            f"{pad}{item},\n" for item in items) + " " * indent + ")"
    if isinstance(value, list | tuple):
        items = [_literal(v, indent + 4) for v in value]
        flat = f"[{', '.join(items)}]"
        if len(flat) + indent <= _LINE and "\n" not in flat:
            return flat
        if all(len(item) <= 12 for item in items):
            return _packed(items, indent)
        return "[\n" + "".join(f"{pad}{item},\n" for item in items) + " " * indent + "]"
    if value is None or isinstance(value, bool | int | float | str):
        return repr(value)
    raise TypeError(f"cannot write {type(value).__name__} into an mmaction2 config: {value!r}")


def _relative(target: Path, config_dir: Path) -> str:
    """`{{ fileDirname }}/...` for a file, resolved by mmengine when it reads the config."""
    rel = os.path.relpath(target.resolve(), config_dir.resolve())
    return "{{ fileDirname }}/" + Path(rel).as_posix()


def _pipeline(config: ClassifierConfig, test_mode: bool, num_clips: int) -> list[dict]:
    steps = [{"type": "PelvisCentre"}] if config.recenter else []
    sample = {"type": "KinemicSampleFrames", "clip_len": config.clip_len}
    if test_mode:
        sample.update(num_clips=num_clips, test_mode=True)
    return steps + [
        sample,
        {"type": "PoseDecode"},
        {"type": "FormatGCNInput", "num_person": 1},
        {"type": "PackActionInputs"},
    ]


def _check_split(ann_file: Path, split: str, num_classes: int) -> int:
    annotations = read_pyskl(ann_file)
    if split not in annotations.split:
        raise ValueError(f"{ann_file}: no split {split!r}; its splits are {sorted(annotations.split)}")
    samples = annotations.by_split(split)
    if not samples:
        raise ValueError(f"{ann_file}: split {split!r} is empty")
    bad = sorted({s.label for s in samples if s.label >= num_classes})
    if bad:
        raise ValueError(f"{ann_file}: split {split!r} has labels {bad[:5]} outside [0, {num_classes}) for num_classes")
    multi = [s.frame_dir for s in samples if s.keypoint.ndim == 4]
    if multi:
        raise ValueError(f"{ann_file}: samples {multi[:3]} have several persons; the export is for one person")
    return len(samples)


def mmaction_config_text(
    ann_file: str | Path,
    num_classes: int,
    config: ClassifierConfig,
    train_split: str,
    val: tuple[str | Path, str] | None = None,
    seed: int = 0,
    num_workers: int = 2,
    config_dir: str | Path | None = None,
) -> str:
    """The text of the config `write_mmaction_config` writes (see there); paths are relative to `config_dir`."""
    ann_file = Path(ann_file)
    config_dir = Path(config_dir) if config_dir is not None else ann_file.parent
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    if config.precision != "fp32":
        raise ValueError(f"ClassifierConfig.precision={config.precision!r}: the mmaction2 export trains in fp32 only")
    num_train = _check_split(ann_file, train_split, num_classes)
    model = recognizer_cfg(config.model_config(num_classes))
    epochs = config.epochs
    loader = {"num_workers": num_workers, "persistent_workers": num_workers > 0}

    def dataloader(batch_size: int, path: Path, split: str, pipeline: str, test_mode: bool) -> str:
        dataset = {"type": "PoseDataset", "ann_file": _relative(path, config_dir), "split": split,
                   "pipeline": _Code(pipeline)}
        if test_mode:
            dataset["test_mode"] = True
        sampler = {"type": "DefaultSampler", "shuffle": not test_mode}
        return _literal({"batch_size": batch_size, **loader, "sampler": sampler, "dataset": dataset})

    sections = [
        f"# mmaction2 1.1 config for {ann_file.name}, written by kinemic.mmaction.export: SMPL-22 ST-GCN,",
        "# one person, pelvis-centred, kinemic's clip sampling and classifier protocol. Train with mmaction2's",
        "# tools/train.py, or Runner.from_cfg(Config.fromfile(<this file>)).train() (mmengine.runner / .config).",
        "# Needs kinemic with its `mm` extra (custom_imports registers kinemic's transforms and precise-BN hook).",
        "custom_imports = dict(imports=['kinemic.mmaction.transforms', 'kinemic.mmaction.hooks'],"
        " allow_failed_imports=False)",
        "default_scope = 'mmaction'",
        f"model = {_literal(model)}",
        f"train_pipeline = {_literal(_pipeline(config, False, 1))}",
        f"val_pipeline = {_literal(_pipeline(config, True, 1))}",
        f"test_pipeline = {_literal(_pipeline(config, True, config.num_test_clips))}",
        f"train_dataloader = {dataloader(config.batch_size, ann_file, train_split, 'train_pipeline', False)}",
    ]
    if val is not None:
        val_file, val_split = Path(val[0]), val[1]
        _check_split(val_file, val_split, num_classes)
        sections += [
            f"val_dataloader = {dataloader(config.batch_size, val_file, val_split, 'val_pipeline', True)}",
            f"test_dataloader = {dataloader(1, val_file, val_split, 'test_pipeline', True)}",
            "val_evaluator = [dict(type='AccMetric')]",
            "test_evaluator = val_evaluator",
            "val_cfg = dict(type='ValLoop')",
            "test_cfg = dict(type='TestLoop')",
        ]
        # validate once, at the end: kinemic reports the final model, not the best of several evaluations
        train_cfg = {"type": "EpochBasedTrainLoop", "max_epochs": epochs, "val_begin": 1, "val_interval": epochs}
    else:
        sections += ["val_dataloader = None", "val_evaluator = None", "val_cfg = None"]
        train_cfg = {"type": "EpochBasedTrainLoop", "max_epochs": epochs}
    schedule = {"type": "CosineAnnealingLR", "eta_min": 0, "T_max": epochs, "by_epoch": True,
                "convert_to_iter_based": True}  # per iteration, no warmup: kinemic.schedules.cosine_lr
    optimizer = {"type": "SGD", "lr": config.lr, "momentum": config.momentum, "weight_decay": config.weight_decay,
                 "nesterov": config.nesterov}
    hooks = {
        "runtime_info": {"type": "RuntimeInfoHook"},
        "timer": {"type": "IterTimerHook"},
        "logger": {"type": "LoggerHook", "interval": 20, "ignore_last": False},
        "param_scheduler": {"type": "ParamSchedulerHook"},
        "checkpoint": {"type": "CheckpointHook", "interval": epochs},
        "sampler_seed": {"type": "DistSamplerSeedHook"},
        "sync_buffers": {"type": "SyncBuffersHook"},
    }
    if config.recalibrate_bn:  # kinemic's precise BN after the last epoch, on the val pipeline's single clips
        precise_bn = {"type": "KinemicPreciseBN", "pipeline": _Code("val_pipeline"), "seed": int(seed),
                      "batch_size": max(config.batch_size, RECALIBRATION_BATCH)}
        sections.append(f"custom_hooks = [{_literal(precise_bn)}]")
    sections += [
        f"train_cfg = {_literal(train_cfg)}",
        f"param_scheduler = [{_literal(schedule)}]",
        f"optim_wrapper = dict(optimizer={_literal(optimizer, 4)})",
        f"default_hooks = {_literal(hooks)}",
        "env_cfg = dict(\n    cudnn_benchmark=False,\n    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),\n"
        "    dist_cfg=dict(backend='nccl'),\n)",
        "log_processor = dict(type='LogProcessor', window_size=20, by_epoch=True)",
        "vis_backends = [dict(type='LocalVisBackend')]",
        "visualizer = dict(type='ActionVisualizer', vis_backends=vis_backends)",
        "log_level = 'INFO'",
        "load_from = None",
        "resume = False",
        f"randomness = dict(seed={int(seed)})",
        f"work_dir = {_literal('./work_dirs/' + ann_file.stem + '_stgcn')}",
        f"# {num_train} training samples in split {train_split!r}, {num_classes} classes",
    ]
    return "\n".join(sections) + "\n"


def write_mmaction_config(
    ann_file: str | Path,
    num_classes: int,
    config: ClassifierConfig,
    train_split: str,
    val: tuple[str | Path, str] | None = None,
    seed: int = 0,
    num_workers: int = 2,
    path: str | Path | None = None,
) -> Path:
    """Write an mmaction2 config that trains kinemic's classifier protocol on `train_split` of the pickle `ann_file`.

    `val` = (pickle, split) adds validation at the end of training and a test loop (`config.num_test_clips` clips per
    sample); without it the config trains only. `path` defaults to `<pickle stem>_mmaction2.py` beside the pickle.
    Splits, labels (< `num_classes`) and the one-person layout are checked now, not when mmaction2 first reads them.
    """
    ann_file = Path(ann_file)
    if ann_file.suffix != ".pkl" or not ann_file.is_file():
        raise FileNotFoundError(f"{ann_file}: expected an existing PYSKL annotation pickle (.pkl)")
    path = Path(path) if path is not None else ann_file.with_name(ann_file.stem + CONFIG_SUFFIX)
    if path.suffix != ".py":
        raise ValueError(f"{path}: mmengine reads Python configs by their .py suffix")
    text = mmaction_config_text(ann_file, num_classes, config, train_split, val, seed, num_workers, path.parent)
    with atomic_file(path) as tmp:
        tmp.write_text(text)
    return path
