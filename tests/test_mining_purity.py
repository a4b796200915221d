"""Mining purity: a mined span counts only when a matching primitive lies inside it."""

import math

import pandas as pd
import pytest

from kinemic.mining_purity import MATCHING_PRIMITIVES, mined_hits, purity_at, span_contains


def test_span_contains_needs_half_of_the_shorter_interval():
    assert span_contains(10, 30, 0, 40)  # all of the segment inside
    assert not span_contains(10, 30, 40, 60)  # disjoint
    assert span_contains(10, 30, 20, 60)  # half of the segment
    assert not span_contains(10, 30, 21, 60)  # less than half
    assert span_contains(0, 100, 40, 50)  # the segment fills the whole span


def _world():
    segments = pd.DataFrame({
        "motion_id": ["000001", "000001", "000002"],
        "primitive": ["walk", "side_kick", "side_kick"],
        "start_frame": [0, 40, 0],
        "end_frame": [40, 80, 30],
    })
    motions = pd.DataFrame({
        "motion_id": ["000001", "A_000001", "B_000001", "000002"],
        "source_id": ["000001", "000001", "000001", "000002"],
        "start_frame": [0, 0, 40, 0],
        "length": [80, 40, 40, 30],
    })
    pairs = pd.DataFrame({
        "class_name": ["side kick"] * 4,
        "rank": [0, 1, 2, 3],
        "motion_id": ["A_000001", "000001", "B_000001", "000002"],
    })
    return pairs, motions, segments


def test_a_sub_clip_without_the_primitive_is_a_miss():
    pairs, motions, segments = _world()
    hits = mined_hits(pairs, motions, segments)
    # A_000001 spans only the walk; the whole motion, the kick sub-clip and the kick motion hold a side kick.
    assert hits.sort_values("rank")["hit"].tolist() == [False, True, True, True]


def test_purity_at_n_is_the_hit_share_of_the_top_n():
    pairs, motions, segments = _world()
    table = purity_at(mined_hits(pairs, motions, segments), [1, 2, 4, 10])
    assert table.loc[1, "side kick"] == 0.0
    assert table.loc[2, "side kick"] == 0.5
    assert table.loc[4, "side kick"] == 0.75
    assert math.isnan(table.loc[10, "side kick"])  # needs a larger k


def test_pairs_from_another_prior_fail_naming_the_stage():
    pairs, motions, segments = _world()
    with pytest.raises(ValueError, match="re-run stage `mine`"):
        mined_hits(pairs, motions[motions.motion_id != "000002"], segments)


def test_unmapped_classes_are_named_and_repeated_ids_refused(caplog):
    pairs, motions, segments = _world()
    other = pairs.assign(class_name="juggling")
    hits = mined_hits(pd.concat([pairs, other]), motions, segments)
    assert set(hits["class_name"]) == {"side kick"} and "juggling" in caplog.text
    with pytest.raises(ValueError, match="repeats motion ids"):
        mined_hits(pairs, pd.concat([motions, motions]), segments)


def test_every_embedded_target_class_has_a_mapping_to_prior_primitives():
    from kinemic.formats.ntu import action_name
    from kinemic.synthetic.primitives import PRIMITIVES
    from kinemic.synthetic.styles import CLASSES

    known = set(PRIMITIVES)
    for tag in CLASSES:
        name = action_name(int(tag[1:]))
        assert name in MATCHING_PRIMITIVES, name
        assert MATCHING_PRIMITIVES[name] <= known
