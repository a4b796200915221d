"""The teacher report card on hand-built cases: a perfect recogniser on real motions, static samples, flat metrics,
the no-labels skip, the plot, and one tiny end-to-end card of an untrained teacher."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from kinemic.corpus import PreparedPrior
from kinemic.models.mdm import MDM
from kinemic.motion import FeatureStats
from kinemic.recogniser import LabelledSegments, RecogniserConfig, UnlabelledPrior, train_recogniser
from kinemic.teacher import TeacherCheckpoint, TeacherConfig, build_mdm_config
from kinemic.teacher_card import (
    CardConfig,
    CardInputs,
    balanced_reference,
    card_request,
    dynamics_spread,
    prepare_card,
    primitive_prompts,
    score_samples,
    teacher_card,
    write_card_plot,
)
from tests.script_modules import load_module

CLASSES = ("stand_idle", "jump", "side_kick")
STATS = FeatureStats(mean=np.zeros(263, np.float32), std=np.ones(263, np.float32))
FAST = RecogniserConfig(hidden=32, embedding=6, epochs=40, batch_size=16, lr=3e-3, dropout=0.0)


def make_segments(per_class: int, seed: int = 0) -> LabelledSegments:
    """Class k oscillates its own block of joint-position channels at its own rate, so each class moves differently."""
    rng = np.random.default_rng(seed)
    features, labels, groups = [], [], []
    for k in range(len(CLASSES)):
        for i in range(per_class):
            length = int(rng.integers(20, 40))
            t = np.arange(length)[:, None]
            x = 0.02 * rng.standard_normal((length, 263))
            x[:, 3] = 1.0  # root height
            x[:, 4 + 10 * k : 14 + 10 * k] += 0.3 * (k + 1) * np.sin(0.3 * (k + 1) * t + rng.uniform(0, 6))
            features.append(x.astype(np.float32))
            labels.append(k)
            groups.append(f"{k}-{i}")
    return LabelledSegments(tuple(features), np.array(labels), np.array(groups), CLASSES)


@pytest.fixture(scope="module")
def trained(one_thread):
    train, held = make_segments(16).split_by_motion(0.3, seed=0)
    recogniser = train_recogniser(train, held, STATS, FAST)
    assert recogniser.heldout_accuracy == 1.0  # the premise of the tests below
    return recogniser, held


def test_real_motions_as_samples_score_perfectly(trained):
    recogniser, held = trained
    card = score_samples(recogniser, held.features, held.labels, held)
    assert card.recognition == 1.0 and card.top3 == 1.0
    assert card.fid == pytest.approx(0.0, abs=1e-6)
    assert card.diversity == pytest.approx(card.diversity_real)
    assert [p.primitive for p in card.primitives] == list(CLASSES)
    for p in card.primitives:
        assert p.speed_ratio == pytest.approx(1.0) and p.acceleration_ratio == pytest.approx(1.0)
    assert card.primitives_within == 3 and card.recogniser_heldout == 1.0
    assert all(p.within_share > 0.9 for p in card.primitives) and card.within_interval[1] == 3
    assert card.frozen_share == 0.0


def test_other_real_motions_are_close_and_static_samples_are_caught(trained):
    recogniser, held = trained
    fresh = make_segments(6, seed=5)
    card = score_samples(recogniser, fresh.features, fresh.labels, held)
    assert card.recognition == 1.0
    assert card.primitives_within == 3  # other real motions of the same kind move alike

    static = [np.repeat(f[:1], len(f), axis=0) for f in fresh.features]  # the first pose held, without turning
    for motion in static:
        motion[:, :3] = 0.0  # root angular and linear velocity
    card = score_samples(recogniser, static, fresh.labels, held)
    assert card.primitives_within == 0 and card.within_interval == (0.0, 0.0)
    assert all(p.speed_ratio < 0.01 and p.within_share == 0.0 and p.frozen_share == 1.0 for p in card.primitives)
    half = [s if i % 2 else f for i, (s, f) in enumerate(zip(static, fresh.features, strict=True))]
    assert score_samples(recogniser, half, fresh.labels, held).frozen_share == 0.5
    assert card.fid > 1.0


def test_metrics_are_flat_and_named_per_primitive(trained):
    recogniser, held = trained
    metrics = score_samples(recogniser, held.features, held.labels, held).to_metrics()
    assert json.loads(json.dumps(metrics)) == metrics  # plain numbers only
    for key in ("card.recognition", "card.top3", "card.recogniser_heldout", "card.primitives_within_30pct",
                "card.fid", "card.diversity", "card.speed_ratio.side_kick", "card.acceleration_ratio.jump",
                "card.recognised.stand_idle"):
        assert key in metrics, key
    assert metrics["card.primitives_within_30pct"] == 3
    assert metrics["card.primitives_within_30pct_ci_low"] <= 3 == metrics["card.primitives_within_30pct_ci_high"]
    assert 0.9 < metrics["card.within_share.jump"] <= 1.0


def test_dynamics_spread_says_which_verdicts_are_a_coin_toss():
    """Per primitive, the share of resamples within +-30 %: 1 far inside, 0 far outside, about half on the edge."""
    real = np.column_stack([np.full(30, 1.0), np.full(30, 10.0)])  # speed 1 m/s, acceleration 10 m/s2, no spread
    inside = real[:10] * np.array([1.1, 0.9])
    outside = real[:10] * np.array([0.4, 1.0])  # static-ish: the speed ratio 0.4
    edge = np.column_stack([np.tile([1.0, 1.6], 5), np.full(10, 10.0)])  # mean speed 1.3: on the edge
    cases = [(inside, real), (outside, real), (edge, real)]
    spread = dynamics_spread(cases, tolerance=0.3, seed=0)
    assert spread.within_shares[:2] == (1.0, 0.0)
    assert 0.3 < spread.within_shares[2] < 0.8
    assert spread.count_range == (1.0, 2.0)  # the edge primitive is in some resamples, out of others
    assert spread.speed_ratio_ranges[0] == pytest.approx((1.1, 1.1))  # no spread in, none out
    assert spread.speed_ratio_ranges[1] == pytest.approx((0.4, 0.4))
    low, high = spread.speed_ratio_ranges[2]
    assert 1.0 <= low < 1.3 < high <= 1.6 and spread.acceleration_ratio_ranges[2] == pytest.approx((1.0, 1.0))
    assert dynamics_spread(cases, tolerance=0.3, seed=0) == spread  # seeded
    assert dynamics_spread(cases, 0.3, seed=1).within_shares[2] != spread.within_shares[2]


def test_score_samples_needs_a_reference_for_every_prompted_class(trained):
    recogniser, held = trained
    only_idle = held.select(held.labels == 0)
    with pytest.raises(ValueError, match="no real reference segment"):
        score_samples(recogniser, held.features, held.labels, only_idle)


def test_balanced_reference_caps_each_class():
    segments = make_segments(5)
    balanced = balanced_reference(segments, 2, seed=0)
    assert np.bincount(balanced.labels).tolist() == [2, 2, 2]
    assert balanced_reference(segments, 2, seed=0).groups.tolist() == balanced.groups.tolist()


def test_prompts_come_from_the_caption_templates():
    rng = np.random.default_rng(0)
    prompts = primitive_prompts("side_kick", 6, rng)
    assert len(prompts) == 6
    assert all("kick" in p.lower() for p in prompts)
    assert primitive_prompts("side_kick", 6, np.random.default_rng(0)) == prompts


def test_unlabelled_prior_skips_with_a_reason(tmp_path):
    prior = PreparedPrior(np.zeros((10, 263), np.float32),
                          pd.DataFrame(columns=["motion_id", "source_id", "split", "offset", "length", "start_frame"]),
                          pd.DataFrame(columns=["motion_id", "caption", "tokens", "start", "end"]), STATS)
    with pytest.raises(UnlabelledPrior, match="real HumanML3D"):
        prepare_card(prior, tmp_path / "primitives.parquet")


def test_plot_writes_one_row_per_primitive(trained, tmp_path):
    recogniser, held = trained
    card = score_samples(recogniser, held.features, held.labels, held)
    write_card_plot(card, tmp_path / "card.tsv", tmp_path / "card.png")
    lines = (tmp_path / "card.tsv").read_text().splitlines()
    assert lines[0].split("\t")[:3] == ["primitive", "recognition", "top3"]
    assert [line.split("\t")[0] for line in lines[1:]] == list(CLASSES)
    assert (tmp_path / "card.png").stat().st_size > 1000
    header = lines[0].split("\t")
    for line in lines[1:]:
        row = dict(zip(header[1:], map(float, line.split("\t")[1:]), strict=True))
        assert row["speed_ratio_low"] <= row["speed_ratio"] <= row["speed_ratio_high"]
        assert row["acceleration_ratio_low"] <= row["acceleration_ratio"] <= row["acceleration_ratio_high"]
        assert 0.0 <= row["within_share"] <= 1.0 and row["frozen_share"] == 0.0


def _fake_embed(texts: list[str]) -> np.ndarray:
    out = np.zeros((len(texts), 16), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in text.split():
            out[i, sum(map(ord, word)) % 16] += 1.0
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-6)


def test_card_of_an_untrained_teacher(trained):
    recogniser, held = trained
    config = TeacherConfig(model={"latent_dim": 16, "ff_size": 32, "num_layers": 1, "num_heads": 2,
                                  "mask_frames": True}, diffusion_steps=10, max_frames=24)
    model = MDM.from_config(build_mdm_config(config, 16)).eval()
    teacher = TeacherCheckpoint(model, STATS, 10, "cosine", {"encoder": "fake"}, max_frames=24, source="pretrain")
    card_config = CardConfig(samples_per_primitive=3, sampling_steps=2, real_per_primitive=4, seed=1)
    inputs = CardInputs(recogniser, held)
    card = teacher_card(teacher, _fake_embed, inputs, card_config)
    assert [p.samples for p in card.primitives] == [3, 3, 3]
    assert 0.0 <= card.recognition <= card.top3 <= 1.0
    assert np.isfinite(card.fid) and card.seconds > 0
    again = teacher_card(teacher, _fake_embed, inputs, card_config)
    assert again.to_metrics() == card.to_metrics()
    default, fixed = (card_request(inputs, c, 24) for c in (card_config, replace(card_config, length=12)))
    assert set(default.lengths.tolist()) <= set(range(20, 25)) and (fixed.lengths == 12).all()  # real: 20-40, cut
    assert fixed.prompts == default.prompts and (fixed.labels == default.labels).all()  # a paired comparison
    short = teacher_card(teacher, _fake_embed, inputs, replace(card_config, length=12))
    assert short.to_metrics() != card.to_metrics()
    with pytest.raises(ValueError, match="card.length 25 is longer than the teacher's 24 frames"):
        teacher_card(teacher, _fake_embed, inputs, replace(card_config, length=25))
    with pytest.raises(ValueError, match="card.length must be 0"):
        CardConfig(length=2)


@pytest.mark.parametrize("sampler", ["ddim", "dpmpp_2m"])
def test_card_with_a_fast_sampler_is_seeded_and_differs_from_ancestral(trained, sampler):
    """card.sampler scores the same teacher with another sampler: reproducible, and really another sampler."""
    recogniser, held = trained
    config = TeacherConfig(model={"latent_dim": 16, "ff_size": 32, "num_layers": 1, "num_heads": 2,
                                  "mask_frames": True}, diffusion_steps=10, max_frames=24)
    torch.manual_seed(0)
    model = MDM.from_config(build_mdm_config(config, 16)).eval()
    teacher = TeacherCheckpoint(model, STATS, 10, "cosine", {"encoder": "fake"}, max_frames=24, source="pretrain")
    inputs = CardInputs(recogniser, held)
    base = dict(samples_per_primitive=3, sampling_steps=3, real_per_primitive=4, seed=1)
    fast = teacher_card(teacher, _fake_embed, inputs, CardConfig(**base, sampler=sampler))
    again = teacher_card(teacher, _fake_embed, inputs, CardConfig(**base, sampler=sampler))
    assert fast.to_metrics() == again.to_metrics()
    assert fast.to_metrics() != teacher_card(teacher, _fake_embed, inputs, CardConfig(**base)).to_metrics()
    with pytest.raises(ValueError, match="card.sampler"):
        CardConfig(sampler="euler")
    spaced = teacher_card(teacher, _fake_embed, inputs, CardConfig(**base, sampler=sampler, spacing="high_noise"))
    assert spaced.to_metrics() != fast.to_metrics()  # 3 of 10 steps: [5, 8, 9] against trailing [2, 6, 9]
    official = teacher_card(teacher, _fake_embed, inputs, CardConfig(**base, spacing="official"))
    assert official.to_metrics() == teacher_card(teacher, _fake_embed, inputs, CardConfig(**base)).to_metrics()
    with pytest.raises(ValueError, match="card.spacing must be 'default' or one of"):
        CardConfig(spacing="quad")


def _tiny_teacher(seed: int = 0) -> TeacherCheckpoint:
    """An untrained 1-layer teacher of 10 diffusion steps and 24 frames, its weights drawn from `seed`."""
    config = TeacherConfig(model={"latent_dim": 16, "ff_size": 32, "num_layers": 1, "num_heads": 2,
                                  "mask_frames": True}, diffusion_steps=10, max_frames=24)
    torch.manual_seed(seed)
    return TeacherCheckpoint(MDM.from_config(build_mdm_config(config, 16)).eval(), STATS, 10, "cosine",
                             {"encoder": "fake"}, max_frames=24, source="pretrain")


def test_autoguided_card_is_seeded_and_refuses_a_guide_of_another_space(trained):
    """card.guide_weight scores the teacher autoguided by a weaker one: reproducible, really guided, and a guide that
    denoises another space (text encoder, statistics, schedule) is refused with what to use instead."""
    recogniser, held = trained
    teacher = _tiny_teacher()
    guide = replace(_tiny_teacher(seed=1), step=0)
    inputs = CardInputs(recogniser, held)
    base = CardConfig(samples_per_primitive=3, sampling_steps=3, real_per_primitive=4, seed=1)
    guided_config = replace(base, guide_weight=2.0, guide_from_step=5)
    guided = teacher_card(teacher, _fake_embed, inputs, guided_config, guide=guide)
    assert guided.to_metrics() == teacher_card(teacher, _fake_embed, inputs, guided_config, guide=guide).to_metrics()
    assert guided.to_metrics() != teacher_card(teacher, _fake_embed, inputs, base).to_metrics()
    with pytest.raises(ValueError, match="needs a guide checkpoint"):
        teacher_card(teacher, _fake_embed, inputs, guided_config)
    with pytest.raises(ValueError, match="needs a guide checkpoint"):
        teacher_card(teacher, _fake_embed, inputs, base, guide=guide)
    other_stats = FeatureStats(mean=np.full(263, 0.5, np.float32), std=np.ones(263, np.float32))
    for wrong, message in ((replace(guide, text_encoder={"encoder": "clip"}), "text encoder"),
                           (replace(guide, stats=other_stats), "feature statistics differ"),
                           (replace(guide, diffusion_steps=100), "schedule 100 x cosine")):
        with pytest.raises(ValueError, match=f"not a weaker version of this teacher: {message}.*git show"):
            teacher_card(teacher, _fake_embed, inputs, guided_config, guide=wrong)
    with pytest.raises(ValueError, match="card.guide_weight must be >= 1"):
        CardConfig(guide_weight=0.5)


def test_card_with_guidance_only_above_a_step_is_seeded_and_differs(trained):
    """card.guidance_from_step keeps classifier-free guidance to the top of the schedule: another card than guidance
    at every step, the same card twice, and a negative step refused."""
    recogniser, held = trained
    teacher, inputs = _tiny_teacher(), CardInputs(recogniser, held)
    base = CardConfig(samples_per_primitive=3, sampling_steps=3, real_per_primitive=4, seed=1)
    interval = replace(base, guidance_from_step=5)
    card = teacher_card(teacher, _fake_embed, inputs, interval)
    assert card.to_metrics() == teacher_card(teacher, _fake_embed, inputs, interval).to_metrics()
    assert card.to_metrics() != teacher_card(teacher, _fake_embed, inputs, base).to_metrics()
    with pytest.raises(ValueError, match="card.guidance_from_step must be >= 0"):
        CardConfig(guidance_from_step=-1)


def test_cards_of_several_seeds_give_each_seeds_numbers_and_their_range(trained):
    """`scripts/teacher_card.py --seeds`: one checkpoint scored per card seed, each seed's headline kept in order."""
    recogniser, held = trained
    teacher = _tiny_teacher()
    inputs = CardInputs(recogniser, held)
    cards = [teacher_card(teacher, _fake_embed, inputs, CardConfig(samples_per_primitive=3, sampling_steps=2,
                                                                   real_per_primitive=4, seed=seed))
             for seed in (1, 2)]
    script = load_module("scripts/teacher_card.py")
    spread = script._spread(cards, [1, 2])
    assert spread["seeds"] == [1, 2]
    assert spread["fid"] == [card.fid for card in cards] and spread["fid"][0] != spread["fid"][1]
    assert spread["primitives_within_30pct"] == [card.primitives_within for card in cards]
    table = script._spread_table(spread)
    low, high = sorted(spread["fid"])
    assert f"{np.mean(spread['fid']):.3g} [{low:.3g}, {high:.3g}]" in table and table.count("\n") == 4


def test_autoguidance_traces_measure_wrist_height_sideways_head_and_shoulder_yaw():
    """scripts/autoguidance_traces.py draws one scalar per frame: checked on a hand-built skeleton."""
    script = load_module("scripts/autoguidance_traces.py")
    joints = np.zeros((2, 22, 3), np.float32)
    joints[:, 21] = [[0.0, 1.4, 0.0], [0.0, 1.6, 0.0]]  # right wrist rises
    joints[:, 15] = [[0.0, 1.7, 0.0], [0.3, 1.6, 0.0]]  # head leans 0.3 m sideways
    joints[:, 16] = [[0.2, 1.5, 0.0], [0.0, 1.5, 0.2]]  # shoulder line turns 90 degrees
    joints[:, 17] = [[-0.2, 1.5, 0.0], [0.0, 1.5, -0.2]]
    np.testing.assert_allclose(script._trace(joints, 0), [1.4, 1.6], atol=1e-6)
    np.testing.assert_allclose(script._trace(joints, 1), [0.0, 0.3], atol=1e-6)
    np.testing.assert_allclose(script._trace(joints, 2), [0.0, 90.0], atol=1e-4)


def test_dynamics_diagnosis_measures_turning_stepping_and_jitter():
    """scripts/dynamics_diagnosis.py on hand-built bodies: a pivot of 180 degrees on still feet travels 180 degrees
    of shoulder yaw with no ankle lift; lifting a foot is seen; a smooth pivot has a jitter ratio near 1."""
    script = load_module("scripts/dynamics_diagnosis.py")
    frames = 40
    angle = np.linspace(0.0, np.pi, frames)
    pivot = np.zeros((frames, 22, 3))
    for joint, (x, y) in {16: (0.2, 1.5), 17: (-0.2, 1.5), 7: (0.1, 0.1), 8: (-0.1, 0.1)}.items():
        pivot[:, joint] = np.stack([x * np.cos(angle), np.full(frames, y), x * np.sin(angle)], axis=-1)
    still = script.describe([pivot])
    assert still["yaw_path"] == pytest.approx(180.0, abs=1e-6) and still["yaw_range"] == pytest.approx(180.0, abs=1e-6)
    assert still["ankle_lift"] == 0.0 and 1.0 <= still["jitter"] < 1.1
    stepping = pivot.copy()
    stepping[:, 7, 1] += 0.05 * np.abs(np.sin(np.linspace(0.0, 4 * np.pi, frames)))  # the left foot steps
    assert script.describe([stepping])["ankle_lift"] > 0.05


class _IdentityDenoiser(torch.nn.Module):
    """Returns its noisy input rescaled (x_t / sqrt(alpha_bar_t)) on valid frames and junk on padding: the x0 of a
    denoiser that removes nothing, whose error at step t is sqrt((1 - alpha_bar_t) / alpha_bar_t) per feature."""

    def __init__(self, alphas_cumprod: np.ndarray) -> None:
        super().__init__()
        self.scale = torch.as_tensor(np.sqrt(alphas_cumprod), dtype=torch.float32)

    def forward(self, x_t, t, text_emb=None, mask=None):
        out = x_t / self.scale[t].view(-1, 1, 1)
        return torch.where(mask[..., None], out, torch.full_like(out, 1e3))


def test_dynamics_diagnosis_one_shot_denoising_measures_the_error_on_valid_frames():
    """`--denoise-steps`: real motions noised to t and denoised once; the error is the RMS over valid frames only
    (padding of a shorter motion left out), grows with t as the noise does, and is seeded."""
    script = load_module("scripts/dynamics_diagnosis.py")
    teacher = _tiny_teacher()
    alphas = teacher.diffusion().alphas_cumprod
    teacher = replace(teacher, model=_IdentityDenoiser(alphas))
    rng = np.random.default_rng(0)
    motions = [rng.normal(size=(n, 263)).astype(np.float32) for n in (24, 9)]
    text = np.zeros((2, 16), np.float32)
    errors = {}
    for step in (0, 5, 9):
        denoised, errors[step] = script.one_shot_x0(teacher, motions, text, step)
        assert [len(d) for d in denoised] == [24, 9]
        expected = np.sqrt((1 - alphas[step]) / alphas[step])
        assert errors[step] == pytest.approx(expected, rel=0.05)  # 33 frames x 263 features of unit noise
    assert errors[0] < errors[5] < errors[9]
    again = script.one_shot_x0(teacher, motions, text, 5)
    assert again[1] == errors[5] and np.array_equal(again[0][1], script.one_shot_x0(teacher, motions, text, 5)[0][1])


def test_dynamics_diagnosis_projects_onto_the_output_layers_span():
    """The closest x0 the network can emit: a motion inside the output layer's span comes back as it is, the part
    outside it is dropped and is the error."""
    script = load_module("scripts/dynamics_diagnosis.py")
    teacher = _tiny_teacher()
    final = teacher.model.output_process.poseFinal  # (263, 16): spans 16 of the 263 feature axes below
    with torch.no_grad():
        final.weight.zero_()
        final.weight[:16] = torch.eye(16)
        final.bias.zero_()
        final.bias[200] = 0.5
    rng = np.random.default_rng(0)
    inside = np.zeros((10, 263), np.float32)
    inside[:, :16] = rng.normal(size=(10, 16))
    inside[:, 200] = 0.5
    projected, error = script.output_span_projection(teacher, [inside])
    np.testing.assert_allclose(projected[0], inside, atol=1e-6)
    assert error < 1e-6
    outside = inside.copy()
    outside[:, 100] = 2.0  # off the span: dropped, RMS 2 over one feature in 263
    projected, error = script.output_span_projection(teacher, [outside])
    np.testing.assert_allclose(projected[0], inside, atol=1e-6)
    assert error == pytest.approx(2.0 / np.sqrt(263), rel=1e-6)


def test_grow_teacher_adds_layers_that_change_nothing_until_trained():
    """scripts/grow_teacher.py: the grown teacher's x0 equals the source's (post-norm layers, the last norm folded
    into the output layer), the new layers' residual branches are zero but trainable, and shrinking is refused."""
    script = load_module("scripts/grow_teacher.py")
    teacher = _tiny_teacher()
    with torch.no_grad():  # a last norm that is not the identity, so folding it matters
        last = teacher.model.seqTransEncoder.layers[-1].norm2
        last.weight.uniform_(0.5, 1.5)
        last.bias.uniform_(-0.3, 0.3)
    grown = script.grow_depth(teacher.model, 3).eval()
    assert grown.config.num_layers == 3 and len(grown.seqTransEncoder.layers) == 3
    gen = torch.Generator().manual_seed(0)
    x, t, text = torch.randn(2, 12, 263, generator=gen), torch.tensor([0, 9]), torch.randn(2, 16, generator=gen)
    mask = torch.arange(12)[None] < torch.tensor([[12], [7]])
    with torch.no_grad():
        before = teacher.model(x, t, text_emb=text, mask=mask)
        after = grown(x, t, text_emb=text, mask=mask)
    torch.testing.assert_close(after[mask], before[mask], atol=1e-4, rtol=0)
    new = grown.seqTransEncoder.layers[2]
    assert not new.linear2.weight.any() and not new.self_attn.out_proj.weight.any()
    grown.train()
    grown(x, t, text_emb=text, mask=mask).square().mean().backward()
    assert new.linear2.weight.grad.abs().sum() > 0  # the zero branch learns
    with pytest.raises(ValueError, match="has 1 layers already"):
        script.grow_depth(teacher.model, 1)
