"""kinemic's ST-GCN against mmaction2's, an implementation written by other people: graph, size, weights, logits,
gradients and one optimiser step. Skipped, saying why, only where the optional `mm` extra is not installed."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

pytest.importorskip(
    "mmaction", reason="the optional mmaction2 stack is absent: install it with `make setup-mm` to run the oracle"
)
with warnings.catch_warnings():  # mmcv-lite has no compiled ops; the skeleton models never use them
    warnings.filterwarnings("ignore", message="Fail to import ``MultiScaleDeformableAttention``")
    from mmaction.models.utils import Graph
from mmaction.structures import ActionDataSample  # noqa: E402
from mmengine.optim import build_optim_wrapper  # noqa: E402

from kinemic.classifier import ClassifierConfig, train_classifier  # noqa: E402
from kinemic.mmaction.checkpoint import (  # noqa: E402
    classifier_from_mmaction,
    from_mmaction_state_dict,
    to_mmaction_state_dict,
)
from kinemic.mmaction.model import build_recognizer, graph_layout, recognizer_cfg  # noqa: E402
from kinemic.models.stgcn import SMPL22_INWARD, STGCN, STGCNConfig, stgcn_spatial_adjacency  # noqa: E402
from kinemic.skeleton import NUM_JOINTS  # noqa: E402
from tests.test_classifier import toy_motions  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = STGCNConfig(num_classes=3, base_channels=8)


def _pair(config: STGCNConfig, seed: int = 0):
    """A kinemic ST-GCN and mmaction2's, both initialised their own way (seeded), not yet sharing weights."""
    torch.manual_seed(seed)
    ours = STGCN(config)
    theirs = build_recognizer(config)
    return ours, theirs


def _perturbed(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Move every parameter and BN statistic off its initial value, so no check passes by symmetry (PA = 1, ...)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith(".A") or not tensor.is_floating_point():
                continue  # the graph is compared separately; counters stay counters
            noise = torch.rand(tensor.shape, generator=generator, dtype=tensor.dtype)
            tensor.add_(0.1 * noise) if name.endswith("running_var") else tensor.add_(0.1 * (noise - 0.5))
    return model


def _theirs_logits(theirs, x: torch.Tensor) -> torch.Tensor:
    return theirs(x[:, None], mode="tensor", stage="head")  # (N, num_clips=1, M, T, V, C) -> (N, classes)


@pytest.mark.parametrize("center", [9, 0])
def test_graph_adjacency_agrees(center):
    ours = stgcn_spatial_adjacency(NUM_JOINTS, SMPL22_INWARD, center)
    theirs = Graph(layout=graph_layout(center), mode="stgcn_spatial").A
    assert ours.shape == theirs.shape == (3, NUM_JOINTS, NUM_JOINTS)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-7)  # ours is float32, theirs float64


def test_parameter_count_at_full_width_and_same_names():
    config = STGCNConfig(num_classes=3)  # width 64: PYSKL's 3.1 M-parameter net
    ours, theirs = _pair(config)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters()) == 3_079_935
    assert set(to_mmaction_state_dict(ours.state_dict())) == set(theirs.state_dict())


def test_weights_load_strictly_both_ways():
    ours, theirs = _pair(SMALL)
    _perturbed(ours, seed=1)
    theirs.load_state_dict(to_mmaction_state_dict(ours.state_dict()), strict=True)
    back = STGCN(SMALL)
    back.load_state_dict(from_mmaction_state_dict(theirs.state_dict()), strict=True)
    for key, value in ours.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key
    for key, value in theirs.state_dict().items():  # every one of their tensors, graphs included, equals ours
        ours_key = key.replace("cls_head.fc.", "cls_head.fc_cls.")
        assert torch.equal(ours.state_dict()[ours_key], value), key


@pytest.mark.parametrize("train_mode", [False, True], ids=["eval", "train"])
def test_logits_agree(train_mode):
    ours, theirs = _pair(SMALL)
    _perturbed(ours, seed=2)
    theirs.load_state_dict(to_mmaction_state_dict(ours.state_dict()))
    ours.train(train_mode)
    theirs.train(train_mode)
    x = torch.randn(6, 1, 24, NUM_JOINTS, 3, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(_theirs_logits(theirs, x), ours(x), rtol=0, atol=1e-5)


def test_trained_classifier_agrees_through_a_checkpoint():
    """A classifier trained by kinemic (real BN statistics, learnt PA), moved to mmaction2 and back: same logits and
    the same softmax that mmaction2's own `predict` path (data preprocessor, clip averaging) gives."""
    joints, labels = toy_motions(4, np.random.default_rng(0))
    config = ClassifierConfig(epochs=2, batch_size=6, lr=0.03, clip_len=16, base_channels=8, device="cpu")
    trained = train_classifier(joints, labels, num_classes=3, config=config, seed=0)
    theirs = build_recognizer(trained.model.config)
    theirs.load_state_dict(to_mmaction_state_dict(trained.model.state_dict()), strict=True)
    theirs.eval()
    clips = torch.from_numpy(np.stack([j[:16] - j[0, 0] for j in joints]))[:, None]  # (N, M=1, T, V, C)
    with torch.no_grad():
        ours = trained.model(clips)
        torch.testing.assert_close(_theirs_logits(theirs, clips), ours, rtol=0, atol=1e-5)
        samples = [ActionDataSample().set_gt_labels(int(label)) for label in labels]
        predicted = theirs.test_step({"inputs": list(clips[:, None]), "data_samples": samples})
    scores = torch.stack([p.pred_scores.item for p in predicted])
    torch.testing.assert_close(scores, ours.softmax(dim=1), rtol=0, atol=1e-6)
    back = classifier_from_mmaction(theirs.state_dict(), config, device="cpu")
    with torch.no_grad():
        assert torch.equal(back.model(clips), ours)


def test_one_sgd_step_agrees_in_float64():
    """Same weights, same batch, float64: gradients within 1e-6, and one nesterov SGD step (weight decay included)
    through each side's own training path (mmaction2: data preprocessor, head loss, mmengine optim wrapper)."""
    config = STGCNConfig(num_classes=3, base_channels=8)
    ours, _ = _pair(config)
    _perturbed(ours, seed=4)
    ours.double().train()
    theirs = build_recognizer(config)
    theirs.data_preprocessor.to_float32 = False  # keep the float64 batch as it is
    theirs.load_state_dict(to_mmaction_state_dict(ours.state_dict()))
    theirs.double().train()

    generator = torch.Generator().manual_seed(5)
    x = torch.randn(6, 1, 24, NUM_JOINTS, 3, generator=generator, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 2, 1, 0])
    sgd = dict(lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)

    ours_opt = torch.optim.SGD(ours.parameters(), **sgd)
    loss = torch.nn.functional.cross_entropy(ours(x), y)
    ours_opt.zero_grad()
    loss.backward()
    ours_grads = {name: p.grad.clone() for name, p in ours.named_parameters()}
    ours_opt.step()

    their_grads = {}  # the optim wrapper zeroes gradients after its step: catch them on the way
    for name, param in theirs.named_parameters():
        param.register_hook(lambda grad, name=name: their_grads.__setitem__(name, grad.clone()))
    wrapper = build_optim_wrapper(theirs, dict(optimizer=dict(type="SGD", **sgd)))
    samples = [ActionDataSample().set_gt_labels(int(label)) for label in y]
    their_losses = theirs.train_step({"inputs": list(x[:, None]), "data_samples": samples}, wrapper)

    torch.testing.assert_close(their_losses["loss_cls"], loss.detach(), rtol=0, atol=1e-12)
    assert len(their_grads) == len(ours_grads)
    worst = 0.0
    for name, grad in ours_grads.items():
        their_grad = their_grads[name.replace("cls_head.fc_cls.", "cls_head.fc.")]
        worst = max(worst, float((their_grad - grad).abs().max()))
    assert worst < 1e-6, f"largest gradient difference {worst:.2e}"
    after = from_mmaction_state_dict(theirs.state_dict())
    for name, value in ours.state_dict().items():
        torch.testing.assert_close(after[name], value, rtol=0, atol=1e-6, msg=name)


def test_recognizer_cfg_maps_every_setting():
    config = STGCNConfig(num_classes=5, base_channels=16, center=0, tcn_dropout=0.1, head_dropout=0.2)
    cfg = recognizer_cfg(config)
    assert cfg["backbone"]["graph_cfg"]["layout"]["center"] == 0
    assert cfg["backbone"]["tcn_dropout"] == 0.1 and cfg["cls_head"]["dropout"] == 0.2
    assert cfg["cls_head"]["in_channels"] == config.feature_dim == 64
    ours, theirs = STGCN(config), build_recognizer(config)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())
    with pytest.raises(ValueError, match="tcn_kernel=7"):
        recognizer_cfg(STGCNConfig(num_classes=2, tcn_kernel=7))
