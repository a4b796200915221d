"""Per-class dynamics: a class collapsed to a static pose is flagged even when the set's mean speed looks fine."""

import numpy as np
import pytest

from kinemic.class_dynamics import class_key, compare_classes, dynamics_metrics
from kinemic.frozen import frozen_share
from kinemic.metrics import motion_dynamics
from kinemic.skeleton import FPS


def _moving(rng, frames=40, amplitude=0.2):
    t = np.linspace(0, 2 * np.pi, frames)[:, None, None]
    base = rng.normal(size=(1, 22, 3)) * 0.3
    return base + amplitude * np.sin(t + rng.uniform(0, 6, size=(1, 22, 3)))


def test_a_static_class_is_flagged_beside_a_fast_one():
    rng = np.random.default_rng(0)
    real = [_moving(rng) for _ in range(6)]
    real_labels = np.array([0, 0, 0, 1, 1, 1])
    static = [np.repeat(_moving(rng)[:1], 40, axis=0) + 1e-4 * rng.normal(size=(40, 22, 3)) for _ in range(3)]
    fast = [_moving(rng, amplitude=0.4) for _ in range(3)]
    rows = compare_classes(static + fast, np.array([0, 0, 0, 1, 1, 1]), real, real_labels, ["run", "kick"])
    run, kick = rows
    assert run.static and run.speed_ratio < 0.05 and run.frozen_share == 1.0
    assert not kick.static and kick.speed_ratio > 1.5 and kick.frozen_share == 0.0
    # the set-level speed averages the two and looks close to real
    overall = motion_dynamics(static + fast, FPS)["speed"] / motion_dynamics(real, FPS)["speed"]
    assert 0.7 < overall < 1.3


def test_a_class_without_samples_is_an_error():
    rng = np.random.default_rng(1)
    with pytest.raises(ValueError, match="'kick' has 0 synthetic"):
        compare_classes([_moving(rng)], np.array([0]), [_moving(rng), _moving(rng)], np.array([0, 1]),
                        ["run", "kick"])


def test_metrics_name_each_class_and_count_the_static_ones():
    rng = np.random.default_rng(2)
    real = [_moving(rng) for _ in range(4)]
    static = [np.repeat(_moving(rng)[:1], 40, axis=0) for _ in range(2)]
    rows = compare_classes(static + real[2:], np.array([0, 0, 1, 1]), real, np.array([0, 0, 1, 1]),
                           ["running on the spot", "butt kicks (kick backward)"])
    metrics = dynamics_metrics(rows)
    assert metrics["static_classes"] == 1
    assert metrics["speed_ratio.running_on_the_spot"] == 0.0
    assert metrics["speed_ratio.butt_kicks_kick_backward"] == pytest.approx(1.0)
    assert metrics["frozen_share.running_on_the_spot"] == 1.0 and metrics["frozen_share.butt_kicks_kick_backward"] == 0
    assert metrics["frozen_share"] == 0.5
    assert class_key("Cross toe-touch") == "cross_toe_touch"


def test_frozen_tells_a_class_that_mostly_stands_still_from_one_that_moves_slowly():
    """Both have a third of the real speed; one freezes two of three samples, the other moves every one slowly."""
    rng = np.random.default_rng(3)
    real = [_moving(rng) for _ in range(6)]
    mostly_still = [np.repeat(_moving(rng)[:1], 40, axis=0) for _ in range(2)] + [_moving(rng)]
    slow = [_moving(rng, amplitude=0.2 / 3) for _ in range(3)]
    rows = compare_classes(mostly_still + slow, np.array([0, 0, 0, 1, 1, 1]), real, np.array([0, 0, 0, 1, 1, 1]),
                           ["arm circles", "torso twist"])
    circles, twist = rows
    assert circles.speed_ratio == pytest.approx(twist.speed_ratio, rel=0.25)  # the mean cannot tell them apart
    assert circles.frozen_share == pytest.approx(2 / 3) and twist.frozen_share == 0.0


def test_frozen_share_needs_motions_on_both_sides():
    with pytest.raises(ValueError, match="needs motions on both sides"):
        frozen_share(np.array([]), np.array([1.0]))
    assert frozen_share(np.array([0.1, 0.3, 1.0]), np.array([1.0, 1.0])) == pytest.approx(1 / 3)  # under 0.25
