"""HumanML3D directories: caption parsing, the official loading rules, and prepare_prior's corpus layout."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kinemic.corpus import PreparedPrior, PriorConfig, prepare_prior
from kinemic.formats import humanml3d as hml
from kinemic.motion import FeatureStats


def _write_dir(root, lengths: dict[str, int], captions: dict[str, list[hml.Caption]], nan: tuple = ()):
    rng = np.random.default_rng(0)
    for motion_id, n in lengths.items():
        feats = rng.normal(size=(n, 263)).astype(np.float32)
        if motion_id in nan:
            feats[3, 5] = np.nan
        hml.write_motion(root, motion_id, feats, None, captions.get(motion_id, [hml.Caption("a person walks")]))
    ids = list(lengths)
    hml.write_split_files(root, {"train": ids[:-1], "val": [], "test": ids[-1:]})
    hml.write_stats(root, FeatureStats(mean=np.zeros(263, np.float32), std=np.ones(263, np.float32)))


def test_caption_line_round_trip_and_nan_span():
    caption = hml.Caption("a man kicks", ("a/DET", "man/NOUN", "kick/VERB"), 1.5, 4.0)
    assert hml.parse_caption_line(caption.to_line()) == caption
    parsed = hml.parse_caption_line("someone waves#someone/PRON wave/VERB#nan#nan")
    assert parsed.is_whole and parsed.tokens == ("someone/PRON", "wave/VERB")


@pytest.mark.parametrize("line,match", [("a caption#tokens#0.0", "4 fields"), ("a#b#x#0", "not two numbers"),
                                        ("#tok#0#0", "empty caption")])
def test_bad_caption_lines_name_the_file(line, match):
    with pytest.raises(hml.HumanML3DFormatError, match=match):
        hml.parse_caption_line(line, "texts/000001.txt:3")
    with pytest.raises(hml.HumanML3DFormatError, match="000001.txt:3"):
        hml.parse_caption_line(line, "texts/000001.txt:3")


def test_caption_cannot_hold_separator():
    with pytest.raises(hml.HumanML3DFormatError, match="'#'"):
        hml.Caption("a # b").to_line()


def test_official_loading_rules(tmp_path):
    lengths = {"000000": 60, "000001": 39, "000002": 200, "000003": 120, "000004": 80, "000005": 150}
    captions = {
        "000003": [hml.Caption("walks then kicks"), hml.Caption("kicks", (), 3.0, 5.5),  # frames 60..110: kept
                   hml.Caption("too short", (), 0.5, 1.0)],  # 10 frames: dropped
        "000004": [hml.Caption("only a span", (), 0.0, 2.5)],  # no whole-motion caption: not kept whole
    }
    _write_dir(tmp_path, lengths, captions, nan=("000005",))
    report = hml.LoadReport()
    records = hml.load_motions(tmp_path, list(lengths), "train", report=report)
    ids = [r.motion_id for r in records]
    assert ids == ["000000", "A_000003", "000003", "A_000004"]
    clip = records[1]
    assert clip.start_frame == 60 and len(clip.features) == 50 and clip.captions[0].text == "kicks"
    assert report.dropped_length == ["000001", "000002"] and report.dropped_nan == ["000005"]
    assert report.dropped_no_whole_caption == ["000004"] and report.dropped_subclip_spans == 1


def test_prepare_prior_writes_windows_not_copies(tmp_path):
    lengths = {"000000": 60, "000003": 120, "000004": 80, "000006": 90}
    captions = {"000003": [hml.Caption("walks then kicks"), hml.Caption("kicks", (), 3.0, 5.5)],
                "000004": [hml.Caption("only a span", (), 0.0, 2.5)]}
    _write_dir(tmp_path / "hml", lengths, captions)
    prior, report = prepare_prior(PriorConfig(source=str(tmp_path / "hml")))
    assert set(prior.motions["split"]) == {"train", "test"}
    # frames stored once per source: 60 + 120 + 80 + 90
    assert len(prior.features) == 350
    for i in range(len(prior)):
        row = prior.motions.iloc[i]
        source = np.load(tmp_path / "hml" / "new_joint_vecs" / f"{row.source_id}.npy")
        np.testing.assert_array_equal(prior.motion(i), source[row.start_frame : row.start_frame + row.length])
    prior.save(tmp_path / "prepared")
    loaded = PreparedPrior.load(tmp_path / "prepared")
    assert loaded.captions.columns.tolist() == ["motion_id", "caption", "tokens", "start", "end"]
    assert len(loaded.subset(["test"])) == 1 and loaded.subset(["test"]).captions["motion_id"].tolist() == ["000006"]


def test_prepare_prior_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="params.yaml"):
        prepare_prior(PriorConfig(source=str(tmp_path / "missing")))
    _write_dir(tmp_path / "hml", {"000000": 60, "000001": 70}, {})
    (tmp_path / "hml" / "Mean.npy").unlink()
    with pytest.raises(FileNotFoundError, match="Mean.npy"):
        prepare_prior(PriorConfig(source=str(tmp_path / "hml")))
    with pytest.raises(ValueError, match="splits"):
        PriorConfig(splits=("training",))


def test_bad_text_file_names_file_and_line(tmp_path):
    _write_dir(tmp_path, {"000000": 60, "000001": 70}, {})
    (tmp_path / "texts" / "000001.txt").write_text("fine#a/DET#0#0\nbroken line\n")
    with pytest.raises(hml.HumanML3DFormatError, match=r"000001.txt:2"):
        prepare_prior(PriorConfig(source=str(tmp_path)))


def test_stage_main(tmp_path):
    from stages import prepare_prior as stage

    _write_dir(tmp_path / "hml", {"000000": 60, "000001": 39, "000002": 70}, {})
    params = tmp_path / "params.yaml"
    params.write_text(f"prepare_prior:\n  source: {tmp_path / 'hml'}\n")
    stage.main(["--params", str(params), "--out", str(tmp_path / "out"), "--metrics", str(tmp_path / "m.json")])
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["samples"] == 2 and metrics["load.dropped_length"] == 1
    assert len(PreparedPrior.load(tmp_path / "out")) == 2
