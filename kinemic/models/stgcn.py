"""ST-GCN skeleton action classifier as PYSKL builds it (`stgcn_pyskl_*_3dkp/j.py`), on the SMPL-22 graph.

Plain torch, no mmcv: PYSKL needs mmcv-full 1.x (sdist-only, no wheels for current torch) for just BatchNorm2d/ReLU.

Shape convention (the only one in this module): skeleton batches are `(N, M, T, V, C)` as in PYSKL (samples, persons,
frames, joints, coordinates); single-person data `(N, T, V, C)` is accepted and read as M = 1. Inside the backbone the
persons are folded into the batch, `(N*M, C, T, V)`.

Module and parameter names mirror PYSKL's `RecognizerGCN` (`backbone.data_bn`, `backbone.gcn.<i>.gcn.PA`,
`cls_head.fc_cls`, ...), so a PYSKL checkpoint trained on the same layout loads with `load_state_dict` unchanged.

The graph (`stgcn_spatial` partition, K = 3 for max_hop = 1) is `kinemic.skeleton.SMPL22_INWARD`; its centre is
`kinemic.skeleton.SMPL22_CENTER` (joint 9, spine3) by default, with the reasons given there.
`SMPL22_LAYOUT` holds the same graph as data for PYSKL or mmaction2 users.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from kinemic.skeleton import NUM_JOINTS, SMPL22_CENTER, SMPL22_INWARD

DEFAULT_CENTER = SMPL22_CENTER  # the configs' default centre: spine3, see kinemic.skeleton

# mmaction2 1.x accepts this dict as `graph_cfg=dict(layout=SMPL22_LAYOUT, mode='stgcn_spatial')`; in PYSKL paste the
# three values into a new branch of `Graph.get_layout` (and its layout assert).
SMPL22_LAYOUT = {"num_node": NUM_JOINTS, "inward": [list(edge) for edge in SMPL22_INWARD], "center": DEFAULT_CENTER}


# --------------------------------------------------------------------------------------------------------------------
# graph
# --------------------------------------------------------------------------------------------------------------------


def hop_distance(num_node: int, edges: tuple[tuple[int, int], ...], max_hop: int = 1) -> np.ndarray:
    """Hop distance (V, V) between joints, `inf` beyond `max_hop`.

    Distances further than `max_hop` are deliberately left unknown, as in PYSKL/ST-GCN: the spatial partition below
    compares these truncated distances, and reproducing them keeps the graph identical to PYSKL's for the same layout.
    """
    adjacency = np.eye(num_node)
    for i, j in edges:
        adjacency[i, j] = adjacency[j, i] = 1.0
    dist = np.full((num_node, num_node), np.inf)
    reach = np.eye(num_node, dtype=bool)
    power = np.eye(num_node)
    dist[reach] = 0.0
    for hop in range(1, max_hop + 1):
        power = power @ adjacency
        newly = (power > 0) & ~reach
        dist[newly] = hop
        reach |= newly
    return dist


def normalize_columns(adjacency: np.ndarray) -> np.ndarray:
    """A D^-1 with D the column sums: column w of the result averages the joints that feed joint w."""
    col_sum = adjacency.sum(axis=0)
    inv = np.zeros_like(col_sum)
    inv[col_sum > 0] = 1.0 / col_sum[col_sum > 0]
    return adjacency * inv[None, :]


def stgcn_spatial_adjacency(
    num_node: int, inward: tuple[tuple[int, int], ...], center: int, max_hop: int = 1
) -> np.ndarray:
    """The original ST-GCN spatial partition (PYSKL `mode='stgcn_spatial'`): float32 (K, V, V), K = 2 * max_hop + 1.

    Entry [k, v, w] weights joint v's message to joint w. Hop 0 gives the self links; every hop h > 0 gives two
    subsets: neighbours v at least as far from `center` as w, then neighbours closer to it. All subsets are cut from
    one column-normalised hop adjacency, so the K matrices sum to a column-stochastic matrix. Distances to the centre
    are the truncated ones of `hop_distance`: joints more than `max_hop` from the centre see every neighbour as
    "not closer" (PYSKL's behaviour, kept for parity), so the centre choice only reshapes the partition near it.
    """
    if not 0 <= center < num_node:
        raise ValueError(f"center must be a joint index in [0, {num_node}), got {center}")
    if max_hop < 1:
        raise ValueError(f"max_hop must be >= 1, got {max_hop}")
    dist = hop_distance(num_node, inward, max_hop)
    normalized = normalize_columns((dist <= max_hop).astype(np.float64))
    not_closer = dist[:, center][:, None] >= dist[:, center][None, :]  # [v, w]: v no closer to the centre than w
    subsets = []
    for hop in range(max_hop + 1):
        at_hop = dist == hop
        subsets.append(np.where(at_hop & not_closer, normalized, 0.0))
        if hop > 0:
            subsets.append(np.where(at_hop & ~not_closer, normalized, 0.0))
    return np.stack(subsets).astype(np.float32)


# --------------------------------------------------------------------------------------------------------------------
# config
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class STGCNConfig:
    """ST-GCN hyperparameters; the defaults are PYSKL's `STGCN` + `GCNHead` defaults (about 3.1 M parameters).

    `base_channels` narrows the whole net (64 -> 128 -> 256 by default); stage numbers are 1-based block indices.
    Block 1 exists only when `in_channels != base_channels`, as in PYSKL.
    """

    num_classes: int
    in_channels: int = 3
    base_channels: int = 64
    ch_ratio: int = 2
    num_stages: int = 10
    inflate_stages: tuple[int, ...] = (5, 8)
    down_stages: tuple[int, ...] = (5, 8)
    center: int = DEFAULT_CENTER
    max_hop: int = 1
    data_bn: bool = True  # PYSKL data_bn_type 'VC': BatchNorm1d over V*C input channels
    tcn_kernel: int = 9
    tcn_dropout: float = 0.0  # PYSKL drops it from block 1
    head_dropout: float = 0.0
    head_init_std: float = 0.01

    def __post_init__(self) -> None:
        # YAML params arrive as lists; tuples keep the config hashable and frozen.
        object.__setattr__(self, "inflate_stages", tuple(int(s) for s in self.inflate_stages))
        object.__setattr__(self, "down_stages", tuple(int(s) for s in self.down_stages))
        for name in ("num_classes", "in_channels", "base_channels", "num_stages", "ch_ratio"):
            if getattr(self, name) < 1:
                raise ValueError(f"STGCNConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.center < NUM_JOINTS:
            raise ValueError(f"STGCNConfig.center must be a joint index in [0, {NUM_JOINTS}), got {self.center}")
        for name in ("inflate_stages", "down_stages"):
            bad = [s for s in getattr(self, name) if not 2 <= s <= self.num_stages]
            if bad:
                raise ValueError(f"STGCNConfig.{name}: stages {bad} outside the valid range [2, {self.num_stages}]")
        if self.tcn_kernel < 1 or self.tcn_kernel % 2 == 0:
            raise ValueError(
                f"STGCNConfig.tcn_kernel must be odd and >= 1 (same-length padding), got {self.tcn_kernel}"
            )
        for name in ("tcn_dropout", "head_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"STGCNConfig.{name} must be in [0, 1), got {getattr(self, name)}")

    @property
    def feature_dim(self) -> int:
        """Channels of the pooled penultimate features (256 for the defaults)."""
        return int(self.base_channels * self.ch_ratio ** len(set(self.inflate_stages)))


# --------------------------------------------------------------------------------------------------------------------
# building blocks
# --------------------------------------------------------------------------------------------------------------------


class UnitGCN(nn.Module):
    """Spatial graph convolution (PYSKL `unit_gcn`, adaptive='importance', conv_pos='pre'): relu(bn(sum_k A_k*PA_k))."""

    def __init__(self, in_channels: int, out_channels: int, adjacency: torch.Tensor) -> None:
        super().__init__()
        self.num_subsets = adjacency.shape[0]
        self.register_buffer("A", adjacency.clone())
        self.PA = nn.Parameter(torch.ones_like(adjacency))  # learnable edge importance, starts neutral
        self.conv = nn.Conv2d(in_channels, out_channels * self.num_subsets, 1)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, v = x.shape
        x = self.conv(x).view(n, self.num_subsets, -1, t, v)  # (N*M, K, C_out, T, V)
        x = torch.einsum("nkctv,kvw->nctw", x, self.A * self.PA)  # (N*M, C_out, T, V)
        return self.act(self.bn(x))


class UnitTCN(nn.Module):
    """Temporal convolution over frames (PYSKL `unit_tcn`): conv (k, 1), same padding, stride on T, then BN."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 9, stride: int = 1, dropout: float = 0.0
    ):
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, (kernel_size, 1), padding=((kernel_size - 1) // 2, 0), stride=(stride, 1)
        )
        self.bn = nn.BatchNorm2d(out_channels)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.bn(self.conv(x)))


class STGCNBlock(nn.Module):
    """relu(tcn(gcn(x)) + residual(x)); the residual is absent, identity, or a strided 1x1 conv + BN."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        adjacency: torch.Tensor,
        stride: int = 1,
        residual: bool = True,
        tcn_kernel: int = 9,
        tcn_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.gcn = UnitGCN(in_channels, out_channels, adjacency)
        self.tcn = UnitTCN(out_channels, out_channels, tcn_kernel, stride=stride, dropout=tcn_dropout)
        self.relu = nn.ReLU()
        if not residual:
            self.residual = None
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = UnitTCN(in_channels, out_channels, kernel_size=1, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.tcn(self.gcn(x))
        if self.residual is not None:
            out = out + self.residual(x)
        return self.relu(out)


class STGCNBackbone(nn.Module):
    """data_bn + the stack of ST-GCN blocks; (N, M, T, V, C) -> (N, M, C_out, T_out, V)."""

    def __init__(self, config: STGCNConfig) -> None:
        super().__init__()
        adjacency = torch.from_numpy(stgcn_spatial_adjacency(NUM_JOINTS, SMPL22_INWARD, config.center, config.max_hop))
        self.data_bn = nn.BatchNorm1d(config.in_channels * NUM_JOINTS) if config.data_bn else nn.Identity()

        blocks = []
        if config.in_channels != config.base_channels:
            blocks.append(
                STGCNBlock(
                    config.in_channels, config.base_channels, adjacency, residual=False, tcn_kernel=config.tcn_kernel
                )
            )
        channels, inflations = config.base_channels, 0
        for stage in range(2, config.num_stages + 1):
            stride = 2 if stage in config.down_stages else 1
            in_channels = channels
            if stage in config.inflate_stages:
                inflations += 1
                channels = int(config.base_channels * config.ch_ratio**inflations)
            blocks.append(
                STGCNBlock(
                    in_channels,
                    channels,
                    adjacency,
                    stride,
                    tcn_kernel=config.tcn_kernel,
                    tcn_dropout=config.tcn_dropout,
                )
            )
        self.gcn = nn.ModuleList(blocks)
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, m, t, v, c = x.shape
        x = x.permute(0, 1, 3, 4, 2).reshape(n * m, v * c, t)  # (N*M, V*C, T): BN channel index is v*C + c, as PYSKL
        x = self.data_bn(x)
        x = x.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)  # (N*M, C, T, V)
        for block in self.gcn:
            x = block(x)
        return x.reshape(n, m, *x.shape[1:])  # (N, M, C_out, T_out, V)


class GCNHead(nn.Module):
    """Global average over (T, V), mean over persons, Linear (PYSKL `GCNHead`)."""

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.0, init_std: float = 0.01) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc_cls = nn.Linear(in_channels, num_classes)
        nn.init.normal_(self.fc_cls.weight, std=init_std)
        nn.init.zeros_(self.fc_cls.bias)

    @staticmethod
    def pool(x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(3, 4)).mean(dim=1)  # (N, M, C, T, V) -> (N, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_cls(self.dropout(self.pool(x)))


# --------------------------------------------------------------------------------------------------------------------
# the classifier
# --------------------------------------------------------------------------------------------------------------------


class STGCN(nn.Module):
    """ST-GCN recognizer: backbone + head. `forward` gives logits (N, num_classes); `features` the pooled (N, C_out)."""

    def __init__(self, config: STGCNConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = STGCNBackbone(config)
        self.cls_head = GCNHead(
            self.backbone.out_channels, config.num_classes, config.head_dropout, config.head_init_std
        )

    def _as_multi_person(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4:
            x = x.unsqueeze(1)  # (N, T, V, C) -> (N, 1, T, V, C)
        if x.ndim != 5 or x.shape[-2:] != (NUM_JOINTS, self.config.in_channels):
            raise ValueError(
                f"ST-GCN input must be (N, M, T, V, C) or (N, T, V, C) with V={NUM_JOINTS}, "
                f"C={self.config.in_channels}; got {tuple(x.shape)}"
            )
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled penultimate features (N, feature_dim), the embedding used for FID and diversity."""
        return GCNHead.pool(self.backbone(self._as_multi_person(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cls_head(self.backbone(self._as_multi_person(x)))
