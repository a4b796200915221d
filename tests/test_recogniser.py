"""The primitive recogniser: segments cut from the prepared prior, descriptors, training, held-out split, round trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from kinemic.corpus import PreparedPrior
from kinemic.motion import FeatureStats
from kinemic.recogniser import (
    LabelledSegments,
    Recogniser,
    RecogniserConfig,
    UnlabelledPrior,
    describe,
    labelled_segments,
    moving_average,
    read_primitives,
    train_recogniser,
)

STATS = FeatureStats(mean=np.zeros(263, np.float32), std=np.ones(263, np.float32))
FAST = RecogniserConfig(hidden=32, embedding=8, epochs=40, batch_size=16, lr=3e-3, dropout=0.0)


def make_segments(classes: tuple[str, ...], per_class: int, seed: int = 0) -> LabelledSegments:
    """Hand-built motions: class k oscillates its own block of channels, at its own rate, over small noise."""
    rng = np.random.default_rng(seed)
    features, labels, groups = [], [], []
    for k in range(len(classes)):
        for i in range(per_class):
            length = int(rng.integers(20, 40))
            t = np.arange(length)[:, None]
            x = 0.05 * rng.standard_normal((length, 263)).astype(np.float32)
            x[:, 4 + 10 * k : 14 + 10 * k] += np.sin(0.3 * (k + 1) * t + rng.uniform(0, 6))
            features.append(x.astype(np.float32))
            labels.append(k)
            groups.append(f"{k}-{i}")
    return LabelledSegments(tuple(features), np.array(labels), np.array(groups), classes)


def _prior() -> PreparedPrior:
    """Source 000000 and its mirror whole, source 000001 only as a sub-clip starting at its frame 10."""
    features = np.arange(150 * 263, dtype=np.float32).reshape(150, 263)
    motions = pd.DataFrame(
        [("000000", "000000", "train", 0, 60, 0), ("M000000", "M000000", "train", 60, 60, 0),
         ("A_000001", "000001", "test", 120, 30, 10)],
        columns=["motion_id", "source_id", "split", "offset", "length", "start_frame"],
    )
    captions = pd.DataFrame(columns=["motion_id", "caption", "tokens", "start", "end"])
    return PreparedPrior(features, motions, captions, STATS)


def _table(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["motion_id", "primitive", "start_frame", "end_frame"])


def test_segments_are_cut_from_their_source_frames():
    table = _table([("000000", "walk", 0, 25), ("000000", "side_kick", 20, 61), ("M000000", "walk", 0, 25),
                    ("000001", "jump", 12, 50), ("000001", "jump", 12, 15), ("000002", "bow", 0, 30)])
    segments = labelled_segments(_prior(), table, min_frames=8)
    assert segments.classes == ("walk", "jump", "side_kick", "bow")  # the world's order, those the table names
    np.testing.assert_array_equal(segments.features[0], _prior().features[0:25])
    np.testing.assert_array_equal(segments.features[1], _prior().features[20:60])  # cut at the source's last frame
    np.testing.assert_array_equal(segments.features[2], _prior().features[60:85])
    np.testing.assert_array_equal(segments.features[3], _prior().features[122:150])  # sub-clip: origin 120 - 10
    assert len(segments) == 4  # too short (3 frames) and unknown source (000002) are left out
    assert segments.labels.tolist() == [0, 2, 0, 1]
    assert segments.groups.tolist() == ["000000", "000000", "000000", "000001"]  # mirrors go with their original


def test_segments_of_another_prior_raise():
    with pytest.raises(ValueError, match="another prior"):
        labelled_segments(_prior(), _table([("999999", "walk", 0, 25)]))
    with pytest.raises(ValueError, match="does not know"):
        labelled_segments(_prior(), _table([("000000", "moonwalk", 0, 25)]))


def test_read_primitives_says_why_an_unlabelled_prior_has_no_card(tmp_path):
    with pytest.raises(UnlabelledPrior, match="no primitive labels.*HumanML3D"):
        read_primitives(tmp_path / "primitives.parquet")
    pd.DataFrame({"motion_id": ["000000"], "primitive": ["walk"]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="missing columns"):
        read_primitives(tmp_path / "bad.parquet")


def test_split_by_motion_is_seeded_and_keeps_motions_whole():
    segments = make_segments(("walk", "jump"), 10)
    segments = LabelledSegments(segments.features, segments.labels,
                                np.array([f"m{i // 2}" for i in range(len(segments))]), segments.classes)
    train, held = segments.split_by_motion(0.3, seed=1)
    assert len(train) + len(held) == 20 and len(held) == 6  # 3 of 10 motions, two segments each
    assert not set(train.groups) & set(held.groups)
    again, _ = segments.split_by_motion(0.3, seed=1)
    assert again.groups.tolist() == train.groups.tolist()


def test_describe_pools_mean_std_and_frame_differences():
    motion = np.zeros((4, 263), np.float32)
    motion[:, 0] = [0.0, 1.0, 2.0, 3.0]
    motion[:, 262] = 5.0  # foot contacts are not described
    d = describe([motion], FeatureStats(mean=np.zeros(263, np.float32), std=np.full(263, 2.0, np.float32)))
    assert d.shape == (1, 3 * 259)
    assert d[0, 0] == pytest.approx(0.75) and d[0, 259] == pytest.approx(np.std([0, 0.5, 1, 1.5]))
    assert d[0, 518] == pytest.approx(0.5)
    assert np.count_nonzero(d) == 3
    with pytest.raises(ValueError, match="motion 0"):
        describe([np.zeros((1, 263))], STATS)


def test_smoothing_removes_frame_to_frame_jitter_not_slow_motion():
    t = np.arange(40)
    motion = np.zeros((40, 263), np.float32)
    motion[:, 5] = np.where(t % 2 == 0, 1.0, -1.0)  # jitter at the frame rate
    motion[:, 6] = np.sin(2 * np.pi * t / 20)  # a movement once a second
    raw, smooth = describe([motion], STATS), describe([motion], STATS, smooth_frames=2)
    assert raw[0, 259 + 5] == pytest.approx(1.0) and smooth[0, 259 + 5] == pytest.approx(0.0, abs=1e-6)
    assert smooth[0, 259 + 6] > 0.9 * raw[0, 259 + 6]
    np.testing.assert_allclose(moving_average(motion, 5)[0], motion[:5].mean(axis=0), atol=1e-6)


def test_recogniser_learns_separable_primitives_and_round_trips(tmp_path, one_thread):
    segments = make_segments(("walk", "jump", "side_kick"), 16)
    train, held = segments.split_by_motion(0.25, seed=0)
    state = torch.get_rng_state()
    recogniser = train_recogniser(train, held, STATS, FAST)
    assert torch.equal(torch.get_rng_state(), state), "training leaves the caller's RNG alone"
    assert recogniser.heldout_accuracy == 1.0
    assert recogniser.embed(held.features).shape == (len(held), FAST.embedding)
    twin = train_recogniser(train, held, STATS, FAST)
    np.testing.assert_array_equal(twin.probabilities(held.features), recogniser.probabilities(held.features))

    recogniser.save(tmp_path / "recogniser.pt")
    loaded = Recogniser.load(tmp_path / "recogniser.pt")
    assert loaded.classes == recogniser.classes and loaded.config == FAST and loaded.heldout_accuracy == 1.0
    np.testing.assert_array_equal(loaded.embed(held.features), recogniser.embed(held.features))


def test_config_validation():
    with pytest.raises(ValueError, match="recogniser.heldout_fraction"):
        RecogniserConfig(heldout_fraction=1.0)
    with pytest.raises(ValueError, match="recogniser.epochs"):
        RecogniserConfig(epochs=0)
    with pytest.raises(ValueError, match="recogniser.min_frames"):
        RecogniserConfig(min_frames=1)
    with pytest.raises(ValueError, match="recogniser.smooth_frames"):
        RecogniserConfig(smooth_frames=8)
    with pytest.raises(ValueError, match="empty"):
        train_recogniser(make_segments(("walk",), 2).select(np.zeros(2, bool)), None, STATS, FAST)
