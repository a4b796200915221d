"""Params values of the wrong type or out of range fail when the config is built, naming section.key and the value."""

from __future__ import annotations

import math

import pytest

from kinemic.classifier import ClassifierConfig
from kinemic.evaluation import EvaluateConfig
from kinemic.generation import GenerateConfig
from kinemic.mining import MiningConfig
from kinemic.params import config_from_params
from kinemic.teacher import TeacherConfig
from kinemic.training import TrainConfig


@pytest.mark.parametrize("cls, section, key, value, message", [
    (TeacherConfig, "teacher", "lr", "1e-4", r"teacher\.lr must be a number, got '1e-4' \(text: .*like 1e-4\)"),
    (TrainConfig, "train", "scratch_lr", "5e-4", r"train\.scratch_lr must be a number, got '5e-4'"),
    (ClassifierConfig, "evaluator", "lr", "0.1", r"evaluator\.lr must be a number, got '0\.1'"),
    (TeacherConfig, "teacher", "steps", 800.0, r"teacher\.steps must be a whole number, got 800\.0"),
    (GenerateConfig, "generate", "samples_per_class", "100", r"generate\.samples_per_class must be a whole number"),
    (MiningConfig, "mining", "k", True, r"mining\.k must be a whole number, got True"),
    (TrainConfig, "train", "use_dist", "false", r"train\.use_dist must be true or false, got 'false'"),
    (TeacherConfig, "teacher", "guidance", None, r"teacher\.guidance must be a number, got None"),
])
def test_a_value_of_the_wrong_type_names_the_key(cls, section, key, value, message):
    with pytest.raises(ValueError, match=message):
        config_from_params(cls, {key: value}, section)


@pytest.mark.parametrize("cls, section, key, value, message", [
    (TeacherConfig, "teacher", "lr", -1e-4, r"teacher\.lr must be > 0, got -0\.0001"),
    (TeacherConfig, "teacher", "diffusion_steps", 0, r"teacher\.diffusion_steps must be > 0, got 0"),
    (TeacherConfig, "teacher", "weight_decay", -0.1, r"teacher\.weight_decay must be >= 0"),
    (TeacherConfig, "teacher", "preview_steps", -1, r"teacher\.preview_steps must be >= 0"),
    (TrainConfig, "train", "lr", 0.0, r"train\.lr must be > 0, got 0\.0"),
    (TrainConfig, "train", "scratch_lr", -1.0, r"train\.scratch_lr must be > 0"),
    (TrainConfig, "train", "grad_clip", math.nan, r"train\.grad_clip must be >= 0, got nan"),
    (TrainConfig, "train", "lambda_window_distill", -0.5, r"train\.lambda_window_distill must be >= 0"),
    (TrainConfig, "train", "mic_hidden", -1, r"train\.mic_hidden must be >= 0"),
    (GenerateConfig, "generate", "previews_per_class", -1, r"generate\.previews_per_class must be >= 0"),
    (EvaluateConfig, "evaluate", "synthetic_per_class", -5, r"evaluate\.synthetic_per_class must be >= 0"),
    (EvaluateConfig, "evaluate", "seeds", [1, "2"], r"evaluate\.seeds must be whole numbers .*\['2'\]"),
    (ClassifierConfig, "evaluate.classifier", "lr", -0.1, r"ClassifierConfig\.lr must be > 0"),
])
def test_a_value_out_of_range_names_the_key(cls, section, key, value, message):
    with pytest.raises(ValueError, match=message):
        config_from_params(cls, {key: value}, section)


def test_nested_classifier_values_are_checked_too():
    with pytest.raises(ValueError, match=r"evaluate\.classifier\.epochs must be a whole number, got '20'"):
        config_from_params(EvaluateConfig, {"classifier": {"epochs": "20"}}, "evaluate")


def test_nested_lora_values_are_checked_too():
    """`train.lora` is built through the same checks as a section: text for a number or a misspelt key fails there."""
    with pytest.raises(ValueError, match=r"train\.lora\.alpha must be a number, got '4\.0'"):
        config_from_params(TrainConfig, {"lora": {"alpha": "4.0"}}, "train")
    with pytest.raises(ValueError, match=r"'train\.lora': unknown keys \['rnak'\]"):
        config_from_params(TrainConfig, {"lora": {"rnak": 2}}, "train")
    assert config_from_params(TrainConfig, {"lora": {"rank": 2}}, "train").lora.rank == 2


def test_teacher_model_values_are_checked_at_construction():
    with pytest.raises(ValueError, match=r"MDMConfig\.latent_dim must be an integer >= 1, got '32'"):
        config_from_params(TeacherConfig, {"model": {"latent_dim": "32"}}, "teacher")
    with pytest.raises(ValueError, match=r"unknown MDMConfig keys \['layers'\]"):
        config_from_params(TeacherConfig, {"model": {"layers": 2}}, "teacher")


def test_valid_values_pass_unchanged():
    """Checks only: an int where a float is expected is kept as it is (configs travel into checkpoints and hashes)."""
    config = config_from_params(TrainConfig, {"grad_clip": 1, "lr": 3e-4, "use_dww": False, "steps": 10}, "train")
    assert config.grad_clip == 1 and type(config.grad_clip) is int
    assert (config.lr, config.use_dww, config.steps) == (3e-4, False, 10)
    assert config_from_params(TeacherConfig, {"guidance": 0, "preview_steps": 0}, "teacher").guidance == 0
