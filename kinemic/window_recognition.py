"""Window-recognition rate: do the windows MIC picks during training contain the target action?

Mining purity (kinemic.mining_purity) asks whether a soft-paired prior motion holds the target's primitive somewhere;
MIC then picks one window of a crop of that motion (eq. (2)), and that window is what the student learns from. The
train stage records every step's crops and windows (plots/train/windows.parquet, kinemic.training.window_table). On the
embedded world, whose prior is labelled segment by segment (primitives.parquet), each window is judged twice:

- by the labels: does the window's span of its source motion contain a primitive that performs the class
  (`MATCHING_PRIMITIVES`, the overlap rule `span_contains`, through `mined_hits`: a window is scored as a mined
  sub-clip of its source is);
- by the recogniser of the teacher report card (kinemic.recogniser, trained on the prior's labelled segments by
  `kinemic.teacher_card.prepare_card`) applied to the window's features: is its top-1 (top-3) guess one of those
  primitives. It sees what the window shows, where the labels only say what overlaps it.

The chance reference: for every window, a window of the same length at a uniformly drawn start in the same crop
(seeded), judged the same way. MIC learns as training goes, so early windows are near chance: rates are given over
all steps and over the last half. The recogniser was trained on 80 % of the prior's motions, the mined ones among
them, so it judges windows of motions it has mostly seen; its held-out accuracy on real segments is above 99 %.
Real HumanML3D has no labels: `kinemic.recogniser.read_primitives` raises `UnlabelledPrior`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np
import pandas as pd

from kinemic.corpus import PreparedPrior
from kinemic.mining_purity import MATCHING_PRIMITIVES, mined_hits
from kinemic.statistics import Interval, paired_difference

WINDOW_COLUMNS = ("step", "class_name", "motion_id", "crop_start", "crop_length", "window_start", "window_length")
JUDGES = ("label", "top1", "top3")  # the labels' verdict, the recogniser's top-1 and top-3
RATE_COLUMNS = (*JUDGES, *(f"chance_{j}" for j in JUDGES))
CHANCE_STREAM = 21  # the chance windows' seed sequence: (seed, CHANCE_STREAM)


class MotionRecogniser(Protocol):
    """What is read of kinemic.recogniser.Recogniser: its class names and class probabilities of feature motions."""

    classes: tuple[str, ...]

    def probabilities(self, motions: Sequence[np.ndarray]) -> np.ndarray: ...


def check_windows(windows: pd.DataFrame) -> None:
    """Raise unless `windows` is a window record: the columns named, every window inside its crop."""
    missing = [c for c in WINDOW_COLUMNS if c not in windows.columns]
    if missing:
        raise ValueError(f"the windows table lacks columns {missing}: it is not a train stage's windows.parquet "
                         "(written for train.method kinemic)")
    if len(windows) == 0:
        raise ValueError("the windows table is empty")
    outside = (windows["window_start"] < 0) | (windows["window_length"] < 2) | (
        windows["window_start"] + windows["window_length"] > windows["crop_length"])
    if outside.any():
        row = windows[outside].iloc[0]
        raise ValueError(f"{int(outside.sum())} windows do not lie inside their crop (e.g. step {row.step}: start "
                         f"{row.window_start}, length {row.window_length}, crop {row.crop_length})")


def chance_starts(windows: pd.DataFrame, seed: int) -> np.ndarray:
    """(N,) a uniform start in [0, crop_length - window_length] per window: the chance window, seeded."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, CHANCE_STREAM]))
    return rng.integers(0, (windows["crop_length"] - windows["window_length"] + 1).to_numpy())


def window_spans(windows: pd.DataFrame, starts: np.ndarray, motions: pd.DataFrame) -> pd.DataFrame:
    """The windows starting at `starts` (N,) in their crops, as a prepared prior's motion table of sub-clips:
    motion_id (a name per window: w<row>), source_id, start_frame and length in the source motion, and offset, the
    window's first row in the prior's feature array."""
    prior = motions.set_index("motion_id")
    unknown = sorted(set(windows["motion_id"]) - set(prior.index))
    if unknown:
        raise ValueError(f"{len(unknown)} windowed motions are not in the prior's motion table (e.g. {unknown[:3]}): "
                         "the windows come from a run on another prior")
    rows = prior.loc[windows["motion_id"].to_numpy()]
    shift = windows["crop_start"].to_numpy() + np.asarray(starts)  # from the prior motion's first frame
    return pd.DataFrame({
        "motion_id": [f"w{i}" for i in range(len(windows))],
        "source_id": rows["source_id"].to_numpy(),
        "start_frame": rows["start_frame"].to_numpy() + shift,
        "length": windows["window_length"].to_numpy(),
        "offset": rows["offset"].to_numpy() + shift,
    })


def label_hits(windows: pd.DataFrame, spans: pd.DataFrame, segments: pd.DataFrame,
               matching: Mapping[str, frozenset[str]] = MATCHING_PRIMITIVES) -> np.ndarray:
    """(N,) 1.0 where a window's span contains a primitive of its class (mining purity's rule), NaN for a class
    without a mapping (left out, with mined_hits' warning)."""
    pairs = pd.DataFrame({"class_name": windows["class_name"].to_numpy(), "rank": np.arange(len(windows)),
                          "motion_id": spans["motion_id"].to_numpy()})
    hits = mined_hits(pairs, spans, segments, matching)
    out = np.full(len(windows), np.nan)
    out[hits["rank"].to_numpy()] = hits["hit"].to_numpy(dtype=float)
    return out


def recognised(windows: pd.DataFrame, spans: pd.DataFrame, features: np.ndarray, recogniser: MotionRecogniser,
               matching: Mapping[str, frozenset[str]] = MATCHING_PRIMITIVES) -> tuple[np.ndarray, np.ndarray]:
    """(top1, top3), each (N,): 1.0 where the recogniser's top-1 (one of its top 3) guess for a window's frames is a
    primitive of the window's class; NaN for a class without a mapping."""
    clips = [features[o : o + n] for o, n in zip(spans["offset"], spans["length"], strict=True)]
    ranked = np.argsort(-recogniser.probabilities(clips), axis=1, kind="stable")[:, :3]  # (N, 3)
    top1, top3 = np.full(len(windows), np.nan), np.full(len(windows), np.nan)
    for name, rows in windows.groupby("class_name", sort=False).indices.items():
        if name not in matching:
            continue
        wanted = np.isin(ranked[rows], [i for i, c in enumerate(recogniser.classes) if c in matching[name]])
        top1[rows], top3[rows] = wanted[:, 0], wanted.any(axis=1)
    return top1, top3


def score_windows(windows: pd.DataFrame, prior: PreparedPrior, segments: pd.DataFrame, recogniser: MotionRecogniser,
                  seed: int = 0, matching: Mapping[str, frozenset[str]] = MATCHING_PRIMITIVES) -> pd.DataFrame:
    """One row per window of a class with a mapping: step, class_name, `kept` when recorded, then 1.0 / 0.0 for each
    judge on MIC's window (label, top1, top3) and on the chance window in the same crop (chance_label, ...)."""
    check_windows(windows)
    out = windows[[c for c in ("step", "class_name", "kept") if c in windows.columns]].reset_index(drop=True)
    table = windows.reset_index(drop=True)
    for prefix, starts in (("", table["window_start"].to_numpy()), ("chance_", chance_starts(table, seed))):
        spans = window_spans(table, starts, prior.motions)
        out[f"{prefix}label"] = label_hits(table, spans, segments, matching)
        out[f"{prefix}top1"], out[f"{prefix}top3"] = recognised(table, spans, prior.features, recogniser, matching)
    return out[out["label"].notna()].reset_index(drop=True)


def recognition_rates(scored: pd.DataFrame, after_step: int = 0) -> pd.DataFrame:
    """Rates of the windows of the steps after `after_step`: a row per class (in order of appearance) and `overall`
    (every window counts once), columns `windows` and RATE_COLUMNS (fractions)."""
    late = scored[scored["step"] > after_step]
    if late.empty:
        raise ValueError(f"no window after step {after_step} (the record ends at step {int(scored['step'].max())})")
    table = late.groupby("class_name", sort=False)[list(RATE_COLUMNS)].mean()
    table.loc["overall"] = late[list(RATE_COLUMNS)].mean()
    table.insert(0, "windows", [*late.groupby("class_name", sort=False).size(), len(late)])
    table.index.name = "class"
    return table


def mic_over_chance(scored: pd.DataFrame, judge: str = "label", after_step: int = 0, **options) -> Interval:
    """MIC's rate minus the chance window's by `judge`, over the steps after `after_step`, with its paired bootstrap
    interval: steps are resampled (a step's windows share its MIC state), MIC and chance paired within each step
    (kinemic.statistics.paired_difference, steps in the place of classifier seeds)."""
    if judge not in JUDGES:
        raise ValueError(f"judge must be one of {JUDGES}, got {judge!r}")
    per_step = scored[scored["step"] > after_step].groupby("step")[[judge, f"chance_{judge}"]].mean()
    if per_step.empty:
        raise ValueError(f"no window after step {after_step}")
    mic, chance = ({0: per_step[column].to_dict()} for column in (judge, f"chance_{judge}"))
    return paired_difference(mic, chance, **options)


def last_half(scored: pd.DataFrame) -> int:
    """The step after which the last half of the recorded steps lies."""
    return int(scored["step"].max()) // 2


def rates_metrics(tables: Mapping[str, pd.DataFrame]) -> dict[str, float]:
    """Flat keys `<scope>.<class>.<column>` (spaces in class names kept) for a JSON file, rates rounded to 1e-4."""
    out: dict[str, float] = {}
    for scope, table in tables.items():
        for name, row in table.iterrows():
            for column, value in row.items():
                out[f"{scope}.{name}.{column}"] = int(value) if column == "windows" else round(float(value), 4)
    return out
