"""The mmaction2 training backend: kinemic's protocol through mmengine's runner, same result objects as kinemic's."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
import torch

pytest.importorskip("mmaction", reason="the optional mmaction2 stack is absent: install it with `make setup-mm`")

from kinemic.classifier import ClassifierConfig, TrainedClassifier, evaluate, load_classifier, save_classifier  # noqa: E402
from kinemic.evaluation import EvaluateConfig, SeedResult  # noqa: E402
from kinemic.mmaction.backend import run_seed, train_classifier  # noqa: E402
from tests.test_classifier import TOY_CONFIG, toy_motions  # noqa: E402
from tests.test_evaluation import _synthetic, _target  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

# mmengine trains on CUDA whenever it is present (an explicit "cpu" is refused there), so these use "auto".
CONFIG = dataclasses.replace(TOY_CONFIG, device="auto")


@pytest.fixture(scope="module")
def toy_data():
    rng = np.random.default_rng(0)
    return toy_motions(12, rng), toy_motions(10, rng)


def test_backend_learns_the_toy_classes_and_leaves_global_rng_alone(toy_data, tmp_path):
    (train_joints, train_labels), (test_joints, test_labels) = toy_data
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    states = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    seen = []
    classifier = train_classifier(train_joints, train_labels, 3, CONFIG, seed=0, progress=seen.append)
    assert torch.equal(torch.get_rng_state(), states[0])
    assert np.array_equal(np.random.get_state()[1], states[1]) and random.getstate() == states[2]

    assert isinstance(classifier, TrainedClassifier) and not classifier.model.training
    assert [s.epoch for s in classifier.history] == list(range(1, CONFIG.epochs + 1)) and seen == list(
        classifier.history)
    assert classifier.history[-1].loss < 0.5 * classifier.history[0].loss
    assert classifier.history[-1].lr < 0.1 * CONFIG.lr  # cosine to 0, per iteration
    result = evaluate(classifier, test_joints, test_labels)
    assert result.top1 >= 0.9, result.top1  # kinemic's own backend reaches 1.0 here (tests/test_classifier.py)

    path = save_classifier(classifier, tmp_path / "classifier.pt")  # the kinemic checkpoint format, unchanged
    assert np.array_equal(evaluate(load_classifier(path, device="cpu"), test_joints, test_labels).predictions,
                          result.predictions)


def test_run_seed_gives_kinemics_seed_result():
    classifier = {"epochs": 1, "batch_size": 4, "clip_len": 4, "base_channels": 4, "device": "auto"}
    config = EvaluateConfig(train_data="fewshot+synthetic", classifier=classifier)
    outcome = run_seed(_target(), _synthetic(), config, seed=3)
    assert isinstance(outcome, SeedResult)
    assert outcome.seed == 3 and outcome.train_size == 10 and outcome.classifier.num_classes == 2
    assert outcome.result.confusion.sum() == 2 and len(outcome.classifier.history) == 1


def test_backend_errors_are_explained(toy_data):
    (joints, labels), _ = toy_data
    with pytest.raises(ValueError, match="fp32 only"):
        train_classifier(joints, labels, 3, ClassifierConfig(precision="bf16"))
    with pytest.raises(ValueError, match=r"in \[0, 2\)"):
        train_classifier(joints, labels, 2, CONFIG)
    with pytest.raises(ValueError, match="empty"):
        train_classifier([], [], 3, CONFIG)
