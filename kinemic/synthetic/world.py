"""The whole embedded world in one call: prior corpus, target set and preview GIFs (the `synthesize` stage's work)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from kinemic.formats.target_joints import camera_to_yup, load_joints24
from kinemic.preview import Panel, PreviewConfig, render_gif
from kinemic.synthetic.config import SyntheticConfig
from kinemic.synthetic.prior import PriorSummary, Progress, build_prior
from kinemic.synthetic.target import TargetSummary, build_target

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorldSummary:
    prior: PriorSummary
    target: TargetSummary
    previews: tuple[str, ...]

    def as_metrics(self) -> dict[str, float | int]:
        return {**self.prior.as_metrics(), **self.target.as_metrics(), "previews": len(self.previews)}


def write_previews(cfg: SyntheticConfig, out: Path) -> list[str]:
    """`previews/prior_<id>.gif` (first action's span highlighted) and `previews/target_<class>.gif` (3 views)."""
    out = Path(out)
    names: list[str] = []
    step = cfg.previews.frame_step
    segments = pq.read_table(out / "prior" / "primitives.parquet").to_pylist()
    for i in range(min(cfg.previews.num_prior, cfg.prior.num_motions)):
        motion_id = f"{i:06d}"
        joints = np.load(out / "prior" / "new_joints" / f"{motion_id}.npy")
        mine = [s for s in segments if s["motion_id"] == motion_id and s["primitive"] != "stand_idle"]
        first = mine[0] if mine else None
        title = f"prior {motion_id}: " + " > ".join(s["primitive"] for s in mine)
        highlight = (first["start_frame"], first["end_frame"]) if first else None
        render_gif([Panel(joints, title, highlight)], out / "previews" / f"prior_{motion_id}.gif",
                   PreviewConfig(fps=cfg.prior.fps, frame_step=step))
        names.append(f"prior_{motion_id}.gif")
    variants = pq.read_table(out / "target" / "variants.parquet").to_pylist()
    for tag in cfg.target.classes:
        rows = [r for r in variants if r["action"] == tag]
        key = rows[0]["sample_id"][:4] + "C{}" + rows[0]["sample_id"][8:]
        panels = []
        for camera in (1, 2, 3):
            sample_id = key.format(f"{camera:03d}")
            row = next(r for r in rows if r["sample_id"] == sample_id)
            joints = camera_to_yup(load_joints24(out / "target", sample_id)[:, :22])
            panels.append(Panel(joints, f"{sample_id} {row['variant']}"))
        render_gif(panels, out / "previews" / f"target_{tag}.gif",
                   PreviewConfig(fps=cfg.target.fps, frame_step=max(1, round(step * cfg.target.fps / cfg.prior.fps))))
        names.append(f"target_{tag}.gif")
    return names


def build_world(cfg: SyntheticConfig, out: Path, progress: Progress | None = None) -> WorldSummary:
    """Write `out/prior/`, `out/target/` and `out/previews/`; `out` should be a fresh directory."""
    out = Path(out)
    prior = build_prior(cfg.prior, cfg.seed, out / "prior", progress)
    target = build_target(cfg.target, cfg.seed, out / "target", progress)
    previews = write_previews(cfg, out) if cfg.previews.enabled else []
    return WorldSummary(prior, target, tuple(previews))
