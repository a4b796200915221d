"""ST-GCN on the SMPL-22 graph: graph partition, shapes, parameter count, PYSKL naming, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kinemic.models.stgcn import (
    DEFAULT_CENTER,
    SMPL22_INWARD,
    SMPL22_LAYOUT,
    STGCN,
    STGCNConfig,
    hop_distance,
    stgcn_spatial_adjacency,
)
from kinemic.skeleton import NUM_JOINTS, PARENTS

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------------------------------------------------
# graph
# ---------------------------------------------------------------------------------------------------------------------


def _partition_by_definition(center: int) -> np.ndarray:
    """The stgcn_spatial partition written out entry by entry (independent of the vectorised builder).

    Hop distances are only known up to max_hop = 1 (unknown = inf); neighbour v of w goes to subset 1 when it is not
    closer to the centre than w, else to subset 2; self links form subset 0; weights are 1 / (degree of w + 1).
    """
    neighbours = {w: {w} for w in range(NUM_JOINTS)}
    for child, parent in enumerate(PARENTS):
        if parent >= 0:
            neighbours[child].add(parent)
            neighbours[parent].add(child)

    def dist_to_center(j: int) -> float:
        return 0.0 if j == center else (1.0 if j in neighbours[center] else np.inf)

    A = np.zeros((3, NUM_JOINTS, NUM_JOINTS))
    for w in range(NUM_JOINTS):
        for v in neighbours[w]:
            weight = 1.0 / len(neighbours[w])
            if v == w:
                A[0, v, w] = weight
            elif dist_to_center(v) >= dist_to_center(w):
                A[1, v, w] = weight
            else:
                A[2, v, w] = weight
    return A


def test_layout_matches_the_skeleton():
    assert SMPL22_LAYOUT["num_node"] == NUM_JOINTS == 22
    assert SMPL22_LAYOUT["center"] == DEFAULT_CENTER
    assert len(SMPL22_INWARD) == 21
    assert sorted(tuple(edge) for edge in SMPL22_LAYOUT["inward"]) == sorted(SMPL22_INWARD)
    assert all(PARENTS[child] == parent for child, parent in SMPL22_INWARD)


def test_hop_distance_is_truncated_at_max_hop():
    dist = hop_distance(NUM_JOINTS, SMPL22_INWARD, max_hop=1)
    assert np.all(np.diag(dist) == 0)
    assert dist[0, 3] == 1 and dist[3, 0] == 1
    assert np.isinf(dist[0, 6])  # two hops apart: unknown at max_hop 1
    assert hop_distance(NUM_JOINTS, SMPL22_INWARD, max_hop=2)[0, 6] == 2


@pytest.mark.parametrize("center", [0, 9, 12])
def test_adjacency_is_the_stgcn_spatial_partition(center):
    A = stgcn_spatial_adjacency(NUM_JOINTS, SMPL22_INWARD, center)
    assert A.shape == (3, NUM_JOINTS, NUM_JOINTS) and A.dtype == np.float32
    np.testing.assert_allclose(A.sum(axis=0).sum(axis=0), 1.0, atol=1e-6)  # column-normalised
    assert (A >= 0).all()
    np.testing.assert_array_equal(np.nonzero(A[0]), np.nonzero(np.eye(NUM_JOINTS)))  # hop 0 = self links
    np.testing.assert_allclose(A, _partition_by_definition(center), atol=1e-7)


def test_partition_changes_with_center():
    pelvis = stgcn_spatial_adjacency(NUM_JOINTS, SMPL22_INWARD, center=0)
    spine3 = stgcn_spatial_adjacency(NUM_JOINTS, SMPL22_INWARD, center=9)
    np.testing.assert_array_equal(pelvis[0], spine3[0])
    np.testing.assert_allclose(pelvis.sum(axis=0), spine3.sum(axis=0))  # same edges ...
    assert not np.array_equal(pelvis[1:], spine3[1:])  # ... split differently
    assert pelvis[2, 0, 3] > 0 and spine3[2, 0, 3] == 0  # pelvis -> spine1 points away from the pelvis only


def test_adjacency_rejects_bad_center():
    with pytest.raises(ValueError, match="center"):
        stgcn_spatial_adjacency(NUM_JOINTS, SMPL22_INWARD, center=22)
    with pytest.raises(ValueError, match="center"):
        STGCNConfig(num_classes=3, center=-1)


# ---------------------------------------------------------------------------------------------------------------------
# network
# ---------------------------------------------------------------------------------------------------------------------


def _expected_parameter_count(num_classes: int, base: int = 64, in_channels: int = 3, V: int = NUM_JOINTS) -> int:
    """Parameters of PYSKL's ST-GCN, counted from its layer definitions (K = 3 subsets, temporal kernel 9)."""
    K, kernel = 3, 9
    bn = 2  # weight + bias per channel

    def gcn(cin, cout):
        return cin * cout * K + cout * K + K * V * V + bn * cout  # 1x1 conv to K*out, PA, BN

    def tcn(cin, cout, k):
        return cin * cout * k + cout + bn * cout

    # (in, out, stride) of the 10 blocks: 3->64, 64x3, 64->128 s2, 128x2, 128->256 s2, 256x2
    blocks = [(in_channels, base, 1)] + [(base, base, 1)] * 3
    blocks += [(base, 2 * base, 2)] + [(2 * base, 2 * base, 1)] * 2
    blocks += [(2 * base, 4 * base, 2)] + [(4 * base, 4 * base, 1)] * 2
    total = bn * in_channels * V  # data_bn 'VC'
    for i, (cin, cout, stride) in enumerate(blocks):
        total += gcn(cin, cout) + tcn(cout, cout, kernel)
        if i > 0 and (cin != cout or stride != 1):
            total += tcn(cin, cout, 1)  # residual 1x1 conv + BN
    return total + 4 * base * num_classes + num_classes  # fc_cls


@pytest.mark.parametrize("num_classes", [3, 120])
def test_parameter_count_matches_pyskl(num_classes):
    model = STGCN(STGCNConfig(num_classes=num_classes))
    count = sum(p.numel() for p in model.parameters())
    assert count == _expected_parameter_count(num_classes)
    assert 3.0e6 < count < 3.2e6


def test_narrow_net_parameter_count():
    model = STGCN(STGCNConfig(num_classes=5, base_channels=16))
    assert sum(p.numel() for p in model.parameters()) == _expected_parameter_count(5, base=16)
    assert model.config.feature_dim == 64


def test_output_shapes_multi_and_single_person():
    torch.manual_seed(0)
    model = STGCN(STGCNConfig(num_classes=4, base_channels=8)).eval()
    multi = torch.randn(2, 3, 21, NUM_JOINTS, 3)  # (N, M, T, V, C), odd T
    single = multi[:, 0]  # (N, T, V, C)
    assert model(multi).shape == (2, 4)
    assert model.features(multi).shape == (2, 32)
    assert model.backbone(multi).shape == (2, 3, 32, 6, NUM_JOINTS)  # T 21 -> 11 -> 6
    with torch.no_grad():
        torch.testing.assert_close(model(single), model(single.unsqueeze(1)))
        # persons are averaged after pooling: duplicating a person changes nothing
        torch.testing.assert_close(model(single.unsqueeze(1).repeat(1, 2, 1, 1, 1)), model(single))


def test_bad_input_shape_is_explained():
    model = STGCN(STGCNConfig(num_classes=2, base_channels=4))
    with pytest.raises(ValueError, match=r"\(N, M, T, V, C\)"):
        model(torch.zeros(1, 10, 25, 3))
    with pytest.raises(ValueError, match="V=22"):
        model(torch.zeros(1, 10, 22))


def test_state_dict_uses_pyskl_names_and_init():
    model = STGCN(STGCNConfig(num_classes=3))
    keys = set(model.state_dict())
    for key in (
        "backbone.data_bn.weight",
        "backbone.gcn.0.gcn.A",
        "backbone.gcn.0.gcn.PA",
        "backbone.gcn.0.gcn.conv.weight",
        "backbone.gcn.0.tcn.conv.weight",
        "backbone.gcn.4.residual.conv.weight",
        "cls_head.fc_cls.weight",
    ):
        assert key in keys
    assert "backbone.gcn.0.residual.conv.weight" not in keys  # block 1 has no residual
    assert "backbone.gcn.1.residual.conv.weight" not in keys  # identity residual
    assert len(model.backbone.gcn) == 10
    assert model.backbone.data_bn.num_features == 3 * NUM_JOINTS
    assert torch.all(model.backbone.gcn[3].gcn.PA == 1)
    assert model.cls_head.fc_cls.weight.std().item() == pytest.approx(0.01, rel=0.1)


def test_gradients_reach_edge_importance():
    torch.manual_seed(0)
    model = STGCN(STGCNConfig(num_classes=3, base_channels=4))
    loss = torch.nn.functional.cross_entropy(model(torch.randn(2, 12, NUM_JOINTS, 3)), torch.tensor([0, 2]))
    loss.backward()
    for block in model.backbone.gcn:
        assert block.gcn.PA.grad is not None and block.gcn.PA.grad.abs().sum() > 0
        assert block.gcn.A.grad is None  # the partition itself is fixed


def test_config_validation_and_yaml_lists():
    config = STGCNConfig(num_classes=3, inflate_stages=[5, 8], down_stages=[5, 8])
    assert config.inflate_stages == (5, 8) and hash(config)
    with pytest.raises(ValueError, match="num_classes"):
        STGCNConfig(num_classes=0)
    with pytest.raises(ValueError, match="inflate_stages"):
        STGCNConfig(num_classes=3, inflate_stages=(11,))
    with pytest.raises(ValueError, match="tcn_kernel"):
        STGCNConfig(num_classes=3, tcn_kernel=4)
