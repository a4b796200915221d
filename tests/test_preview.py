"""Preview GIFs: frame count, determinism, panels."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from kinemic.preview import Panel, PreviewConfig, fit_title, render_gif
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


def _title_in_panel(title: str, panels: int = 1):
    """Fit the title to one panel of a default preview figure: the title, the panel's width (px) and the renderer."""
    config = PreviewConfig()
    fig = Figure(figsize=(config.panel_inches * panels, config.panel_inches * 1.1), dpi=config.dpi)
    canvas = FigureCanvasAgg(fig)
    width = fig.bbox.width / panels
    text = fit_title(fig.add_axes((0, 0.08, 1 / panels, 0.82)), title, width, canvas.get_renderer())
    return text, width, canvas.get_renderer()


def test_a_prompt_wider_than_its_panel_wraps_whole_onto_two_lines():
    prompt = "a person stretches both arms above the head, then lowers them slowly"  # stages cut at 40: "above the h"
    text, width, renderer = _title_in_panel(prompt)
    lines = text.get_text().split("\n")
    assert len(lines) == 2 and " ".join(lines) == prompt
    assert text.get_window_extent(renderer).width <= width
    short, _, _ = _title_in_panel("real: kick")
    assert short.get_text() == "real: kick"


def test_a_title_too_long_for_two_lines_ends_in_an_ellipsis_within_the_panel():
    title = "prior 000007: " + " > ".join(["walk", "turn_around", "side_kick", "jog_in_place", "arm_circles"] * 3)
    text, width, renderer = _title_in_panel(title, panels=3)
    lines = text.get_text().split("\n")
    assert len(lines) == 2 and lines[1].endswith("...") and text.get_text().startswith("prior 000007: walk")
    assert text.get_window_extent(renderer).width <= width
