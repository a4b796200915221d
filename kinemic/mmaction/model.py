"""The mmaction2 recognizer equal to a kinemic ST-GCN: a config dict (plain Python) and, with the extra, the model.

Why a translation rather than mmaction2's defaults: its stock ST-GCN configs name the 25-joint `nturgb+d` layout and
two persons. kinemic's net is PYSKL's on the SMPL-22 graph, one person; every hyperparameter of `STGCNConfig` maps to
an mmaction2 argument, except a temporal kernel other than 9 (fixed in mmaction2's `STGCNBlock`).

Weight initialisation is the one intended difference: mmaction2 initialises with its `init_cfg` (Kaiming convs, unit
BatchNorm weights, N(0, 0.01) head) when its runner starts; kinemic uses torch's defaults and N(0, `head_init_std`).
"""

from __future__ import annotations

import logging

from kinemic.models.stgcn import SMPL22_INWARD, STGCNConfig
from kinemic.skeleton import NUM_JOINTS

MMACTION_TCN_KERNEL = 9  # hard-coded in mmaction2 1.x `STGCNBlock`


def graph_layout(center: int) -> dict:
    """The SMPL-22 graph as mmaction2's `Graph(layout=...)` takes it (kinemic.skeleton's parents, 0-based)."""
    return {"num_node": NUM_JOINTS, "inward": [list(edge) for edge in SMPL22_INWARD], "center": int(center)}


def recognizer_cfg(config: STGCNConfig) -> dict:
    """`model = dict(type='RecognizerGCN', ...)` of an mmaction2 config, equal to `STGCN(config)` up to weight init.

    Raises ValueError for the one setting mmaction2 cannot express (`tcn_kernel != 9`).
    """
    if config.tcn_kernel != MMACTION_TCN_KERNEL:
        raise ValueError(
            f"STGCNConfig.tcn_kernel={config.tcn_kernel}: mmaction2's STGCNBlock fixes the temporal kernel at "
            f"{MMACTION_TCN_KERNEL}; only that value can be exported"
        )
    backbone = {
        "type": "STGCN",
        "graph_cfg": {"layout": graph_layout(config.center), "mode": "stgcn_spatial", "max_hop": config.max_hop},
        "in_channels": config.in_channels,
        "base_channels": config.base_channels,
        "data_bn_type": "VC" if config.data_bn else "none",
        "ch_ratio": config.ch_ratio,
        "num_person": 1,
        "num_stages": config.num_stages,
        "inflate_stages": list(config.inflate_stages),
        "down_stages": list(config.down_stages),
    }
    if config.tcn_dropout:
        backbone["tcn_dropout"] = config.tcn_dropout  # mmaction2 drops it from the first block, as kinemic does
    head = {
        "type": "GCNHead",
        "num_classes": config.num_classes,
        "in_channels": config.feature_dim,
        "dropout": config.head_dropout,
        "init_cfg": {"type": "Normal", "layer": "Linear", "std": config.head_init_std},
    }
    return {"type": "RecognizerGCN", "backbone": backbone, "cls_head": head}


def build_recognizer(config: STGCNConfig):
    """mmaction2's `RecognizerGCN` for `config` (needs the `mm` extra), with mmaction2's own weight initialisation."""
    from kinemic.mmaction import require_mm

    require_mm()
    from mmaction.registry import MODELS
    from mmaction.utils import register_all_modules
    from mmengine.logging import MMLogger
    from mmengine.registry import DefaultScope

    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope("mmaction"):  # its data preprocessor is looked up in that scope
        model = MODELS.build(recognizer_cfg(config))
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # init_weights logs every tensor's initialiser at INFO: hundreds of lines
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    return model
