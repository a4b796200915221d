"""kinemic's input protocol as mmaction2 pipeline transforms, registered in mmaction2's TRANSFORMS registry.

Why: stock mmaction2 configs do two things that silently give chance accuracy on kinemic's exports.
`PreNormalize3D` is written for NTU's 25-joint Kinect body: on any other joint count it centres on the last joint
(joint 21, the right wrist, on SMPL-22) and its default rotation axes (joints 0->1 and 8->4) become pelvis->left hip
and right ankle->left knee. `FormatGCNInput(num_person=2)` adds an empty second person. kinemic's data are already
rotated to face +Z; what the classifier protocol does on top (`kinemic.classifier`) is:

- `PelvisCentre`: shift each sample so its frame-0 pelvis is the origin (`ClassifierConfig.recenter`);
- `KinemicSampleFrames`: its clip sampling (`sample_train_indices` / `sample_test_indices`), which differs from
  `UniformSampleFrames` for sequences of 1-2 clip lengths and at test time (segment middles, not seeded draws).

Importing this module needs the `mm` extra and registers both classes; exported configs import it through mmengine's
`custom_imports`, so the core `kinemic` install never touches mmcv. Keypoints are (M, T, V, C), as in mmaction2.
"""

from __future__ import annotations

import numpy as np

from kinemic.classifier import sample_test_indices, sample_train_indices
from kinemic.mmaction import MM_EXTRA_HINT

try:
    from mmaction.registry import TRANSFORMS
    from mmcv.transforms import BaseTransform
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"kinemic.mmaction.transforms: {MM_EXTRA_HINT} ({err})") from err


@TRANSFORMS.register_module()
class PelvisCentre(BaseTransform):
    """Subtract each person's position of joint `joint` at frame `frame` from all their joints (a new array).

    Defaults are kinemic's `recenter`: the pelvis (SMPL joint 0) at frame 0, before clip sampling, so every clip of a
    sample shares one origin. Required key: `keypoint` (M, T, V, C); modified: `keypoint`.
    """

    def __init__(self, joint: int = 0, frame: int = 0) -> None:
        if joint < 0 or frame < 0:
            raise ValueError(f"PelvisCentre: joint and frame must be >= 0, got joint={joint}, frame={frame}")
        self.joint = joint
        self.frame = frame

    def transform(self, results: dict) -> dict:
        keypoint = np.asarray(results["keypoint"])
        if keypoint.ndim != 4 or keypoint.shape[1] <= self.frame or keypoint.shape[2] <= self.joint:
            raise ValueError(
                f"PelvisCentre: keypoint must be (M, T, V, C) with T > {self.frame} and V > {self.joint}, "
                f"got {keypoint.shape} ({results.get('frame_dir', 'unknown sample')})"
            )
        origin = keypoint[:, self.frame : self.frame + 1, self.joint : self.joint + 1]  # (M, 1, 1, C)
        results["keypoint"] = keypoint - origin
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(joint={self.joint}, frame={self.frame})"


@TRANSFORMS.register_module()
class KinemicSampleFrames(BaseTransform):
    """kinemic's clip sampling in place of `UniformSampleFrames`; sets `frame_inds` for `PoseDecode`.

    Training: one random frame per segment, or a random looping start when the sequence is shorter than a clip; the
    randomness comes from numpy's global generator, which mmengine seeds (`randomness=dict(seed=...)`) per worker.
    Test (`test_mode=True`): `num_clips` deterministic clips, concatenated as `FormatGCNInput` expects.
    Required key: `total_frames`; added: `frame_inds`, `clip_len`, `frame_interval`, `num_clips`.
    """

    def __init__(self, clip_len: int, num_clips: int = 1, test_mode: bool = False) -> None:
        if clip_len < 2 or num_clips < 1:
            raise ValueError(f"KinemicSampleFrames: need clip_len >= 2 and num_clips >= 1, got {clip_len}, {num_clips}")
        self.clip_len = clip_len
        self.num_clips = num_clips
        self.test_mode = test_mode

    def transform(self, results: dict) -> dict:
        num_frames = int(results["total_frames"])
        if self.test_mode:
            indices = sample_test_indices(num_frames, self.clip_len, self.num_clips).reshape(-1)
        else:
            rng = np.random.default_rng(np.random.randint(0, 2**31 - 1))
            clips = [sample_train_indices(num_frames, self.clip_len, rng) for _ in range(self.num_clips)]
            indices = np.concatenate(clips)
        results["frame_inds"] = indices.astype(np.int64) + int(results.get("start_index", 0))
        results["clip_len"] = self.clip_len
        results["frame_interval"] = None
        results["num_clips"] = self.num_clips
        return results

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(clip_len={self.clip_len}, num_clips={self.num_clips}, test_mode={self.test_mode})"
