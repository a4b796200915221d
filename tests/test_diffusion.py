"""Gaussian diffusion: parity with the official schedules and steps, respacing, sampling loop, guidance, masked loss."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

import kinemic.diffusion as diffusion_module
from kinemic.diffusion import (
    AncestralSampler,
    Autoguidance,
    GaussianDiffusion,
    classifier_free_guidance,
    cosine_beta_schedule,
    high_noise_timesteps,
    masked_acceleration_mse,
    masked_difference_mse,
    masked_mse,
    masked_velocity_mse,
    run_sampler,
    sampling_schedule,
    space_timesteps,
    trailing_timesteps,
)
from kinemic.models.mdm import MDM

SCHEDULE_ARRAYS = (
    "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
    "posterior_variance", "posterior_mean_coef1", "posterior_mean_coef2", "posterior_log_variance_clipped",
)


@pytest.fixture(scope="module")
def official(parity_dir):
    with np.load(parity_dir / "diffusion.npz") as data:
        return {key: data[key] for key in data.files}


def to_ours(array: np.ndarray) -> torch.Tensor:
    """Official (B, J, 1, T) -> kinemic (B, T, J); the diffusion maths is elementwise, so layout must not matter."""
    return torch.from_numpy(array)[:, :, 0].permute(0, 2, 1)  # (B, J, 1, T) -> (B, T, J)


# -- parity ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("steps", [1000, 100, 50])
def test_schedules_match_official(official, steps):
    np.testing.assert_allclose(cosine_beta_schedule(steps), official[f"s{steps}_betas_named_schedule"], rtol=1e-12)
    diffusion = GaussianDiffusion(steps)
    for name in SCHEDULE_ARRAYS:
        ours = getattr(diffusion, name)
        assert ours.dtype == np.float64, name
        np.testing.assert_allclose(ours, official[f"s{steps}_{name}"], rtol=1e-12, atol=0, err_msg=name)


@pytest.mark.parametrize("steps", [1000, 100])
def test_q_sample_and_p_sample_match_official(official, steps):
    ref = {key[len(f"s{steps}_"):]: value for key, value in official.items() if key.startswith(f"s{steps}_")}
    diffusion = GaussianDiffusion(steps)
    q = diffusion.q_sample(to_ours(ref["q_x0"]), torch.from_numpy(ref["q_t"]), to_ours(ref["q_noise"]))
    torch.testing.assert_close(q, to_ours(ref["q_sample"]), atol=1e-6, rtol=0)

    model_x0, x_t, t = to_ours(ref["p_model_x0_pred"]), to_ours(ref["p_x_t"]), torch.from_numpy(ref["p_t"])
    step = diffusion.p_mean_variance(model_x0, x_t, t)
    for ours, key in zip(step, ("p_mean", "p_variance", "p_log_variance", "p_pred_xstart"), strict=True):
        torch.testing.assert_close(ours, to_ours(ref[key]), atol=1e-6, rtol=0, msg=key)
    sample = diffusion.p_sample(model_x0, x_t, t, noise=to_ours(ref["p_noise"]))
    torch.testing.assert_close(sample, to_ours(ref["p_sample"]), atol=1e-6, rtol=0)
    assert torch.equal(sample[t == 0], step.mean[t == 0])  # no noise at the last step


def test_schedule_sanity_values():
    diffusion = GaussianDiffusion(1000)
    assert diffusion.betas[-1] == pytest.approx(0.999)
    assert diffusion.alphas_cumprod[0] == pytest.approx(0.99996, abs=1e-5)
    assert diffusion.alphas_cumprod[499] == pytest.approx(0.4938, abs=1e-4)
    linear = GaussianDiffusion(1000, schedule="linear")
    assert linear.betas[0] == pytest.approx(1e-4) and linear.betas[-1] == pytest.approx(0.02)


# -- respacing ------------------------------------------------------------------------------------------------------


def test_respacing_keeps_alphas_cumprod_of_the_kept_steps():
    base = GaussianDiffusion(1000)
    spaced = base.respaced(50)
    assert spaced.num_timesteps == 50 and len(spaced.betas) == 50
    assert spaced.timestep_map[0] == 0 and spaced.timestep_map[-1] == 999
    assert np.all(np.diff(spaced.timestep_map) > 0)
    # Re-derived betas then a cumprod again: float64 round-off only (relative 1e-10 where alpha_bar ~ 1e-7).
    np.testing.assert_allclose(spaced.alphas_cumprod, base.alphas_cumprod[spaced.timestep_map], rtol=1e-9)
    assert np.all((spaced.betas > 0) & (spaced.betas < 1))
    torch.testing.assert_close(
        spaced.model_timesteps(torch.tensor([0, 1, 49])), torch.from_numpy(spaced.timestep_map[[0, 1, 49]])
    )


def test_respacing_to_all_steps_is_the_identity_and_explicit_steps_work():
    base = GaussianDiffusion(100)
    same = GaussianDiffusion(100, timestep_respacing=100)
    np.testing.assert_array_equal(same.timestep_map, np.arange(100))
    np.testing.assert_array_equal(same.betas, base.betas)
    explicit = base.respaced([0, 10, 99])
    np.testing.assert_array_equal(explicit.timestep_map, [0, 10, 99])
    np.testing.assert_allclose(explicit.alphas_cumprod, base.alphas_cumprod[[0, 10, 99]], rtol=1e-9)


def test_space_timesteps_is_even_and_official():
    assert space_timesteps(1000, 1) == [0]
    assert space_timesteps(10, 4) == [0, 3, 6, 9]
    kept = space_timesteps(1000, 100)
    assert len(set(kept)) == 100 and kept[0] == 0 and kept[-1] == 999
    assert max(np.diff(kept)) - min(np.diff(kept)) <= 1


def test_trailing_timesteps_end_at_the_noisiest_step():
    assert trailing_timesteps(1000, 1) == [999]
    assert trailing_timesteps(1000, 4) == [249, 499, 749, 999]
    assert trailing_timesteps(10, 10) == list(range(10))
    for count in range(1, 101):
        kept = trailing_timesteps(100, count)
        assert len(set(kept)) == count and kept[-1] == 99 and kept[0] >= 0
    with pytest.raises(ValueError, match=r"count must be an integer in \[1, steps=10\], got 11"):
        trailing_timesteps(10, 11)


def test_high_noise_timesteps_crowd_at_the_noisy_end():
    assert high_noise_timesteps(100, 10) == [18, 35, 50, 63, 74, 83, 90, 95, 98, 99]
    assert high_noise_timesteps(1000, 1) == [999]
    gaps = np.diff(high_noise_timesteps(1000, 20))
    assert (np.diff(gaps) <= 0).all() and gaps[0] > 3 * gaps[-1]  # gaps shrink toward high noise
    for steps in (7, 100):
        for count in range(1, steps + 1):  # distinct, in range, noisiest kept, even where rounding collides
            kept = high_noise_timesteps(steps, count)
            assert len(kept) == count and kept[-1] == steps - 1 and kept[0] >= 0
            assert (np.diff(kept) > 0).all(), (steps, count, kept)
        assert high_noise_timesteps(steps, steps) == list(range(steps))
    with pytest.raises(ValueError, match=r"count must be an integer in \[1, steps=10\], got 11"):
        high_noise_timesteps(10, 11)


def test_a_one_step_schedule_samples():
    """Official respacing to 1 keeps step 0 and used to fail on the clipped log variance (no step 1 to clip to)."""
    one = GaussianDiffusion(1000, timestep_respacing=1)
    assert one.posterior_log_variance_clipped.tolist() == [-np.inf] and one.posterior_variance.tolist() == [0.0]
    target = torch.randn(2, 3)
    out = one.sample_loop(lambda x, t: target, (2, 3), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, target, atol=1e-6, rtol=0)


def test_sampling_schedule_counts_base_steps():
    base = GaussianDiffusion(1000)
    assert sampling_schedule(base, None) is base
    np.testing.assert_array_equal(sampling_schedule(base, 50).timestep_map, base.respaced(50).timestep_map)
    np.testing.assert_array_equal(sampling_schedule(base.respaced(10), 50).timestep_map, space_timesteps(1000, 50))
    np.testing.assert_array_equal(sampling_schedule(base, 1).timestep_map, [999])
    np.testing.assert_array_equal(sampling_schedule(base, 4, "trailing").timestep_map, [249, 499, 749, 999])
    np.testing.assert_array_equal(sampling_schedule(base, 4, "high_noise").timestep_map, high_noise_timesteps(1000, 4))
    with pytest.raises(ValueError, match=r"sampling steps must be an integer in \[1, 1000\].*got 0"):
        sampling_schedule(base, 0)
    with pytest.raises(ValueError, match=r"unknown timestep spacing 'leading'; valid spacings are"):
        sampling_schedule(base, 5, "leading")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(schedule="sigmoid"), r"unknown noise schedule 'sigmoid'; valid schedules are \('cosine', 'linear'\)"),
        (dict(steps=0), "diffusion steps must be an integer >= 1, got 0"),
        (dict(steps=10, timestep_respacing=11), r"timestep_respacing must be an integer in \[1, steps=10\], got 11"),
        (dict(steps=10, timestep_respacing=[0, 10]), r"distinct steps in \[0, 9\], got \[0, 10\]"),
        (dict(steps=10, timestep_respacing=[3, 3]), "distinct steps"),
    ],
)
def test_errors_name_the_bad_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GaussianDiffusion(**kwargs)


def test_shape_errors():
    diffusion = GaussianDiffusion(10)
    x = torch.zeros(2, 3, 4)
    with pytest.raises(ValueError, match="noise shape"):
        diffusion.q_sample(x, torch.zeros(2, dtype=torch.long), torch.zeros(2, 3, 5))
    with pytest.raises(ValueError, match=r"t must be a \(2,\) tensor"):
        diffusion.q_sample(x, torch.zeros(3, dtype=torch.long), x)


# -- sampling loop ----------------------------------------------------------------------------------------------------


def test_sample_loop_with_a_perfect_denoiser_returns_its_x0():
    target = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(0))
    out = GaussianDiffusion(50).sample_loop(lambda x, t: target, (2, 5, 3), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out, target, atol=1e-5, rtol=0)  # the last posterior step has coef1 = 1, coef2 = 0
    assert not out.is_inference()


def test_sample_loop_calls_the_model_with_original_steps_and_is_seeded():
    spaced = GaussianDiffusion(1000, timestep_respacing=10)
    seen, progress = [], []

    def model_fn(x_t, t):
        seen.append(t.tolist())
        return 0.5 * x_t

    first = spaced.sample_loop(model_fn, (3, 4, 2), generator=torch.Generator().manual_seed(5),
                               progress=lambda done, total: progress.append((done, total)))
    assert seen == [[step] * 3 for step in reversed(spaced.timestep_map.tolist())]
    assert progress == [(i, 10) for i in range(1, 11)]
    second = spaced.sample_loop(model_fn, (3, 4, 2), generator=torch.Generator().manual_seed(5))
    assert torch.equal(first, second)


def test_sample_loop_is_a_loop_of_p_sample():
    diffusion = GaussianDiffusion(4)
    start = torch.randn(2, 3, generator=torch.Generator().manual_seed(0))

    def model_fn(x, t):
        return torch.tanh(x)

    out = diffusion.sample_loop(model_fn, (2, 3), generator=torch.Generator().manual_seed(9), noise=start)
    gen = torch.Generator().manual_seed(9)
    x = start
    for step in reversed(range(4)):
        t = torch.full((2,), step)
        x = diffusion.p_sample(model_fn(x, t), x, t, noise=torch.randn(2, 3, generator=gen))
    torch.testing.assert_close(out, x, atol=0, rtol=0)


def test_sample_loop_is_run_sampler_with_the_ancestral_sampler():
    spaced = GaussianDiffusion(1000, timestep_respacing=7)

    def model_fn(x, t):
        return torch.tanh(x)

    sampler = AncestralSampler(spaced)
    np.testing.assert_array_equal(sampler.timesteps, spaced.timestep_map[::-1])
    out = run_sampler(sampler, model_fn, (2, 4, 3), generator=torch.Generator().manual_seed(2))
    assert torch.equal(out, spaced.sample_loop(model_fn, (2, 4, 3), generator=torch.Generator().manual_seed(2)))
    assert torch.equal(run_sampler(AncestralSampler(GaussianDiffusion(1000), 7), model_fn, (2, 4, 3),
                                   generator=torch.Generator().manual_seed(2)), out)
    with pytest.raises(ValueError, match=r"noise shape \(2, 4\) differs from the requested shape \(2, 4, 3\)"):
        run_sampler(sampler, model_fn, (2, 4, 3), noise=torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"t_index must be an integer in \[0, 6\].*got -1"):
        sampler.step(torch.zeros(2, 3), -1, torch.zeros(2, 3))


def test_sample_timesteps_is_uniform_and_seeded():
    diffusion = GaussianDiffusion(100)
    t = diffusion.sample_timesteps(5000, torch.Generator().manual_seed(0))
    assert t.dtype == torch.long and t.min() >= 0 and t.max() <= 99
    assert torch.equal(t, diffusion.sample_timesteps(5000, torch.Generator().manual_seed(0)))
    assert abs(t.float().mean().item() - 49.5) < 2


# -- guidance ---------------------------------------------------------------------------------------------------------


def small_mdm(**overrides) -> MDM:
    torch.manual_seed(0)
    fields = dict(latent_dim=32, ff_size=64, num_layers=2, num_heads=4, njoints=6, text_dim=8, dropout=0.0)
    return MDM(**{**fields, **overrides}).eval()


@pytest.mark.parametrize("fast_path", [False, True], ids=["regular", "inference_fast_path"])
def test_guidance_in_one_batch_equals_two_separate_passes(fast_path):
    model = small_mdm(num_actions=2, mask_frames=True)
    gen = torch.Generator().manual_seed(0)
    x, t = torch.randn(3, 7, 6, generator=gen), torch.tensor([3, 500, 999])
    text, action = torch.randn(3, 8, generator=gen), torch.tensor([0, 1, 1])
    mask = torch.arange(7)[None] < torch.tensor([[7], [5], [2]])
    guided = classifier_free_guidance(model, 2.5, text_emb=text, action=action, mask=mask)
    context = torch.inference_mode() if fast_path else torch.no_grad()
    with context:
        out = guided(x, t)
        cond = model(x, t, text_emb=text, action=action, mask=mask)
        uncond = model(x, t, text_emb=text, action=action, mask=mask, uncond=True)
    torch.testing.assert_close(out, uncond + 2.5 * (cond - uncond), atol=1e-5, rtol=0)


def test_guidance_scale_one_and_per_sample_scales():
    model = small_mdm()
    x, t, text = torch.randn(2, 5, 6), torch.tensor([10, 20]), torch.randn(2, 8)
    with torch.no_grad():
        cond = model(x, t, text_emb=text)
        uncond = model(x, t, text_emb=text, uncond=True)
        assert torch.equal(classifier_free_guidance(model, 1.0, text_emb=text)(x, t), cond)
        scales = torch.tensor([0.0, 3.0])
        out = classifier_free_guidance(model, scales, text_emb=text)(x, t)
    torch.testing.assert_close(out[0], uncond[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1], uncond[1] + 3.0 * (cond[1] - uncond[1]), atol=1e-5, rtol=0)


def test_autoguidance_adds_the_weighted_difference_to_a_weaker_model():
    """x0 = CFG + (w - 1) (cond - guide's cond), with CFG on or off; the strong model's cond is the CFG pass's own."""
    model, weak = small_mdm(), small_mdm(latent_dim=16, ff_size=32)
    gen = torch.Generator().manual_seed(1)
    x, t, text = torch.randn(2, 5, 6, generator=gen), torch.tensor([40, 80]), torch.randn(2, 8, generator=gen)
    auto = Autoguidance(weak, weight=3.0)
    with torch.no_grad():
        cond = model(x, t, text_emb=text)
        uncond = model(x, t, text_emb=text, uncond=True)
        weak_cond = weak(x, t, text_emb=text)
        guided = classifier_free_guidance(model, 2.5, text_emb=text, autoguidance=auto)(x, t)
        alone = classifier_free_guidance(model, 1.0, text_emb=text, autoguidance=auto)(x, t)
    assert not torch.allclose(cond, weak_cond, atol=1e-3)  # a guide that really differs
    torch.testing.assert_close(guided, uncond + 2.5 * (cond - uncond) + 2.0 * (cond - weak_cond), atol=1e-5, rtol=0)
    torch.testing.assert_close(alone, weak_cond + 3.0 * (cond - weak_cond), atol=1e-5, rtol=0)


def test_autoguidance_applies_only_from_its_step_and_weight_one_is_plain_guidance():
    model, weak = small_mdm(), small_mdm(latent_dim=16, ff_size=32)
    x, t, text = torch.randn(2, 5, 6), torch.tensor([10, 95]), torch.randn(2, 8)
    calls = []

    def counted_guide(*args, **kwargs):
        calls.append(args[1])
        return weak(*args, **kwargs)

    counted_guide.training = False
    with torch.no_grad():
        plain = classifier_free_guidance(model, 2.5, text_emb=text)(x, t)
        top = classifier_free_guidance(model, 2.5, text_emb=text,
                                       autoguidance=Autoguidance(counted_guide, 2.0, from_step=90))(x, t)
        assert torch.equal(top[0], plain[0]) and not torch.allclose(top[1], plain[1], atol=1e-4)
        low_t = torch.tensor([10, 20])
        below = classifier_free_guidance(model, 2.5, text_emb=text,
                                         autoguidance=Autoguidance(counted_guide, 2.0, from_step=90))(x, low_t)
        assert torch.equal(below, classifier_free_guidance(model, 2.5, text_emb=text)(x, low_t))
        off = classifier_free_guidance(model, 2.5, text_emb=text, autoguidance=Autoguidance(weak, 1.0))(x, t)
    assert len(calls) == 1  # the guide runs only at the steps it guides
    assert torch.equal(off, plain)
    with pytest.raises(ValueError, match="weight must be >= 1"):
        Autoguidance(weak, weight=0.5)
    with pytest.raises(ValueError, match="from_step must be >= 0"):
        Autoguidance(weak, from_step=-1)


def test_guidance_from_step_leaves_the_conditional_prediction_below_it():
    """CFG at t >= guidance_from_step only; below it the conditional pass alone, without the unconditional half."""
    model = small_mdm()
    x, text = torch.randn(3, 5, 6), torch.randn(3, 8)
    passes = []

    def counted(*args, **kwargs):
        passes.append(args[0].shape[0])
        return model(*args, **kwargs)

    counted.training = False
    with torch.no_grad():
        straddling = torch.tensor([10, 30, 95])
        out = classifier_free_guidance(counted, 2.5, text_emb=text, guidance_from_step=30)(x, straddling)
        cond = model(x, straddling, text_emb=text)
        uncond = model(x, straddling, text_emb=text, uncond=True)
        torch.testing.assert_close(out[0], cond[0], atol=1e-5, rtol=0)  # below: scale 1
        torch.testing.assert_close(out[1:], (uncond + 2.5 * (cond - uncond))[1:], atol=1e-5, rtol=0)
        low = torch.tensor([5, 5, 5])
        passes.clear()
        below = classifier_free_guidance(counted, 2.5, text_emb=text, guidance_from_step=30)(x, low)
        assert passes == [3]  # one conditional pass of batch B, not the doubled 2B
        torch.testing.assert_close(below, model(x, low, text_emb=text), atol=1e-5, rtol=0)
        everywhere = classifier_free_guidance(model, 2.5, text_emb=text, guidance_from_step=0)(x, straddling)
        assert torch.equal(everywhere, classifier_free_guidance(model, 2.5, text_emb=text)(x, straddling))
        per_sample = classifier_free_guidance(model, torch.tensor([4.0, 4.0, 0.0]), text_emb=text,
                                              guidance_from_step=30)(x, straddling)
        torch.testing.assert_close(per_sample[0], cond[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(per_sample[1], (uncond + 4.0 * (cond - uncond))[1], atol=1e-5, rtol=0)
        torch.testing.assert_close(per_sample[2], uncond[2], atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="guidance_from_step must be >= 0"):
        classifier_free_guidance(model, 2.5, text_emb=text, guidance_from_step=-1)


def test_guided_sampling_end_to_end():
    model = small_mdm()
    text = torch.randn(2, 8)
    diffusion = GaussianDiffusion(1000, timestep_respacing=5)
    out = diffusion.sample_loop(classifier_free_guidance(model, 2.5, text_emb=text), (2, 9, 6),
                                generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 9, 6) and torch.isfinite(out).all()


# -- loss -------------------------------------------------------------------------------------------------------------


def test_masked_mse_equals_direct_computation_and_ignores_padding():
    gen = torch.Generator().manual_seed(0)
    pred, target = torch.randn(3, 6, 4, generator=gen), torch.randn(3, 6, 4, generator=gen)
    lengths = [6, 3, 1]
    mask = torch.arange(6)[None] < torch.tensor(lengths)[:, None]
    expected = torch.stack([((pred[i, :n] - target[i, :n]) ** 2).sum() / (n * 4) for i, n in enumerate(lengths)])
    torch.testing.assert_close(masked_mse(pred, target, mask), expected)
    poisoned = pred.clone()
    poisoned[~mask] = float("nan")
    torch.testing.assert_close(masked_mse(poisoned, target, mask), expected)
    torch.testing.assert_close(masked_mse(pred, target), ((pred - target) ** 2).mean(dim=(1, 2)))
    assert masked_mse(pred, target, torch.zeros_like(mask)).eq(0).all()


def test_masked_velocity_mse_scores_frame_differences_over_valid_pairs():
    """An offset that is constant in time costs nothing; a frame-to-frame error costs its differences' square; a pair
    that reaches into padding (NaN there) is left out."""
    gen = torch.Generator().manual_seed(1)
    target = torch.randn(2, 5, 3, generator=gen)
    offset = torch.full((1, 1, 3), 2.0)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    assert masked_velocity_mse(target + offset, target, mask).abs().max() < 1e-6
    assert masked_mse(target + offset, target, mask).min() == pytest.approx(4.0)
    jitter = target.clone()
    jitter[:, 1] += 1.0  # one frame off by 1 in every channel: two differences of +-1
    expected = torch.tensor([2 / 4, 2 / 2])  # 4 valid pairs in the first motion, 2 in the second
    torch.testing.assert_close(masked_velocity_mse(jitter, target, mask), expected)
    jitter[1, 3:] = float("nan")
    torch.testing.assert_close(masked_velocity_mse(jitter, target, mask), expected)
    with pytest.raises(ValueError, match="pred and target"):
        masked_velocity_mse(target[0], target[0])


def test_masked_acceleration_mse_scores_second_differences_over_valid_triples():
    """A motion off by a constant velocity (a linear drift) costs nothing; one frame off by 1 costs second differences
    of +1, -2, +1 around it; a triple that reaches into padding (NaN there) is left out."""
    gen = torch.Generator().manual_seed(2)
    target = torch.randn(2, 6, 3, generator=gen)
    mask = torch.tensor([[True] * 6, [True, True, True, True, False, False]])
    drift = target + torch.arange(6.0).view(1, 6, 1)
    assert masked_acceleration_mse(drift, target, mask).abs().max() < 1e-5
    assert masked_velocity_mse(drift, target, mask).min() == pytest.approx(1.0)
    snap = target.clone()
    snap[:, 1] += 1.0  # frame 1 of each: triples (0,1,2) and (1,2,3) see it
    expected = torch.tensor([(1 + 4) / 4, (1 + 4) / 2])  # 4 valid triples in the first motion, 2 in the second
    torch.testing.assert_close(masked_acceleration_mse(snap, target, mask), expected)
    snap[1, 4:] = float("nan")
    torch.testing.assert_close(masked_acceleration_mse(snap, target, mask), expected)
    torch.testing.assert_close(masked_acceleration_mse(snap[:1], target[:1]), expected[:1])
    with pytest.raises(ValueError, match="order"):
        masked_difference_mse(snap, target, mask, order=0)


def test_masked_mse_shape_errors():
    with pytest.raises(ValueError, match="mask must be a"):
        masked_mse(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"must both be \(B, T, J\)"):
        masked_mse(torch.zeros(2, 3, 4), torch.zeros(2, 3, 5))


def test_diffusion_module_imports_no_model_or_dataset():
    tree = ast.parse(Path(diffusion_module.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not {name for name in imported if name.startswith("kinemic")}
