"""Learning-rate schedules: the classifier's cosine annealing and the teacher's warmup + decay."""

from __future__ import annotations

import pytest

from kinemic.schedules import cosine_lr, scheduled_lr


def test_cosine_lr_anneals_to_zero_without_warmup():
    assert cosine_lr(0.1, 0, 100) == pytest.approx(0.1)
    assert cosine_lr(0.1, 50, 100) == pytest.approx(0.05)
    assert cosine_lr(0.1, 100, 100) == pytest.approx(0.0, abs=1e-12)
    lrs = [cosine_lr(0.1, s, 100) for s in range(100)]
    assert all(a > b for a, b in zip(lrs, lrs[1:], strict=False))


def test_warmup_rises_linearly_then_the_cosine_decays_to_zero():
    lrs = [scheduled_lr(1e-3, s, 100, "cosine", warmup_steps=10) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4)
    assert lrs[9] == pytest.approx(1e-3)
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:10], strict=False))
    assert lrs[10] == pytest.approx(1e-3)
    assert all(a > b for a, b in zip(lrs[10:], lrs[11:], strict=False))
    assert scheduled_lr(1e-3, 100, 100, "cosine", warmup_steps=10) == pytest.approx(0.0, abs=1e-12)


def test_constant_schedule_keeps_the_rate_after_warmup():
    assert [scheduled_lr(0.5, s, 10) for s in range(10)] == [0.5] * 10
    assert scheduled_lr(0.5, 2, 10, "constant", warmup_steps=4) == pytest.approx(0.375)


def test_unknown_schedule_is_an_error():
    with pytest.raises(ValueError, match="lr schedule"):
        scheduled_lr(0.1, 0, 10, "linear")
