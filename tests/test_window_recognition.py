"""Window-recognition rate on a hand-built labelled prior: every rate is the one worked out by hand below."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from kinemic.corpus import PreparedPrior
from kinemic.motion import FeatureStats
from kinemic.window_recognition import (
    RATE_COLUMNS,
    chance_starts,
    last_half,
    mic_over_chance,
    rates_metrics,
    recognition_rates,
    score_windows,
)
from tests.script_modules import load_module

CODES = ("stand_idle", "side_kick", "jog_in_place", "wave")  # feature channel 0 holds each frame's code


def _prior() -> tuple[PreparedPrior, pd.DataFrame]:
    """Source A (40 frames): idle [0, 10), side kick [10, 20), jog [20, 40); source B (30 frames): wave [0, 15), side
    kick [15, 30). Prior motions: A, its sub-clip A#10 (source frames 10-40) and B."""
    segments = pd.DataFrame({
        "motion_id": ["A", "A", "A", "B", "B"],
        "primitive": ["stand_idle", "side_kick", "jog_in_place", "wave", "side_kick"],
        "start_frame": [0, 10, 20, 0, 15],
        "end_frame": [10, 20, 40, 15, 30],
    })
    codes = np.array([0] * 10 + [1] * 10 + [2] * 20 + [3] * 15 + [1] * 15, dtype=np.float32)  # A then B
    features = np.random.default_rng(0).normal(0, 0.1, (70, 263)).astype(np.float32)
    features[:, 0] = codes
    motions = pd.DataFrame({"motion_id": ["A", "A#10", "B"], "source_id": ["A", "A", "B"], "split": "train",
                            "offset": [0, 10, 40], "length": [40, 30, 30], "start_frame": [0, 10, 0]})
    captions = pd.DataFrame({"motion_id": ["A", "A#10", "B"], "caption": ["a", "b", "c"], "tokens": "", "start": 0.0,
                             "end": 0.0})
    stats = FeatureStats(mean=np.zeros(263, np.float32), std=np.ones(263, np.float32))
    return PreparedPrior(features, motions, captions, stats), segments


def _windows() -> pd.DataFrame:
    rows = [  # step, class, prior motion, crop start and length, window start and length (in the crop)
        (1, "side kick", "A", 10, 10, 0, 10),  # source [10, 20): the kick
        (1, "running on the spot", "A#10", 12, 16, 2, 8),  # A#10 starts at source 10: [24, 32), jog
        (2, "side kick", "B", 0, 12, 4, 8),  # [4, 12): wave only
        (2, "side kick", "A", 8, 3, 1, 2),  # [9, 11): one idle frame, one kick frame
        (3, "brushing teeth", "B", 0, 10, 0, 10),  # no mapping: left out
        (4, "running on the spot", "B", 10, 20, 4, 16),  # [14, 30): a wave frame, then the kick
    ]
    return pd.DataFrame(rows, columns=["step", "class_name", "motion_id", "crop_start", "crop_length", "window_start",
                                       "window_length"])


class _CodeRecogniser:
    """Ranks the primitives by how many of a clip's frames carry their code; ties go to the lower code."""

    classes = CODES

    def __init__(self) -> None:
        self.seen: list[list[np.ndarray]] = []

    def probabilities(self, motions):
        self.seen.append([np.asarray(m) for m in motions])
        counts = np.stack([np.bincount(np.rint(m[:, 0]).astype(int), minlength=4) for m in motions]).astype(float)
        scores = counts + 0.01 * np.array([4, 3, 2, 1])
        return scores / scores.sum(axis=1, keepdims=True)


def _score(seed: int = 0):
    prior, segments = _prior()
    recogniser = _CodeRecogniser()
    return score_windows(_windows(), prior, segments, recogniser, seed), recogniser, prior


def test_each_window_is_judged_by_the_labels_and_the_recogniser_as_worked_out_by_hand():
    scored, recogniser, prior = _score()
    assert scored["class_name"].tolist() == ["side kick", "running on the spot", "side kick", "side kick",
                                             "running on the spot"]  # brushing teeth has no mapping
    # row 2 ([4, 12), wave): wave, idle, side kick rank first, so the kick is in the top 3 only.
    # row 3 ([9, 11)): one kick frame, half the 2-frame window: a label hit; idle wins the tie, the kick is second.
    # row 4 ([14, 30)): kick, wave, idle; no jog anywhere.
    assert scored["label"].tolist() == [1, 1, 0, 1, 0]
    assert scored["top1"].tolist() == [1, 1, 0, 0, 0]
    assert scored["top3"].tolist() == [1, 1, 1, 1, 0]
    # The recogniser saw each window's own frames: source frames [10, 20) of A, [24, 32) of A, [4, 12) of B...
    mic_clips = recogniser.seen[0]
    np.testing.assert_array_equal(mic_clips[0], prior.features[10:20])
    np.testing.assert_array_equal(mic_clips[1], prior.features[24:32])
    np.testing.assert_array_equal(mic_clips[2], prior.features[44:52])
    # Chance: every start in rows 0, 1, 2 and 5's crops gives the same verdicts as MIC's window; row 3's crop
    # [8, 11) has two: start 0 ([8, 10), idle only: no label hit) and start 1 (MIC's window).
    start = chance_starts(_windows(), 0)[3]
    expected_label = [1, 1, 0, int(start == 1), 0]
    assert scored["chance_label"].tolist() == expected_label
    assert scored["chance_top1"].tolist() == [1, 1, 0, 0, 0]
    assert scored["chance_top3"].tolist() == [1, 1, 1, 1, 0]


def test_rates_per_class_and_overall_and_over_the_last_half():
    scored, _, _ = _score()
    c3 = int(chance_starts(_windows(), 0)[3] == 1)
    rates = recognition_rates(scored)
    assert rates.index.tolist() == ["side kick", "running on the spot", "overall"]
    assert rates["windows"].tolist() == [3, 2, 5]
    expected = {
        "side kick": [2 / 3, 1 / 3, 1.0, (1 + c3) / 3, 1 / 3, 1.0],
        "running on the spot": [0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
        "overall": [3 / 5, 2 / 5, 4 / 5, (2 + c3) / 5, 2 / 5, 4 / 5],
    }
    for name, values in expected.items():
        np.testing.assert_allclose(rates.loc[name, list(RATE_COLUMNS)].to_numpy(float), values, rtol=0, atol=1e-12)
    assert last_half(scored) == 2  # steps 1-4 recorded: the last half is steps 3 and 4
    late = recognition_rates(scored, last_half(scored))
    assert late.index.tolist() == ["running on the spot", "overall"]
    assert late["windows"].tolist() == [1, 1] and (late[list(RATE_COLUMNS)] == 0).all().all()
    metrics = rates_metrics({"all": rates, "last_half": late})
    assert metrics["all.overall.label"] == 0.6 and metrics["all.side kick.windows"] == 3
    assert metrics["last_half.overall.top3"] == 0.0
    with pytest.raises(ValueError, match="no window after step 4"):
        recognition_rates(scored, 4)


def test_mic_over_chance_is_the_paired_per_step_difference():
    """A constant per-step gain is exact (every resample of steps gives it); a gain on one step of two is uncertain,
    its interval spanning the two steps' differences."""
    steps = np.repeat(np.arange(1, 5), 3)
    constant = pd.DataFrame({"step": steps, "label": np.tile([1.0, 1.0, 0.0], 4),
                             "chance_label": np.tile([1.0, 0.0, 0.0], 4)})
    gain = mic_over_chance(constant, "label", resamples=500)
    assert (gain.estimate, gain.low, gain.high) == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    mixed = constant.assign(label=np.where(steps % 2 == 0, 1.0, constant["chance_label"]))
    gain = mic_over_chance(mixed, "label", resamples=500)
    assert gain.estimate == pytest.approx(2 / 3 / 2) and gain.low == pytest.approx(0.0) and gain.high == \
        pytest.approx(2 / 3)
    assert mic_over_chance(mixed, "label", after_step=2, resamples=200).estimate == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="judge"):
        mic_over_chance(constant, "speed")
    with pytest.raises(ValueError, match="no window after step 4"):
        mic_over_chance(constant, "label", after_step=4)


def test_chance_windows_are_seeded_uniform_and_inside_the_crop():
    windows = pd.DataFrame({"crop_length": [20] * 2000, "window_length": [16] * 2000})
    starts = chance_starts(windows, 3)
    np.testing.assert_array_equal(starts, chance_starts(windows, 3))
    assert not np.array_equal(starts, chance_starts(windows, 4))
    assert sorted(set(starts.tolist())) == [0, 1, 2, 3, 4]  # every start of the crop, none past it
    assert abs(np.mean(starts) - 2.0) < 0.15


def test_the_kept_column_travels_and_bad_tables_fail_naming_the_problem(caplog):
    prior, segments = _prior()
    windows = _windows().assign(kept=[True, False, True, True, True, False])
    with caplog.at_level(logging.WARNING):
        scored = score_windows(windows, prior, segments, _CodeRecogniser())
    assert scored["kept"].tolist() == [True, False, True, True, False]
    assert "brushing teeth" in caplog.text  # left out, said so
    with pytest.raises(ValueError, match="lacks columns"):
        score_windows(windows.drop(columns="crop_start"), prior, segments, _CodeRecogniser())
    with pytest.raises(ValueError, match="inside their crop"):
        score_windows(windows.assign(window_start=5), prior, segments, _CodeRecogniser())
    with pytest.raises(ValueError, match="another prior"):
        score_windows(windows.assign(motion_id="Z"), prior, segments, _CodeRecogniser())


def _script():
    return load_module("scripts/window_recognition.py")


def test_the_script_trains_the_card_recogniser_and_prints_and_writes_the_rates(tmp_path, capsys, one_thread):
    prior, segments = _prior()
    prior.save(tmp_path / "prior")
    segments.to_parquet(tmp_path / "primitives.parquet", index=False)
    _windows().to_parquet(tmp_path / "windows.parquet", index=False)
    args = ["--windows", str(tmp_path / "windows.parquet"), "--prior", str(tmp_path / "prior"), "--primitives",
            str(tmp_path / "primitives.parquet"), "--json", str(tmp_path / "rates.json"), "--recogniser",
            str(tmp_path / "recogniser.pt")]
    script = _script()
    script.main(args)
    out = capsys.readouterr().out
    assert "all 4 steps" in out and "steps 3-4" in out and "| overall | 5 |" in out
    rates = json.loads((tmp_path / "rates.json").read_text())
    assert rates["all.overall.windows"] == 5 and rates["last_half.overall.windows"] == 1
    assert rates["all.overall.label"] == 0.6  # the labels' verdicts do not depend on the recogniser
    assert "MIC minus the chance window, steps 3-4" in out and "last_half.mic_over_chance.label.ci_low" in rates
    assert (tmp_path / "recogniser.pt").is_file()
    script.main(args)  # the saved recogniser is reused: the same rates
    assert json.loads((tmp_path / "rates.json").read_text()) == rates


def test_the_script_stops_on_an_unlabelled_prior_or_a_missing_record(tmp_path):
    _windows().to_parquet(tmp_path / "windows.parquet", index=False)
    with pytest.raises(SystemExit, match="needs a labelled prior.*no primitive labels"):
        _script().main(["--windows", str(tmp_path / "windows.parquet"), "--primitives", str(tmp_path / "none")])
    with pytest.raises(SystemExit, match="train.method kinemic"):
        _script().main(["--windows", str(tmp_path / "missing.parquet")])
