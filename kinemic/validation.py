"""Every params section built into its config at once, so a bad value fails before any stage runs.

DVC deletes a stage's outputs right before running it; a bad `dvc exp run -S train.method=foo` used to fail inside
`train`, after its outputs were gone. Stage `validate` runs first (every stage descends from it) and calls this.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kinemic.corpus import PriorConfig
from kinemic.evaluation import EvaluateConfig, FeatureExtractorConfig
from kinemic.generation import GenerateConfig
from kinemic.mining import MiningConfig
from kinemic.params import config_from_params
from kinemic.runtime import RuntimeConfig
from kinemic.synthetic.config import SyntheticConfig
from kinemic.target_prep import TargetConfig
from kinemic.teacher import TeacherConfig
from kinemic.training import TrainConfig

BUILDERS: dict[str, Callable[[dict[str, Any]], object]] = {
    "runtime": lambda s: config_from_params(RuntimeConfig, s, "runtime"),
    "synthetic": SyntheticConfig.from_params,
    "prepare_prior": lambda s: config_from_params(PriorConfig, s, "prepare_prior"),
    "prepare_target": lambda s: config_from_params(TargetConfig, s, "prepare_target"),
    "mining": lambda s: config_from_params(MiningConfig, s, "mining"),
    "teacher": lambda s: config_from_params(TeacherConfig, s, "teacher"),
    "train": lambda s: config_from_params(TrainConfig, s, "train"),
    "generate": lambda s: config_from_params(GenerateConfig, s, "generate"),
    "evaluator": FeatureExtractorConfig.from_params,
    "evaluate": lambda s: config_from_params(EvaluateConfig, s, "evaluate"),
}


def validate_params(params: dict[str, Any], source: str = "params.yaml") -> dict[str, object]:
    """The config of every section, or a ValueError naming the file, the section and what is wrong with it."""
    unknown = sorted(set(params) - set(BUILDERS))
    missing = sorted(set(BUILDERS) - set(params))
    if unknown or missing:
        raise ValueError(f"{source}: unknown sections {unknown}, missing sections {missing}; the sections are "
                         f"{sorted(BUILDERS)}")
    configs = {}
    for section, build in BUILDERS.items():
        try:
            configs[section] = build(params[section] or {})
        except (TypeError, ValueError, KeyError) as err:
            raise ValueError(f"{source}, section '{section}': {err}. Fix the value (after a failed `dvc exp run -S`, "
                             f"`git checkout {source}` drops the change)") from err
    return configs
