"""KineMIC objectives: window search, alignment, SNN loss, dww and the memory bank."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from kinemic.objectives import (
    MemoryBank,
    align_to_window,
    best_window_starts,
    feature_distillation,
    snn_loss,
    window_mask,
    window_weights,
)


def test_window_search_finds_the_argmax_window():
    attention = torch.tensor(
        [
            [0.0, 0.1, 0.5, 0.3, 0.1, 0.0, 0.0, 0.0],  # peak at 2-3
            [0.3, 0.0, 0.0, 0.0, 0.0, 0.2, 0.25, 0.25],  # best 3-window at the end of the valid part
            [0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 1.0, 1.0],  # frames 6-7 are padding: never chosen
        ]
    )
    lengths = torch.tensor([8, 8, 6])
    window = torch.tensor([2, 3, 2])
    starts = best_window_starts(attention, lengths, window)
    assert starts.tolist() == [2, 5, 0]  # ties go to the earliest start
    # brute force over every admissible start
    for b in range(3):
        sums = [attention[b, s : s + window[b]].sum() for s in range(int(lengths[b] - window[b]) + 1)]
        assert int(starts[b]) == int(torch.stack(sums).argmax())


def test_window_search_rejects_windows_longer_than_the_motion():
    with pytest.raises(ValueError, match="window lengths"):
        best_window_starts(torch.rand(1, 5), torch.tensor([4]), torch.tensor([5]))


def test_align_moves_window_to_start_and_repeats_last_frame():
    x = torch.arange(10, dtype=torch.float32).view(1, 10, 1).repeat(2, 1, 1)
    out = align_to_window(x, torch.tensor([3, 6]), torch.tensor([4, 2]), frames=5)
    assert out[0, :, 0].tolist() == [3, 4, 5, 6, 6]
    assert out[1, :, 0].tolist() == [6, 7, 7, 7, 7]
    assert window_mask(torch.tensor([4, 2]), 5).tolist() == [[True] * 4 + [False], [True, True] + [False] * 3]


def test_snn_loss_equals_direct_computation():
    torch.manual_seed(0)
    zt, zp = torch.randn(4, 8), torch.randn(6, 8)
    lt, lp = torch.tensor([0, 1, 0, 2]), torch.tensor([0, 1, 0, 2, 1, 0])
    scale = torch.tensor(2.0)
    expected = 0.0
    for i in range(4):
        sims = [torch.exp(F.cosine_similarity(zt[i], zp[j], dim=0) * scale.exp()) for j in range(6)]
        pos = sum(s for s, label in zip(sims, lp, strict=True) if label == lt[i])
        expected += -torch.log(pos / sum(sims))
    torch.testing.assert_close(snn_loss(zt, zp, lt, lp, scale), expected / 4, rtol=1e-5, atol=1e-6)


def test_snn_loss_decreases_on_separable_embeddings():
    torch.manual_seed(0)
    centres = torch.randn(3, 16)
    labels = torch.arange(3).repeat(4)
    z_prior = centres[labels] + 0.3 * torch.randn(12, 16)
    z_target = torch.nn.Parameter(torch.randn(12, 16))
    scale = torch.tensor(2.659)  # log(1 / 0.07)
    opt = torch.optim.SGD([z_target], lr=0.5)
    first = snn_loss(z_target, z_prior, labels, labels, scale).item()
    for _ in range(50):
        loss = snn_loss(z_target, z_prior, labels, labels, scale)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2 * first


def test_snn_loss_needs_a_positive():
    with pytest.raises(ValueError, match="no prior sample of its class"):
        snn_loss(torch.randn(1, 4), torch.randn(2, 4), torch.tensor([3]), torch.tensor([0, 1]), torch.tensor(1.0))


def test_dww_in_unit_interval_without_gradient():
    zt = torch.randn(5, 8, requires_grad=True)
    zw = torch.randn(5, 8, requires_grad=True)
    w = window_weights(zt, zw)
    assert not w.requires_grad and ((w >= 0) & (w <= 1)).all()
    torch.testing.assert_close(window_weights(zt, zt * 3.0), torch.ones(5))
    torch.testing.assert_close(window_weights(zt, -zt), torch.zeros(5))


def test_feature_distillation_ignores_padding():
    student, teacher = torch.zeros(2, 4, 3), torch.ones(2, 4, 3)
    teacher[:, 2:] = 100.0  # padding
    mask = window_mask(torch.tensor([2, 2]), 4)
    torch.testing.assert_close(feature_distillation(student, teacher, mask), torch.ones(2))


def test_memory_bank_is_fifo_and_detached():
    bank = MemoryBank(size=3)
    z1 = torch.randn(2, 4, requires_grad=True)
    cand, labels = bank.extend(z1, torch.tensor([0, 1]))
    assert cand.shape == (2, 4) and cand.requires_grad  # current batch keeps its gradient
    z2 = torch.randn(2, 4)
    cand, labels = bank.extend(z2, torch.tensor([2, 3]))
    assert cand.shape == (4, 4) and labels.tolist() == [2, 3, 0, 1]
    assert bank.z.shape == (3, 4) and bank.labels.tolist() == [2, 3, 0] and not bank.z.requires_grad
