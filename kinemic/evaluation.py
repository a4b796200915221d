"""Stage logic of `evaluator`, `evaluate` and the generative metrics of `report`.

The downstream protocol (paper sec. 5.2): an ST-GCN trained per seed on the chosen training data, top-1 on the real test
set. `evaluate.train_data` selects the row of Table 1 the run produces, with the same code for all of them:
- `fewshot+synthetic`: the real few-shot clips plus the generated set (the paper's setting);
- `fewshot`: the real few-shot clips only ("real data only");
- `synthetic`: the generated set only;
- `all_real`: every real clip on the training side of the split ("ground truth, all real data").

Generative metrics (Action2Motion / ACTOR definitions, reference/humanml3d_vibe_ntu.md sec. 7) are computed on the
features of ONE fixed evaluator classifier per dataset, trained once on all real training data (stage `evaluator`,
cached by DVC), so numbers compare across experiments.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from kinemic import metrics
from kinemic.classifier import (
    ClassifierConfig,
    EpochStats,
    EvalResult,
    TrainedClassifier,
    evaluate,
    extract_features,
    predict_proba,
    train_classifier,
)
from kinemic.params import check_range, config_from_params
from kinemic.skeleton import FPS
from kinemic.stage_files import read_stage_file
from kinemic.synthetic_set import SyntheticSet
from kinemic.target_set import PreparedTarget

log = logging.getLogger(__name__)

TRAIN_DATA = ("fewshot+synthetic", "fewshot", "synthetic", "all_real")
BACKENDS = ("kinemic", "mmaction2")  # who trains the ST-GCN: this project, or mmaction2 through mmengine (extra "mm")
# The reference rows of every comparison (stages `baseline_<name>`): name in metrics -> evaluate.train_data.
BASELINES = {"real_only": "fewshot", "all_real": "all_real"}


@dataclass(frozen=True)
class EvaluateConfig:
    """Params section `evaluate` (the seed list drives the DVC matrix)."""

    train_data: str = "fewshot+synthetic"
    seeds: tuple[int, ...] = (1, 2, 3, 4, 5)
    synthetic_per_class: int = 0  # 0: use every generated sample
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)  # params give a mapping of its fields
    backend: str = "kinemic"

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"evaluate.backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.train_data not in TRAIN_DATA:
            raise ValueError(f"evaluate.train_data must be one of {TRAIN_DATA}, got {self.train_data!r}")
        if not self.seeds:
            raise ValueError("evaluate.seeds must list at least one seed")
        bad = [s for s in self.seeds if isinstance(s, bool) or not isinstance(s, numbers.Integral)]
        if bad:
            raise ValueError(f"evaluate.seeds must be whole numbers (one classifier per seed), got {bad}")
        check_range("evaluate", self, non_negative=("synthetic_per_class",))
        if not isinstance(self.classifier, ClassifierConfig):  # built once; unknown keys fail here, naming the key
            object.__setattr__(self, "classifier",
                               config_from_params(ClassifierConfig, self.classifier, "evaluate.classifier"))


@dataclass(frozen=True)
class FeatureExtractorConfig:
    """Params section `evaluator`: the fixed ST-GCN whose features the generative metrics read. It is not the judged
    classifier of `evaluate.classifier`; both train with the same protocol class, `ClassifierConfig`. The section is
    flat (a seed beside the protocol's fields), so it is split here, once, for the stage and for `validate`."""

    seed: int = 0
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)

    @classmethod
    def from_params(cls, section: dict | None) -> FeatureExtractorConfig:
        values = dict(section or {})
        seed = values.pop("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"evaluator.seed must be an integer, got {seed!r}")
        return cls(seed, config_from_params(ClassifierConfig, values, "evaluator"))


def training_set(
    target: PreparedTarget, synthetic: SyntheticSet | None, config: EvaluateConfig
) -> tuple[list[np.ndarray], np.ndarray]:
    """Joints and labels of the classifier's training set for `config.train_data`."""
    if config.train_data == "all_real":
        real = target.select(["fewshot", "unused"])
        return real.all_joints(), real.labels
    joints: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    if config.train_data in ("fewshot", "fewshot+synthetic"):
        fewshot = target.split("fewshot")
        joints += fewshot.all_joints()
        labels.append(fewshot.labels)
    if config.train_data in ("synthetic", "fewshot+synthetic"):
        if synthetic is None:
            raise ValueError(f"evaluate.train_data={config.train_data!r} needs the generated set")
        if synthetic.class_names != target.class_names:
            raise ValueError(f"generated classes {synthetic.class_names} differ from the target's {target.class_names}")
        keep = _per_class_subset(synthetic.labels, config.synthetic_per_class)
        joints += [synthetic.joints[i] for i in keep]
        labels.append(synthetic.labels[keep])
    return joints, np.concatenate(labels)


def _per_class_subset(labels: np.ndarray, per_class: int) -> np.ndarray:
    if per_class <= 0:
        return np.arange(len(labels))
    return np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in np.unique(labels)])


@dataclass
class SeedResult:
    seed: int
    classifier: TrainedClassifier
    result: EvalResult
    train_size: int


def run_seed(
    target: PreparedTarget,
    synthetic: SyntheticSet | None,
    config: EvaluateConfig,
    seed: int,
    progress: Callable[[EpochStats], None] | None = None,
    train: Callable[..., TrainedClassifier] = train_classifier,
) -> SeedResult:
    """Train the ST-GCN with `seed` on the configured data and evaluate it on the real test set.

    `train` has `kinemic.classifier.train_classifier`'s contract; the mmaction2 backend passes its own."""
    test = target.split("test")
    if len(test) == 0:
        raise ValueError("the target set has no test samples: nothing to evaluate (check prepare_target's split)")
    joints, labels = training_set(target, synthetic, config)
    num_classes = len(target.class_names)
    classifier = train(joints, labels, num_classes, config.classifier, seed, progress)
    return SeedResult(seed, classifier, evaluate(classifier, test.all_joints(), test.labels), len(joints))


def read_confusion(path) -> np.ndarray:
    """The test-set confusion matrix one `evaluate` run saved (`predictions.npz`); a cut-short file names the stage."""

    def read(p):
        with np.load(p) as data:
            return data["confusion"]

    return read_stage_file(path, "evaluate", read)


def train_evaluator(target: PreparedTarget, config: ClassifierConfig, seed: int,
                    progress: Callable[[EpochStats], None] | None = None) -> tuple[TrainedClassifier, EvalResult]:
    """The fixed feature extractor for generative metrics: trained on all real training clips, checked on test."""
    real = target.select(["fewshot", "unused"])
    classifier = train_classifier(real.all_joints(), real.labels, len(target.class_names), config, seed, progress)
    test = target.split("test")
    return classifier, evaluate(classifier, test.all_joints(), test.labels)


def generative_metrics(
    evaluator: TrainedClassifier, target: PreparedTarget, synthetic: SyntheticSet, seed: int
) -> dict[str, float]:
    """FID (synthetic vs real training clips), diversity, multimodality, the evaluator's accuracy on synthetic
    samples, and motion dynamics (speed, acceleration); the same diversity / multimodality on the real test set and
    the dynamics of the real training clips as the reference scale."""
    real = target.select(["fewshot", "unused"])
    test = target.split("test")
    real_feats = extract_features(evaluator, real.all_joints())
    fake_feats = extract_features(evaluator, synthetic.joints)
    test_feats = extract_features(evaluator, test.all_joints())
    rng = np.random.default_rng(seed)
    predictions = predict_proba(evaluator, synthetic.joints).argmax(axis=1)
    dynamics = metrics.motion_dynamics(synthetic.joints, FPS)
    real_dynamics = metrics.motion_dynamics(real.all_joints(), FPS)
    return {
        "fid": metrics.fid(real_feats, fake_feats),
        "diversity": metrics.diversity(fake_feats, rng=rng),
        "multimodality": metrics.multimodality(fake_feats, synthetic.labels, rng=rng),
        "recognition_accuracy": metrics.top1_accuracy(predictions, synthetic.labels),
        "real.diversity": metrics.diversity(test_feats, rng=rng),
        "real.multimodality": metrics.multimodality(test_feats, test.labels, rng=rng),
        **dynamics,
        **{f"real.{k}": v for k, v in real_dynamics.items()},
    }
