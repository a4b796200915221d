"""kinemic <-> mmaction2 checkpoint conversion: torch only, so these run without the `mm` extra."""

from __future__ import annotations

from argparse import Namespace

import pytest
import torch

from kinemic.classifier import ClassifierConfig, TrainedClassifier
from kinemic.mmaction.checkpoint import (
    classifier_from_mmaction,
    from_mmaction_state_dict,
    load_mmaction_checkpoint,
    save_mmaction_checkpoint,
    to_mmaction_state_dict,
)
from kinemic.models.stgcn import STGCN

CONFIG = ClassifierConfig(base_channels=4, clip_len=8, device="cpu")


@pytest.fixture
def classifier() -> TrainedClassifier:
    torch.manual_seed(0)
    model = STGCN(CONFIG.model_config(num_classes=3)).eval()
    return TrainedClassifier(model=model, config=CONFIG, num_classes=3, seed=7)


def test_head_is_renamed_both_ways_and_nothing_else(classifier):
    ours = classifier.model.state_dict()
    theirs = to_mmaction_state_dict(ours)
    assert set(theirs) - set(ours) == {"cls_head.fc.weight", "cls_head.fc.bias"}
    assert set(ours) - set(theirs) == {"cls_head.fc_cls.weight", "cls_head.fc_cls.bias"}
    back = from_mmaction_state_dict(theirs)
    assert list(back) == list(ours)
    assert all(back[key] is ours[key] for key in ours)  # renamed, not copied
    assert from_mmaction_state_dict({"state_dict": theirs, "meta": {}}).keys() == ours.keys()  # an mmengine file


def test_conversion_errors_name_the_problem(classifier):
    ours = classifier.model.state_dict()
    with pytest.raises(ValueError, match="already converted"):
        to_mmaction_state_dict(to_mmaction_state_dict(ours))
    with pytest.raises(ValueError, match="already converted"):
        from_mmaction_state_dict(ours)
    with pytest.raises(ValueError, match=r"module\.backbone\.data_bn\.weight"):
        to_mmaction_state_dict({f"module.{key}": value for key, value in ours.items()})
    with pytest.raises(ValueError, match="data_preprocessor.mean"):
        from_mmaction_state_dict({**to_mmaction_state_dict(ours), "data_preprocessor.mean": torch.zeros(3)})
    with pytest.raises(ValueError, match=r"cls_head\.fc_cls\.bias'\] are missing"):
        to_mmaction_state_dict({key: value for key, value in ours.items() if key != "cls_head.fc_cls.bias"})


def test_wrong_graph_centre_is_refused(classifier):
    theirs = to_mmaction_state_dict(classifier.model.state_dict())
    with pytest.raises(ValueError, match="centre 0"):
        classifier_from_mmaction(theirs, ClassifierConfig(base_channels=4, center=0), device="cpu")
    with pytest.raises(RuntimeError, match="size mismatch"):  # another width: torch's strict load says which tensors
        classifier_from_mmaction(theirs, ClassifierConfig(base_channels=8), device="cpu")


def test_checkpoint_file_round_trip(classifier, tmp_path):
    path = save_mmaction_checkpoint(classifier, tmp_path / "mm" / "stgcn.pth")
    raw = torch.load(path, weights_only=True)
    assert raw["meta"]["num_classes"] == 3 and "cls_head.fc.weight" in raw["state_dict"]
    back = load_mmaction_checkpoint(path, device="cpu")
    assert back.config == CONFIG and back.num_classes == 3 and back.seed == 7
    x = torch.randn(2, 8, 22, 3)
    with torch.no_grad():
        assert torch.equal(back.model(x), classifier.model(x))


def test_checkpoint_loading_errors(classifier, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_mmaction_checkpoint(tmp_path / "missing.pth")
    bare = tmp_path / "bare.pth"
    torch.save({"state_dict": to_mmaction_state_dict(classifier.model.state_dict())}, bare)
    with pytest.raises(ValueError, match="pass the ClassifierConfig"):
        load_mmaction_checkpoint(bare)
    assert load_mmaction_checkpoint(bare, config=CONFIG, device="cpu").num_classes == 3
    pickled = tmp_path / "runner.pth"  # a Python object beside the tensors, as mmengine's message hub is
    torch.save({"state_dict": to_mmaction_state_dict(classifier.model.state_dict()), "hub": Namespace(a=1)}, pickled)
    with pytest.raises(ValueError, match="trusted=True"):
        load_mmaction_checkpoint(pickled, config=CONFIG)
    assert load_mmaction_checkpoint(pickled, config=CONFIG, device="cpu", trusted=True).num_classes == 3
