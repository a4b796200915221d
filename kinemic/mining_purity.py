"""How pure is the mining? On the embedded world, every prior motion's segments are labelled with their primitive
(`primitives.parquet`), so a mined soft positive can be checked: does its span of the source motion contain a
primitive that performs the target action? Real HumanML3D has no such labels, so this is a study of the embedded
benchmark only (README "Studies beyond the paper").

Purity at n is the share of a class's n most similar mined motions that are hits. Because mining takes the top k by
similarity, the purity at n of one run with a large k is exactly the purity of a run with k = n: one mining pass
gives the whole curve over k.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import pandas as pd

logger = logging.getLogger(__name__)

# The prior primitives that genuinely perform each target action, by the target's (NTU) class name.
MATCHING_PRIMITIVES: dict[str, frozenset[str]] = {
    "running on the spot": frozenset({"jog_in_place", "high_knees"}),
    "side kick": frozenset({"side_kick"}),
    "stretch oneself": frozenset({"stretch_up", "side_bend", "torso_twist"}),
    "clapping": frozenset({"clap"}),
    "hand waving": frozenset({"wave"}),
    "jump up": frozenset({"jump"}),
    "arm circles": frozenset({"arm_circles"}),
    "butt kicks (kick backward)": frozenset({"butt_kicks"}),
    "cross toe touch": frozenset({"toe_touch"}),
}
MIN_OVERLAP = 0.5  # a segment counts when at least half of it lies inside the mined span (or it fills half the span)


def span_contains(seg_start: int, seg_end: int, span_start: int, span_end: int,
                  min_overlap: float = MIN_OVERLAP) -> bool:
    """Does the segment [seg_start, seg_end) lie in the span [span_start, span_end) enough to be seen there?"""
    overlap = min(seg_end, span_end) - max(seg_start, span_start)
    if overlap <= 0:
        return False
    return overlap >= min_overlap * min(seg_end - seg_start, span_end - span_start)


def mined_hits(
    pairs: pd.DataFrame,
    motions: pd.DataFrame,
    segments: pd.DataFrame,
    matching: Mapping[str, frozenset[str]] = MATCHING_PRIMITIVES,
) -> pd.DataFrame:
    """One row per mined pair of a class with a known mapping: class_name, rank, motion_id, hit.

    Args:
        pairs: the mine stage's soft pairs (class_name, rank, motion_id).
        motions: the prepared prior's motion table (motion_id, source_id, start_frame, length): a sub-clip is a span
            of its source motion, so only the segments inside that span count.
        segments: the embedded prior's primitives.parquet (motion_id, primitive, start_frame, end_frame).
    """
    unknown = sorted(set(pairs["class_name"]) - set(matching))
    if unknown == sorted(set(pairs["class_name"])):
        raise ValueError(f"no mined class has a ground-truth mapping ({unknown}); known: {sorted(matching)}")
    if unknown:
        logger.warning("no ground-truth primitives for classes %s: left out of the purity", unknown)
    if motions["motion_id"].duplicated().any():
        raise ValueError("the prior's motion table repeats motion ids: it is not a prepared prior's motions.parquet")
    missing = sorted(set(pairs["motion_id"]) - set(motions["motion_id"]))
    if missing:
        raise ValueError(f"{len(missing)} mined motions are not in the prior's motion table (e.g. {missing[:3]}): "
                         "pairs and prior come from different runs; re-run stage `mine` on this prior")
    span = motions.set_index("motion_id")[["source_id", "start_frame", "length"]]
    by_source = {k: g for k, g in segments.groupby("motion_id")}
    rows = []
    for pair in pairs[pairs["class_name"].isin(matching)].itertuples(index=False):
        source, start, length = span.loc[pair.motion_id]
        wanted = matching[pair.class_name]
        segs = by_source.get(source)
        hit = segs is not None and any(
            s.primitive in wanted and span_contains(s.start_frame, s.end_frame, start, start + length)
            for s in segs.itertuples(index=False))
        rows.append((pair.class_name, int(pair.rank), pair.motion_id, bool(hit)))
    return pd.DataFrame(rows, columns=["class_name", "rank", "motion_id", "hit"])


def purity_at(hits: pd.DataFrame, ns: Sequence[int]) -> pd.DataFrame:
    """Purity of each class's top-n mined motions, for every n (rows: n; columns: classes and their mean).

    An n above a class's number of mined motions is left out (NaN): it would need a larger `mining.k`.
    """
    table = {}
    for name, group in hits.groupby("class_name", sort=False):
        ordered = group.sort_values("rank")["hit"].to_numpy()
        table[name] = [float(ordered[:n].mean()) if n <= len(ordered) else float("nan") for n in ns]
    out = pd.DataFrame(table, index=pd.Index(list(ns), name="n"))
    out["mean"] = out.mean(axis=1, skipna=False)
    return out
