"""Preview GIFs: frame count, determinism, panels."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

from kinemic.preview import Panel, PreviewConfig, render_gif
from kinemic.synthetic.body import animate, default_body
from kinemic.synthetic.primitives import render, sample


@pytest.fixture(scope="module")
def joints() -> np.ndarray:
    return animate(default_body(), render("wave", sample("wave", np.random.default_rng(0)), 20), 20)[:, :22]


def test_frame_count_and_determinism(joints, tmp_path):
    config = PreviewConfig(frame_step=3)
    n = render_gif([Panel(joints, "a", (5, 20)), Panel(joints[:10], "b")], tmp_path / "a.gif", config)
    render_gif([Panel(joints, "a", (5, 20)), Panel(joints[:10], "b")], tmp_path / "b.gif", config)
    assert n == len(range(0, len(joints), 3))
    with Image.open(tmp_path / "a.gif") as im:
        assert im.n_frames == n
        assert im.size[0] > im.size[1]  # two panels side by side
    digest = [hashlib.sha256((tmp_path / f"{k}.gif").read_bytes()).hexdigest() for k in "ab"]
    assert digest[0] == digest[1]
    assert (tmp_path / "a.gif").stat().st_size < 300_000


def test_bad_input_is_rejected(joints, tmp_path):
    with pytest.raises(ValueError, match="shape"):
        Panel(joints[:, :21])
    with pytest.raises(ValueError, match="frame_step"):
        PreviewConfig(frame_step=0)
    with pytest.raises(ValueError, match="at least one panel"):
        render_gif([], tmp_path / "x.gif")
