"""The action vocabulary: coverage, descriptions, physical plausibility of a few key primitives."""

from __future__ import annotations

import numpy as np
import pytest

from kinemic.synthetic.body import animate, default_body
from kinemic.synthetic.primitives import PRIMITIVES, get_primitive, render, resolved_duration, sample

BODY = default_body()


def _joints(name, **params):
    p = {**sample(name, np.random.default_rng(3)), **params}
    return animate(BODY, render(name, p, 20), 20)


def test_vocabulary_has_fifteen_described_primitives():
    actions = [p for p in PRIMITIVES.values() if p.name != "stand_idle"]
    assert len(actions) >= 15
    for p in PRIMITIVES.values():
        assert len(p.description) > 10 and p.category


def test_unknown_primitive_names_the_vocabulary():
    with pytest.raises(ValueError, match="vocabulary"):
        get_primitive("moonwalk")


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_sampled_instances_render_to_their_duration(name):
    rng = np.random.default_rng(4)
    for _ in range(3):
        params = sample(name, rng)
        assert resolved_duration(name, params, 20) == pytest.approx(float(params["duration"]), abs=0.051)
        if get_primitive(name).sided:
            assert params["side"] in ("left", "right")


def test_walk_moves_the_root_and_plants_the_feet():
    forward = _joints("walk", direction="forward", turn=0.0, steps=6)
    assert forward[-1, 0, 2] - forward[0, 0, 2] > 1.0
    backward = _joints("walk", direction="backward", turn=0.0, steps=6)
    assert backward[-1, 0, 2] - backward[0, 0, 2] < -1.0
    left = _joints("walk", direction="sideways", side="left", steps=6)
    assert left[-1, 0, 0] - left[0, 0, 0] > 0.4
    # the lower foot barely slides
    feet = forward[:, [10, 11]]
    lower = np.argmin(feet[..., 1], axis=1)
    planted = feet[np.arange(len(feet)), lower][:, [0, 2]]
    assert np.median(np.linalg.norm(np.diff(planted, axis=0), axis=1)) < 0.03


def test_in_place_actions_stay_and_bounce():
    jog = _joints("jog_in_place")
    assert np.linalg.norm(jog[-1, 0, [0, 2]] - jog[0, 0, [0, 2]]) < 0.15
    assert np.ptp(jog[:, 0, 1]) > 0.01  # vertical bounce
    jump = _joints("jump", mode="in_place")
    assert jump[:, 10, 1].max() > 0.1  # airborne feet


def test_side_kick_raises_the_named_leg_sideways():
    left = _joints("side_kick", side="left", reps=1)
    right = _joints("side_kick", side="right", reps=1)
    k = np.argmax(left[:, 7, 1])
    assert left[k, 7, 0] - left[k, 0, 0] > 0.4 and left[k, 7, 1] > 0.3
    k = np.argmax(right[:, 8, 1])
    assert right[k, 8, 0] - right[k, 0, 0] < -0.4
