"""Batches shared by teacher pretraining and student training: crops, padding, captioned sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kinemic.batching import CaptionedMotionSampler, collate, crop_length
from kinemic.motion import FeatureStats
from tests.test_teacher import _config, _tiny_prior


def test_crop_length_rules():
    rng = np.random.default_rng(0)
    crops = [crop_length(43, 4, 196, rng) for _ in range(200)]
    assert set(crops) == {40, 36}  # a multiple of 4, one unit shorter a third of the time
    assert 0.2 < crops.count(36) / 200 < 0.45
    assert crop_length(150, 4, 64, rng) == 64
    with pytest.raises(ValueError, match="shorter than the crop unit"):
        crop_length(3, 4, 64, rng)


def test_collate_normalises_and_pads_with_a_mask():
    stats = FeatureStats(mean=np.ones(263, np.float32), std=np.full(263, 2.0, np.float32))
    motions = [np.full((3, 263), 5.0, np.float32), np.full((5, 263), 3.0, np.float32)]
    batch = collate(motions, stats, torch.device("cpu"))
    assert batch.x0.shape == (2, 5, 263)
    assert batch.lengths.tolist() == [3, 5]
    assert batch.mask.tolist() == [[True] * 3 + [False] * 2, [True] * 5]
    assert torch.all(batch.x0[0, :3] == 2.0) and torch.all(batch.x0[0, 3:] == 0.0)  # padded in normalised space
    assert torch.all(batch.x0[1] == 1.0)


def test_captioned_sampler_draws_crops_and_captions_of_the_same_motion():
    prior = _tiny_prior()
    config = _config(batch_size=8, max_frames=16)
    sampler = CaptionedMotionSampler(prior, np.arange(len(prior.captions)), config)
    motions, captions = sampler.sample(np.random.default_rng(0))
    again, captions_again = sampler.sample(np.random.default_rng(0))
    assert len(motions) == len(captions) == 8
    assert all(len(m) % 4 == 0 and len(m) <= 16 for m in motions)
    np.testing.assert_array_equal(captions, captions_again)
    for a, b in zip(motions, again, strict=True):
        np.testing.assert_array_equal(a, b)
