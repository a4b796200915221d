"""Samplers (ancestral, DDIM, DPM-Solver++ 2M) with a lambda for the network: closed-form cases, determinism,
equivalences between samplers, guidance passes, shapes, and errors."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import kinemic.samplers as samplers_module
from kinemic.diffusion import (
    SPACINGS,
    AncestralSampler,
    GaussianDiffusion,
    classifier_free_guidance,
    high_noise_timesteps,
    run_sampler,
    trailing_timesteps,
)
from kinemic.models.mdm import MDM
from kinemic.motion import FeatureStats
from kinemic.samplers import SAMPLERS, DDIMSampler, DPMSolverPP2M, make_sampler
from kinemic.sampling import SampleRequest, sample_motions

BASE = GaussianDiffusion(1000)

# (name, eta) of every sampler configuration the tests sweep
CONFIGS = [("ancestral", 0.0), ("ddim", 0.0), ("ddim", 0.5), ("ddim", 1.0), ("dpmpp_2m", 0.0)]
CONFIG_IDS = ["ancestral", "ddim", "ddim_eta0.5", "ddim_eta1", "dpmpp_2m"]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- closed-form cases ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "eta"), CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("steps", [1, 2, 7, 50, None])
@pytest.mark.parametrize("noise_scale", [1.0, 100.0])
def test_every_sampler_lands_on_a_point_mass(name, eta, steps, noise_scale):
    """Data = one point: the true x0 is that point whatever x_t, and every sampler must end exactly there."""
    target = torch.randn(3, 5, 4, generator=gen(0))
    sampler = make_sampler(name, GaussianDiffusion(100), steps, eta=eta)
    start = noise_scale * torch.randn(3, 5, 4, generator=gen(1))
    out = run_sampler(sampler, lambda x, t: target.expand_as(x), (3, 5, 4), generator=gen(2), noise=start)
    torch.testing.assert_close(out, target, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("name", "eta"), CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("spacing", SPACINGS)
def test_every_sampler_lands_on_a_point_mass_with_every_spacing(name, eta, spacing):
    target = torch.randn(3, 5, 4, generator=gen(0))
    for steps in (1, 7, 50):
        sampler = make_sampler(name, GaussianDiffusion(100), steps, eta=eta, spacing=spacing)
        out = run_sampler(sampler, lambda x, t: target.expand_as(x), (3, 5, 4), generator=gen(2))
        torch.testing.assert_close(out, target, atol=1e-5, rtol=0)


def gaussian_data_x0(mu: float, s: float, diffusion: GaussianDiffusion):
    """The exact E[x0 | x_t] for data x0 ~ N(mu, s^2): a closed-form "network" that knows the data perfectly."""
    alpha_bar = torch.from_numpy(diffusion.alphas_cumprod)  # indexed by base steps (diffusion is not respaced)

    def model_fn(x_t, t):
        a = alpha_bar[t].to(x_t.dtype).view(-1, *([1] * (x_t.dim() - 1)))  # (B, 1, ...)
        return mu + s * s * a.sqrt() / (a * s * s + 1 - a) * (x_t - a.sqrt() * mu)

    return model_fn


def test_deterministic_samplers_solve_the_probability_flow_of_gaussian_data():
    """For Gaussian data the probability-flow ODE maps x_T to mu + s (x_T - sqrt(ab_T) mu) / sqrt(ab_T s^2 + 1 - ab_T)
    (the monotone map between the two Gaussian marginals): DDIM (eta 0) converges to it at first order, DPM-Solver++(2M)
    faster, at second order."""
    mu, s = 0.7, 0.3
    model_fn = gaussian_data_x0(mu, s, BASE)
    x_T = torch.randn(2000, 1, generator=gen(0), dtype=torch.float64)
    ab_T = BASE.alphas_cumprod[-1]
    exact = mu + s * (x_T - math.sqrt(ab_T) * mu) / math.sqrt(ab_T * s * s + 1 - ab_T)

    def error(name, steps):
        out = run_sampler(make_sampler(name, BASE, steps), model_fn, x_T.shape, noise=x_T)
        return (out - exact).abs().max().item()

    counts = [10, 20, 50]
    ddim, dpm = [error("ddim", n) for n in counts], [error("dpmpp_2m", n) for n in counts]
    assert ddim[0] > ddim[1] > ddim[2] and dpm[0] > dpm[1] > dpm[2]
    assert all(d < e for d, e in zip(dpm, ddim, strict=True)), (dpm, ddim)
    assert 1.6 < ddim[1] / ddim[2] < 3.2  # first order: 2.5x the steps, ~2.5x smaller error
    assert dpm[2] < 1e-3 and ddim[2] < 0.08
    assert error("ddim", None) < 5e-3 and error("dpmpp_2m", None) < 5e-4  # every step of the schedule


@pytest.mark.parametrize(("name", "eta"), [("ancestral", 0.0), ("ddim", 1.0), ("ddim", 0.5)])
def test_stochastic_samplers_draw_the_gaussian_data_distribution(name, eta):
    """With the exact denoiser and every step, ancestral and stochastic DDIM samples have the data's mean and std."""
    mu, s = 0.7, 0.3
    out = run_sampler(make_sampler(name, BASE, eta=eta), gaussian_data_x0(mu, s, BASE), (20000, 1), generator=gen(1))
    assert out.mean().item() == pytest.approx(mu, abs=0.01)
    assert out.std().item() == pytest.approx(s, abs=0.01)


# -- equivalences -----------------------------------------------------------------------------------------------------


def nonlinear_model(x, t):
    return torch.tanh(x) * 0.8 + 1e-4 * t.to(x.dtype).view(-1, *([1] * (x.dim() - 1)))


@pytest.mark.parametrize("name", ["ddim", "dpmpp_2m"])
def test_deterministic_samplers_ignore_the_generator(name):
    start = torch.randn(2, 6, 3, generator=gen(0))
    sampler = make_sampler(name, BASE, 8)
    first_gen, second_gen = gen(1), gen(2)
    first = run_sampler(sampler, nonlinear_model, start.shape, generator=first_gen, noise=start)
    second = run_sampler(sampler, nonlinear_model, start.shape, generator=second_gen, noise=start)
    assert torch.equal(first, second)
    assert torch.equal(first_gen.get_state(), gen(1).get_state())  # no draws at all


@pytest.mark.parametrize("steps", [1, 2])
def test_dpmpp_equals_ddim_at_one_and_two_steps(steps):
    """The first step of 2M is first order (DDIM) and the last, to clean data, too: below 3 steps they coincide."""
    start = torch.randn(2, 6, 3, generator=gen(0))
    ddim = run_sampler(make_sampler("ddim", BASE, steps), nonlinear_model, start.shape, noise=start)
    dpm = run_sampler(make_sampler("dpmpp_2m", BASE, steps), nonlinear_model, start.shape, noise=start)
    torch.testing.assert_close(dpm, ddim, atol=1e-6, rtol=0)
    if steps == 1:  # one step is the model's x0 prediction from pure noise, at the noisiest step
        torch.testing.assert_close(dpm, nonlinear_model(start, torch.full((2,), 999)), atol=1e-6, rtol=0)
    three_ddim = run_sampler(make_sampler("ddim", BASE, 3), nonlinear_model, start.shape, noise=start)
    three_dpm = run_sampler(make_sampler("dpmpp_2m", BASE, 3), nonlinear_model, start.shape, noise=start)
    assert not torch.allclose(three_dpm, three_ddim, atol=1e-3)  # the second-order correction is there


@pytest.mark.parametrize("diffusion", [BASE, BASE.respaced(20)], ids=["all_1000", "respaced_20"])
def test_ddim_with_eta_one_is_the_ancestral_step(diffusion):
    """Song et al. 2021: eta = 1 gives the DDPM posterior (mean and FIXED_SMALL variance) of the visited steps.

    Every step equals `p_sample` for the same noise up to float32 round-off, and a whole run with the same generator
    (both draw one noise tensor per step) matches the ancestral run.
    """
    ddim, ancestral = DDIMSampler(diffusion, eta=1.0), AncestralSampler(diffusion)
    np.testing.assert_array_equal(ddim.timesteps, ancestral.timesteps)
    g = gen(0)
    for t_index in range(len(ddim.timesteps)):
        x0, x_t, z = (torch.randn(2, 4, 3, generator=g) for _ in range(3))
        torch.testing.assert_close(ddim.step(x0, t_index, x_t, noise=z), ancestral.step(x0, t_index, x_t, noise=z),
                                   atol=2e-5, rtol=1e-5)
    runs = [run_sampler(sampler, nonlinear_model, (2, 4, 3), generator=gen(3)) for sampler in (ddim, ancestral)]
    torch.testing.assert_close(runs[0], runs[1], atol=1e-4, rtol=0)


def test_ancestral_by_name_is_the_respaced_diffusion_loop_bit_for_bit():
    """`make_sampler('ancestral', base, K)` visits the official respacing: the generate stage's old path, unchanged."""
    for steps in (10, 50):
        by_name = run_sampler(make_sampler("ancestral", BASE, steps), nonlinear_model, (2, 5, 3), generator=gen(7))
        old_path = GaussianDiffusion(1000, timestep_respacing=steps).sample_loop(nonlinear_model, (2, 5, 3),
                                                                                 generator=gen(7))
        assert torch.equal(by_name, old_path)


def test_fast_samplers_visit_trailing_steps_and_the_ancestral_the_official_ones():
    assert make_sampler("ancestral", BASE, 4).timesteps.tolist() == [999, 666, 333, 0]
    for name in ("ddim", "dpmpp_2m"):
        assert make_sampler(name, BASE, 4).timesteps.tolist() == [999, 749, 499, 249]
        assert make_sampler(name, BASE, 1).timesteps.tolist() == [999]
        assert make_sampler(name, BASE.respaced(4)).timesteps.tolist() == [999, 666, 333, 0]  # steps=None: as given
    assert make_sampler("ancestral", BASE, 1).timesteps.tolist() == [999]
    # steps count steps of the model's base schedule, even on a respaced diffusion
    assert make_sampler("ddim", BASE.respaced(10), 20).timesteps.tolist() == trailing_timesteps(1000, 20)[::-1]


@pytest.mark.parametrize("name", SAMPLERS)
def test_spacing_picks_the_steps_of_any_sampler(name):
    """`spacing` overrides the sampler's own choice of steps; None keeps it."""
    assert make_sampler(name, BASE, 10, spacing="high_noise").timesteps.tolist() == high_noise_timesteps(1000, 10)[::-1]
    assert make_sampler(name, BASE, 4, spacing="official").timesteps.tolist() == [999, 666, 333, 0]
    assert make_sampler(name, BASE, 4, spacing="trailing").timesteps.tolist() == [999, 749, 499, 249]
    own = make_sampler(name, BASE, 4)
    assert own.spacing == ("official" if name == "ancestral" else "trailing")
    assert "spacing='high_noise'" in repr(make_sampler(name, BASE, 4, spacing="high_noise"))
    with pytest.raises(ValueError, match=r"unknown timestep spacing 'quad'; valid spacings are"):
        make_sampler(name, BASE, 4, spacing="quad")


def test_the_high_noise_spacing_keeps_the_ancestral_step_exact():
    """The ancestral sampler on high-noise steps is still the DDPM posterior of the visited steps: DDIM with eta 1."""
    ancestral = make_sampler("ancestral", BASE, 10, spacing="high_noise")
    ddim = make_sampler("ddim", BASE, 10, eta=1.0, spacing="high_noise")
    runs = [run_sampler(sampler, nonlinear_model, (2, 4, 3), generator=gen(3)) for sampler in (ddim, ancestral)]
    torch.testing.assert_close(runs[0], runs[1], atol=1e-4, rtol=0)


def test_set_timesteps_rebuilds_the_tables():
    sampler = DPMSolverPP2M(BASE, 5)
    sampler.set_timesteps(12)
    start = torch.randn(1, 3, 2, generator=gen(0))
    reused = run_sampler(sampler, nonlinear_model, start.shape, noise=start)
    fresh = run_sampler(DPMSolverPP2M(BASE, 12), nonlinear_model, start.shape, noise=start)
    assert len(sampler.timesteps) == 12 and torch.equal(reused, fresh)
    assert torch.equal(run_sampler(sampler, nonlinear_model, start.shape, noise=start), fresh)  # state resets per run


# -- guidance, shapes, masks ------------------------------------------------------------------------------------------


class CountingDenoiser:
    """A stand-in for MDM that records every forward pass."""

    training = False

    def __init__(self):
        self.calls = []

    def __call__(self, x_t, t, *, text_emb=None, action=None, uncond=False, mask=None):
        self.calls.append(dict(batch=x_t.shape[0], t=t.tolist(), uncond=torch.as_tensor(uncond).tolist(), mask=mask))
        return torch.tanh(x_t) + (0.5 * torch.as_tensor(uncond, dtype=x_t.dtype)).view(-1, 1, 1)


@pytest.mark.parametrize(("name", "eta"), CONFIGS, ids=CONFIG_IDS)
def test_guidance_is_one_batched_pass_per_step(name, eta):
    model = CountingDenoiser()
    mask = torch.arange(7)[None] < torch.tensor([[7], [3]])  # (2, 7)
    model_fn = classifier_free_guidance(model, 2.5, text_emb=torch.randn(2, 8), mask=mask)
    sampler = make_sampler(name, BASE, 6, eta=eta)
    out = run_sampler(sampler, model_fn, (2, 7, 5), generator=gen(0))
    assert out.shape == (2, 7, 5) and torch.isfinite(out).all()
    assert len(model.calls) == 6
    for call, step in zip(model.calls, sampler.timesteps.tolist(), strict=True):
        assert call["batch"] == 4 and call["t"] == [step] * 4  # cond and uncond halves in one pass
        assert call["uncond"] == [False, False, True, True]
        assert torch.equal(call["mask"], torch.cat([mask, mask]))


def small_mdm(mask_frames: bool) -> MDM:
    torch.manual_seed(0)
    return MDM(latent_dim=32, ff_size=64, num_layers=2, num_heads=4, njoints=263, text_dim=8, dropout=0.0,
               num_actions=3, mask_frames=mask_frames).eval()


STATS = FeatureStats(mean=np.linspace(-1, 1, 263).astype(np.float32), std=np.linspace(0.5, 2, 263).astype(np.float32))
REQUEST = SampleRequest(lengths=np.array([12, 7, 20]), text_emb=np.random.default_rng(0).normal(size=(3, 8)).astype(
    np.float32), action=np.array([0, 2, 1]))


@pytest.mark.parametrize("mask_frames", [False, True], ids=["padded", "masked"])
@pytest.mark.parametrize("name", SAMPLERS)
def test_sample_motions_with_each_sampler(name, mask_frames):
    model = small_mdm(mask_frames)
    kwargs = dict(guidance=2.5, batch_size=2, pad_to=24, seed=3, sampler=name, steps=4)
    first = sample_motions(model, BASE, STATS, REQUEST, **kwargs)
    assert [f.shape for f in first.features] == [(12, 263), (7, 263), (20, 263)]
    assert [j.shape for j in first.joints] == [(12, 22, 3), (7, 22, 3), (20, 22, 3)]
    assert all(np.isfinite(f).all() for f in first.features)
    again = sample_motions(model, BASE, STATS, REQUEST, **kwargs)
    assert all(np.array_equal(a, b) for a, b in zip(first.features, again.features, strict=True))
    assert not model.training


@pytest.mark.parametrize("name", SAMPLERS)
def test_sample_motions_passes_the_spacing_to_the_named_sampler(name):
    model = small_mdm(True)
    kwargs = dict(batch_size=2, pad_to=24, seed=3, sampler=name, steps=4)
    spaced = sample_motions(model, BASE, STATS, REQUEST, spacing="high_noise", **kwargs)
    kwargs.pop("sampler"), kwargs.pop("steps")
    by_object = sample_motions(model, BASE, STATS, REQUEST, sampler=make_sampler(name, BASE, 4, spacing="high_noise"),
                               **kwargs)
    own = sample_motions(model, BASE, STATS, REQUEST, sampler=make_sampler(name, BASE, 4), **kwargs)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(spaced.features, by_object.features, strict=True))
    assert any(a.tobytes() != b.tobytes() for a, b in zip(spaced.features, own.features, strict=True))


def test_sample_motions_default_is_the_ancestral_loop_of_the_given_diffusion():
    """Callers that pass a respaced diffusion and no sampler get what they got before samplers existed; naming the
    sampler and the steps on the base schedule gives the same bytes."""
    model = small_mdm(False)
    old_style = sample_motions(model, BASE.respaced(5), STATS, REQUEST, batch_size=2, pad_to=24, seed=3)
    new_style = sample_motions(model, BASE, STATS, REQUEST, batch_size=2, pad_to=24, seed=3, sampler="ancestral",
                               steps=5)
    by_object = sample_motions(model, BASE, STATS, REQUEST, batch_size=2, pad_to=24, seed=3,
                               sampler=AncestralSampler(BASE, 5))
    for a, b, c in zip(old_style.features, new_style.features, by_object.features, strict=True):
        assert a.tobytes() == b.tobytes() == c.tobytes()


# -- errors -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: make_sampler("euler", BASE), r"unknown sampler 'euler'; valid samplers are \('ancestral', 'ddim', "
                                              r"'dpmpp_2m'\)"),
        (lambda: make_sampler("ddim", BASE, 0), r"sampling steps must be an integer in \[1, 1000\].*got 0"),
        (lambda: make_sampler("dpmpp_2m", BASE, 1001), r"in \[1, 1000\].*got 1001"),
        (lambda: make_sampler("ancestral", BASE, 2.5), "got 2.5"),
        (lambda: make_sampler("ddim", BASE, True), "got True"),
        (lambda: DDIMSampler(BASE, eta=1.5), r"DDIM eta must be a number in \[0, 1\].*got 1.5"),
        (lambda: make_sampler("dpmpp_2m", BASE, eta=0.5), "eta applies only to the 'ddim' sampler"),
        (lambda: make_sampler("ddim", BASE, 5).step(torch.zeros(1, 2), 5, torch.zeros(1, 2)),
         r"t_index must be an integer in \[0, 4\].*got 5"),
        (lambda: make_sampler("ddim", BASE, 5).step(torch.zeros(1, 2), 0, torch.zeros(1, 3)), "x0_pred shape"),
        (lambda: make_sampler("dpmpp_2m", BASE, 5).step(torch.zeros(1, 2), 1, torch.zeros(1, 2)),
         "must run in order from t_index 0: got t_index 1 after None"),
    ],
    ids=["name", "zero_steps", "too_many_steps", "float_steps", "bool_steps", "eta",
         "eta_elsewhere", "t_index", "shape", "order"],
)
def test_errors_name_the_bad_value(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_dpmpp_rejects_a_skipped_step():
    sampler = make_sampler("dpmpp_2m", BASE, 5)
    x = torch.zeros(1, 2)
    sampler.step(x, 0, x)
    with pytest.raises(ValueError, match="got t_index 2 after 0"):
        sampler.step(x, 2, x)


def test_sample_motions_sampler_errors():
    model = small_mdm(False)
    with pytest.raises(ValueError, match="unknown sampler 'plms'"):
        sample_motions(model, BASE, STATS, REQUEST, pad_to=24, sampler="plms")
    with pytest.raises(ValueError, match="steps=4 / spacing=None given with a sampler object"):
        sample_motions(model, BASE, STATS, REQUEST, pad_to=24, sampler=DDIMSampler(BASE, 4), steps=4)
    with pytest.raises(ValueError, match="spacing='trailing' given with a sampler object"):
        sample_motions(model, BASE, STATS, REQUEST, pad_to=24, sampler=DDIMSampler(BASE, 4), spacing="trailing")
    with pytest.raises(ValueError, match="built on another schedule"):
        sample_motions(model, BASE, STATS, REQUEST, pad_to=24, sampler=DDIMSampler(GaussianDiffusion(100), 4))
    with pytest.raises(ValueError, match="sampler must be a sampler name or a ScheduleSampler"):
        sample_motions(model, BASE, STATS, REQUEST, pad_to=24, sampler=3)


def test_samplers_module_imports_no_model_or_dataset():
    tree = ast.parse(Path(samplers_module.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert {name for name in imported if name.startswith("kinemic")} == {"kinemic.diffusion"}
