"""The baseline of benchmarks/bench_motion.py (a port of the official `process_file`) must keep its features.

Not a timing test: it only guards the benchmark's baseline against rot, on one short procedural motion and on the
official outputs of the parity fixture.
"""

from __future__ import annotations

import numpy as np
import pytest

from kinemic.motion import joints_to_features
from kinemic.skeleton import TARGET_OFFSETS
from kinemic.synthetic.body import animate, sample_body
from kinemic.synthetic.primitives import render, sample
from tests.script_modules import load_module

ATOL = 1e-4  # as bench_motion.py and the parity tests; the port computes in float32 like the official helpers


@pytest.fixture(scope="module")
def port():
    return load_module("benchmarks/official_port.py")


def _walk(frames: int = 60) -> np.ndarray:
    """A walking procedural body of non-target proportions, turned and away from the origin: (frames, 22, 3)."""
    rng = np.random.default_rng(7)
    body = sample_body(rng, (0.86, 1.14), 0.04)
    joints = animate(body, render("walk", sample("walk", rng), 20), 20, start_yaw=2.0, start_xz=(1.5, -0.7))
    assert len(joints) >= frames
    return joints[:frames, :22]


def test_port_agrees_with_kinemic_motion(port):
    joints = _walk()
    ours = joints_to_features(joints)
    theirs = port.process_file(joints, TARGET_OFFSETS)
    assert theirs.shape == ours.shape == (59, 263) and theirs.dtype == np.float32
    np.testing.assert_allclose(theirs[:, :259], ours[:, :259], atol=ATOL, rtol=0)
    np.testing.assert_array_equal(theirs[:, 259:], ours[:, 259:], err_msg="foot contacts")
    assert 0 < ours[:, 259:].mean() < 1  # the clip has both planted and moving feet, so contacts are exercised


def test_port_reproduces_official_outputs(port, humanml_parity):
    for name in humanml_parity["sequence_names"]:
        theirs = port.process_file(humanml_parity[f"{name}__input_joints"], humanml_parity["tgt_offsets"])
        ref = humanml_parity[f"{name}__features"]
        np.testing.assert_allclose(theirs[:, :259], ref[:, :259], atol=ATOL, rtol=0, err_msg=name)
        np.testing.assert_array_equal(theirs[:, 259:], ref[:, 259:], err_msg=f"{name}: foot contacts")
