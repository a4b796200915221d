"""The embedded world: a generated stand-in for HumanML3D (prior) and VIBE-estimated NTU RGB+D 120 (target).

Modules, bottom-up: `body` (SMPL-24 rest pose, subjects, forward kinematics), `curves` (envelopes and a degree-based
track builder), `primitives` (the action vocabulary), `captions` (templates and tokens), `prior` (the HumanML3D-layout
corpus), `styles` (how target performers execute the classes), `target` (performers, cameras, VIBE artifacts),
`config` (params), `world` (everything, as the `synthesize` stage runs it).
"""

from kinemic.synthetic.config import PreviewsConfig, SyntheticConfig, SyntheticPriorConfig, SyntheticTargetConfig
from kinemic.synthetic.world import WorldSummary, build_world

__all__ = [
    "PreviewsConfig",
    "SyntheticConfig",
    "SyntheticPriorConfig",
    "SyntheticTargetConfig",
    "WorldSummary",
    "build_world",
]
