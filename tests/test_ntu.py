"""NTU RGB+D ids, official protocols, few-shot sampling, class names."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from kinemic.formats.ntu import (
    XSUB60_TRAIN_PERFORMERS,
    XSUB120_TRAIN_PERFORMERS,
    FewShotConfig,
    NTUId,
    action_name,
    assign_splits,
    is_training,
    load_ntu_metadata,
    parse_action,
    parse_ntu_id,
    protocol_side,
    sample_fewshot,
    samples_table,
)


def universe(actions=(99, 102, 104), setups=(18, 19, 20, 21), performers=range(1, 31)) -> list[str]:
    """A grid of ids: every setup x camera x performer x replication for the given actions."""
    return [
        NTUId(s, c, p, r, a).name
        for a, s, c, p, r in itertools.product(actions, setups, (1, 2, 3), performers, (1, 2))
    ]


@pytest.mark.parametrize(
    "name",
    ["S001C002P003R002A013", "S001C002P003R002A013_rgb", "S001C002P003R002A013_rgb.avi",
     "data/S001C002P003R002A013.npy", "out/S001C002P003R002A013_rgb/vibe_output.pkl"],
)
def test_parse_ids_with_suffixes_and_paths(name):
    sample = parse_ntu_id(name)
    assert sample == NTUId(setup=1, camera=2, performer=3, replication=2, action=13)
    assert sample.name == "S001C002P003R002A013" and sample.label == 12 and sample.tag == "A013"


@pytest.mark.parametrize("name", ["S1C2P3R2A13", "video.mp4", "s001c002p003r002a013", "S001C002P003R002A0134"])
def test_non_ids_are_rejected_by_name(name):
    with pytest.raises(ValueError, match=f"'{name}' is not an NTU RGB\\+D sample id"):
        parse_ntu_id(name)


def test_out_of_range_fields():
    with pytest.raises(ValueError, match="camera 4 is outside"):
        parse_ntu_id("S001C004P003R002A013")
    with pytest.raises(ValueError, match="action 121"):
        parse_ntu_id("S001C001P003R002A121")


def test_parse_action_forms():
    assert parse_action(99) == parse_action("A099") == parse_action("A99") == parse_action("99") == 99
    for bad in ("A000", 121, "kick", True):
        with pytest.raises(ValueError, match="action"):
            parse_action(bad)


def test_xsub120_training_performers():
    assert len(XSUB120_TRAIN_PERFORMERS) == 53
    assert {1, 2, 4, 45, 100, 103} <= XSUB120_TRAIN_PERFORMERS
    assert not {3, 6, 42, 43, 104, 106} & XSUB120_TRAIN_PERFORMERS
    assert XSUB60_TRAIN_PERFORMERS < XSUB120_TRAIN_PERFORMERS and len(XSUB60_TRAIN_PERFORMERS) == 20
    assert is_training("S018C001P001R001A099") and not is_training("S018C001P003R001A099")
    # decided by the performer, never by the setup (KineMIC's bug read the setup number as the subject)
    assert not is_training("S019C001P042R001A099")
    assert is_training("S020C001P008R001A099")


def test_cross_setup_parity_and_ntu60_protocols():
    assert protocol_side("S018C001P003R001A099", "xset120") == "train"
    assert protocol_side("S019C001P001R001A099", "xset120") == "test"
    assert is_training("S001C002P003R001A010", "xview60") and not is_training("S001C001P001R001A010", "xview60")
    assert is_training("S005C001P038R001A010", "xsub60") and not is_training("S005C001P045R001A010", "xsub60")
    with pytest.raises(ValueError, match="not part of NTU RGB\\+D 60"):
        is_training("S018C001P001R001A099", "xsub60")
    with pytest.raises(ValueError, match="protocol='xsub'"):
        is_training("S018C001P001R001A099", "xsub")


def test_fewshot_is_deterministic_per_seed_and_order_free():
    ids = universe()
    config = FewShotConfig(classes=("A104", 99, 102), shots=10, seed=3)
    assert config.classes == (99, 102, 104)
    first = sample_fewshot(ids, config)
    again = sample_fewshot(list(reversed(ids)), config)
    assert first.fewshot == again.fewshot
    other = sample_fewshot(ids, FewShotConfig(classes=(99, 102, 104), shots=10, seed=4))
    assert other.fewshot != first.fewshot
    alone = sample_fewshot(ids, FewShotConfig(classes=(102,), shots=10, seed=3))
    assert alone.fewshot[102] == first.fewshot[102]  # a class's draw ignores which other classes are requested
    for action, chosen in first.fewshot.items():
        assert len(chosen) == 10 and len(set(chosen)) == 10
        assert all(is_training(i) and parse_ntu_id(i).action == action for i in chosen)
        assert all(not is_training(i) for i in first.test[action])
    n_test_per_class = sum(not is_training(i) for i in ids) // 3
    assert all(len(t) == n_test_per_class for t in first.test.values())


def test_fewshot_errors_name_the_class():
    ids = universe(performers=(1, 2, 3))  # training performers 1 and 2 only: 4 setups x 3 cameras x 2 x 2 = 48
    with pytest.raises(ValueError, match=r"class A099 \(running on the spot\) has 48 sample\(s\).*fewer than shots=50"):
        sample_fewshot(ids, FewShotConfig(shots=50))
    with pytest.raises(ValueError, match="class A001 .*no samples"):
        sample_fewshot(ids, FewShotConfig(classes=(1,)))
    with pytest.raises(ValueError, match="NTU RGB\\+D 120 classes are A001..A120"):
        FewShotConfig(classes=(130,))
    with pytest.raises(ValueError, match="duplicate sample ids"):
        sample_fewshot(ids + ids[:1], FewShotConfig(shots=5))


def test_assign_splits_labels_every_row():
    ids = universe() + universe(actions=(1,), setups=(18,))
    table = samples_table(ids)
    assert list(table.columns) == ["sample_id", "setup", "camera", "performer", "replication", "action"]
    out = assign_splits(table, FewShotConfig(shots=10, seed=0))
    assert "split" not in table.columns  # the input is not modified
    counts = out.groupby(["action", "split"]).size()
    assert (counts.loc[(99, "fewshot")], counts.loc[(102, "fewshot")], counts.loc[(104, "fewshot")]) == (10, 10, 10)
    assert set(out.loc[out.action == 1, "split"]) == {"unused"}
    test_rows = out[out.split == "test"]
    assert not test_rows.sample_id.map(is_training).any()
    with pytest.raises(ValueError, match="id_column='sample'"):
        assign_splits(table, FewShotConfig(), id_column="sample")
    assert isinstance(out, pd.DataFrame) and len(out) == len(table)


def test_builtin_names():
    assert action_name(99) == "running on the spot"
    assert action_name("A102") == "side kick" and action_name(104) == "stretch oneself"


def test_metadata_file(ntu_metadata_path):
    actions = load_ntu_metadata(ntu_metadata_path)
    assert len(actions) == 120
    assert actions[102].name == "side kick" and actions[102].captions == ("A person does a side kick.",)
    assert actions[99].tag == "A099" and actions[99].label == 98


def test_metadata_errors(tmp_path):
    path = tmp_path / "meta.json"
    path.write_text('{"groups": ["g"], "actions": [{"action": "x", "tag": "A200", "group": "g", "captions": []}]}')
    with pytest.raises(ValueError, match=r"meta.json: actions\[0\]: action 'A200'"):
        load_ntu_metadata(path)
    path.write_text('{"groups": ["g"], "actions": [{"action": "x", "tag": "A001", "group": "h", "captions": []}]}')
    with pytest.raises(ValueError, match="group 'h' is not one of"):
        load_ntu_metadata(path)


def test_released_fewshot_list(ntu_fewshot_dir):
    """The authors' 30 few-shot ids parse; 18 of them are X-Sub training samples (their split read setups)."""
    ids = (ntu_fewshot_dir / "fewshot_train.txt").read_text().split()
    parsed = [parse_ntu_id(i) for i in ids]
    assert len(parsed) == 30 and len({p.name for p in parsed}) == 30
    assert sorted({p.action for p in parsed}) == [99, 102, 104]
    on_train_side = sum(is_training(p) for p in parsed)
    assert on_train_side == 18
    assert np.all([p.setup in {18, 19, 25, 27, 28, 31} for p in parsed])  # the buggy "subject" list, read as setups
