"""Teacher pretraining: learning, resume after interruption, checkpoint round trip, sampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from kinemic.conditioning import TextSpec
from kinemic.corpus import PreparedPrior
from kinemic.models.mdm import MDMConfig
from kinemic.motion import FeatureStats, features_to_joints
from kinemic.params import config_from_params
from kinemic.sampling import SampleRequest, sample_motions
from kinemic.schedules import scheduled_lr
from kinemic.teacher import (
    JOINT_COLUMNS,
    LoggedStep,
    TeacherCheckpoint,
    TeacherConfig,
    WeightAverage,
    emphasise_high_noise,
    logged_curve,
    pretrain_teacher,
    run_fingerprint,
)

RECIPE = Path(__file__).resolve().parents[1] / "releases" / "teacher" / "recipe.yaml"
PLAIN_RECIPE = Path(__file__).resolve().parents[1] / "docs" / "results" / "teacher_recipes" / "plain.yaml"

TINY_MODEL = {"latent_dim": 32, "ff_size": 64, "num_layers": 1, "num_heads": 2, "dropout": 0.1, "mask_frames": True}


def _tiny_prior(n: int = 12, seed: int = 0) -> PreparedPrior:
    """Two kinds of motion (slow and fast waves in the features), captioned accordingly."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(20, 41, size=n)
    rows, motions, captions, offset = [], [], [], 0
    for i, length in enumerate(lengths):
        freq = 0.1 if i % 2 == 0 else 0.4
        t = np.arange(length)[:, None]
        rows.append(np.sin(freq * t + np.linspace(0, 3, 263)[None]).astype(np.float32))
        motions.append((f"{i:03d}", f"{i:03d}", "train", offset, length, 0))
        word = "slowly" if i % 2 == 0 else "quickly"
        captions += [
            (f"{i:03d}", f"a person waves {word}", "", 0.0, 0.0),
            (f"{i:03d}", f"someone moves {word}", "", 0.0, 0.0),
        ]
        offset += length
    motions_df = pd.DataFrame(motions, columns=["motion_id", "source_id", "split", "offset", "length", "start_frame"])
    captions_df = pd.DataFrame(captions, columns=["motion_id", "caption", "tokens", "start", "end"])
    features = np.concatenate(rows)
    stats = FeatureStats(mean=features.mean(0), std=np.full(263, features.std(), np.float32))
    return PreparedPrior(features, motions_df, captions_df, stats)


def _fake_embed(texts: list[str]) -> np.ndarray:
    """A deterministic bag-of-words embedding: the text encoder is not what these tests are about."""
    out = np.zeros((len(texts), 16), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in text.split():
            out[i, sum(map(ord, word)) % 16] += 1.0
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _config(**overrides) -> TeacherConfig:
    base = dict(model=TINY_MODEL, diffusion_steps=20, steps=12, batch_size=6, lr=1e-3, max_frames=32,
                checkpoint_every=4, log_every=2, seed=3, device="cpu")
    base.update(overrides)
    return TeacherConfig(**base)


def test_loss_decreases():
    result = pretrain_teacher(_tiny_prior(), _fake_embed, _config(steps=60, log_every=10), {"name": "fake"})
    first, last = result.losses[0][1], result.losses[-1][1]
    assert last < 0.7 * first, result.losses


def test_resume_continues_the_same_run(tmp_path):
    prior = _tiny_prior()
    config = _config(lr_schedule="cosine", warmup_steps=3)  # the schedule is a function of the step: nothing to save
    straight = pretrain_teacher(prior, _fake_embed, config, {"name": "fake"})
    interrupted = pretrain_teacher(prior, _fake_embed, config, {"name": "fake"}, resume_dir=tmp_path, stop_after=6)
    assert interrupted.teacher.step == 6
    resumed = pretrain_teacher(prior, _fake_embed, config, {"name": "fake"}, resume_dir=tmp_path)
    assert resumed.resumed_from == 4  # the last checkpoint before the interruption
    assert resumed.losses == straight.losses
    for key, value in straight.teacher.model.state_dict().items():
        torch.testing.assert_close(resumed.teacher.model.state_dict()[key], value, rtol=0, atol=0)
    assert not any(tmp_path.rglob("last.pt")), "a finished run removes its resume checkpoint"


@pytest.mark.parametrize(("checkpoint_every", "log_every", "stop_after"), [(3, 2, 5), (2, 5, 7), (5, 3, 5)])
def test_resume_between_log_points_logs_the_same_losses(tmp_path, checkpoint_every, log_every, stop_after):
    """The partial log window travels with the resume checkpoint: same curve, same weights, any intervals."""
    prior = _tiny_prior()
    config = _config(checkpoint_every=checkpoint_every, log_every=log_every)
    straight = pretrain_teacher(prior, _fake_embed, config, {"name": "fake"})
    pretrain_teacher(prior, _fake_embed, config, {"name": "fake"}, resume_dir=tmp_path, stop_after=stop_after)
    resumed = pretrain_teacher(prior, _fake_embed, config, {"name": "fake"}, resume_dir=tmp_path)
    assert resumed.resumed_from == stop_after // checkpoint_every * checkpoint_every
    assert resumed.resumed_from % log_every != 0  # the checkpoint lies between two log points
    assert resumed.losses == straight.losses
    for key, value in straight.teacher.model.state_dict().items():
        torch.testing.assert_close(resumed.teacher.model.state_dict()[key], value, rtol=0, atol=0)


def test_fingerprint_sees_every_value_of_every_input():
    prior = _tiny_prior(n=150)  # thousands of frames: a change between sampled rows must show too
    table = torch.from_numpy(_fake_embed(prior.captions["caption"].tolist()))
    reference = run_fingerprint(_config(), prior, table)
    assert run_fingerprint(_config(), prior, table.clone()) == reference

    features = prior.features.copy()
    features[len(features) // 2 + 1, 200] += 1e-3
    changed_frame = PreparedPrior(features, prior.motions, prior.captions, prior.stats)
    assert run_fingerprint(_config(), changed_frame, table) != reference
    std = prior.stats.std.copy()
    std[150] *= 2
    changed_stats = PreparedPrior(prior.features, prior.motions, prior.captions, FeatureStats(prior.stats.mean, std))
    assert run_fingerprint(_config(), changed_stats, table) != reference
    other_table = table.clone()
    other_table[len(table) - 3, 7] += 1e-3
    assert run_fingerprint(_config(), prior, other_table) != reference
    assert run_fingerprint(_config(seed=4), prior, table) != reference


def _fixed_prior() -> PreparedPrior:
    """Three motions of integer-valued features: the same bytes, hence the same fingerprint, on every platform."""
    lengths = [5, 7, 6]
    motions = pd.DataFrame([(f"{i:03d}", f"{i:03d}", "train", sum(lengths[:i]), n, 0) for i, n in enumerate(lengths)],
                           columns=["motion_id", "source_id", "split", "offset", "length", "start_frame"])
    captions = pd.DataFrame([(f"{i:03d}", f"a person waves {i}", "", 0.0, 0.0) for i in range(len(lengths))],
                            columns=["motion_id", "caption", "tokens", "start", "end"])
    features = (np.arange(sum(lengths) * 263) % 7).astype(np.float32).reshape(-1, 263)
    stats = FeatureStats(mean=np.zeros(263, np.float32), std=np.ones(263, np.float32))
    return PreparedPrior(features, motions, captions, stats)


def test_typed_model_and_text_keep_the_fingerprint_of_the_params_as_given():
    """`model` and `text` are typed (MDMConfig, TextSpec) but the fingerprint hashes them as the params wrote them.

    The pinned values are what the code computed when both were plain dicts (commit 0dfce2f): a resume checkpoint of
    that time, such as the first release's (plain.yaml, the root of every later recipe), is still found."""
    recipe = yaml.safe_load(PLAIN_RECIPE.read_text())["teacher"]
    config = config_from_params(TeacherConfig, recipe, "teacher")
    assert config.model == MDMConfig(latent_dim=128, ff_size=512, num_layers=4, num_heads=4, dropout=0.0,
                                     mask_frames=True, cond_mask_prob=0.1)
    assert config.text == TextSpec("minilm", {}, True) == TextSpec.from_dict(recipe["text"])
    assert config.params()["model"] == recipe["model"] and config.params()["text"] == recipe["text"]
    assert TeacherConfig().model == MDMConfig() and TeacherConfig().text == TextSpec()  # defaults: theirs alone
    assert TeacherConfig().params()["model"] == {}

    prior, table = _fixed_prior(), torch.arange(24, dtype=torch.float32).reshape(3, 8)
    assert run_fingerprint(config, prior, table) == "f8810d16cb66edfb"
    assert run_fingerprint(TeacherConfig(), prior, table) == "7443e8b2fc62690b"
    partial = TeacherConfig(model={"latent_dim": 64, "num_heads": 4}, text={"encoder": "minilm", "normalize": True})
    assert run_fingerprint(partial, prior, table) == "e1d1e0e1954a44df"  # keys left out stay left out


def test_nested_sections_fail_at_construction():
    with pytest.raises(ValueError, match="unknown MDMConfig keys"):
        TeacherConfig(model={"latent_dims": 64})
    with pytest.raises(ValueError, match="latent_dim"):
        TeacherConfig(model={"latent_dim": 63})
    with pytest.raises(ValueError, match="teacher.model must be a mapping"):
        TeacherConfig(model=64)
    with pytest.raises(ValueError, match="text encoder spec: unknown keys"):
        TeacherConfig(text={"encoder": "minilm", "normalize": True, "dim": 3})


def test_text_dim_comes_from_the_encoder():
    result = pretrain_teacher(_tiny_prior(), _fake_embed, _config(steps=1), {"name": "fake"})
    assert result.teacher.model.config.text_dim == 16
    with pytest.raises(ValueError, match="text_dim=8 differs"):
        pretrain_teacher(_tiny_prior(), _fake_embed, _config(steps=1, model={**TINY_MODEL, "text_dim": 8}), {})


def test_progress_rows_carry_the_rate_the_loop_applied():
    config = _config(steps=9, log_every=2, lr_schedule="cosine", warmup_steps=3)
    rows: list[LoggedStep] = []
    result = pretrain_teacher(_tiny_prior(), _fake_embed, config, {"name": "fake"},
                              progress=lambda row, total: rows.append(row))
    assert [(r.step, r.loss) for r in rows] == result.losses
    assert [r.lr for r in rows] == [scheduled_lr(1e-3, s - 1, 9, "cosine", 3) for s in (2, 4, 6, 8, 9)]
    assert rows == logged_curve(result.losses, config)  # a whole curve rebuilt after a resume: the same rates


def test_resume_ignores_checkpoints_of_other_configs(tmp_path):
    prior = _tiny_prior()
    pretrain_teacher(prior, _fake_embed, _config(), {"name": "fake"}, resume_dir=tmp_path, stop_after=6)
    other = pretrain_teacher(prior, _fake_embed, _config(lr=5e-4), {"name": "fake"}, resume_dir=tmp_path)
    assert other.resumed_from == 0


def test_checkpoint_round_trip_and_sampling(tmp_path):
    result = pretrain_teacher(_tiny_prior(), _fake_embed, _config(steps=4), {"name": "fake", "dim": 16})
    path = tmp_path / "teacher.pt"
    result.teacher.save(path)
    loaded = TeacherCheckpoint.load(path)
    assert loaded.text_encoder == {"name": "fake", "dim": 16}
    assert loaded.diffusion_steps == 20 and loaded.max_frames == 32 and loaded.step == 4
    np.testing.assert_array_equal(loaded.stats.std, result.teacher.stats.std)
    assert all(not p.requires_grad for p in loaded.model.parameters())

    request = SampleRequest(lengths=np.array([10, 14, 7]), text_emb=_fake_embed(["a person waves slowly"] * 3))
    diffusion = loaded.diffusion(respacing=5)
    a = sample_motions(loaded.model, diffusion, loaded.stats, request, guidance=2.0, batch_size=2, seed=1)
    b = sample_motions(loaded.model, diffusion, loaded.stats, request, guidance=2.0, batch_size=2, seed=1)
    assert [f.shape for f in a.features] == [(10, 263), (14, 263), (7, 263)]
    assert [j.shape for j in a.joints] == [(10, 22, 3), (14, 22, 3), (7, 22, 3)]
    for x, y in zip(a.features, b.features, strict=True):
        np.testing.assert_array_equal(x, y)


def test_config_validation():
    with pytest.raises(ValueError, match="teacher.source"):
        TeacherConfig(source="download")
    with pytest.raises(ValueError, match="official_checkpoint is empty"):
        TeacherConfig(source="official")
    with pytest.raises(ValueError, match="teacher.precision"):
        TeacherConfig(precision="fp16")
    with pytest.raises(ValueError, match="teacher.lr_schedule"):
        TeacherConfig(lr_schedule="step")
    with pytest.raises(ValueError, match="teacher.warmup_steps"):
        TeacherConfig(steps=100, warmup_steps=100)
    with pytest.raises(ValueError, match="teacher.ema_decay"):
        TeacherConfig(ema_decay=1.0)


def test_load_rejects_foreign_files(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not a kinemic.teacher/1 checkpoint"):
        TeacherCheckpoint.load(path)
    with pytest.raises(FileNotFoundError, match="dvc repro teacher"):
        TeacherCheckpoint.load(tmp_path / "missing.pt")


def test_truncated_teacher_names_the_stage_to_rerun(tmp_path):
    path = tmp_path / "teacher.pt"
    pretrain_teacher(_tiny_prior(), _fake_embed, _config(steps=1), {"name": "fake"}).teacher.save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"teacher\.pt: cannot be read .*stage 'teacher'.*`dvc repro -f teacher`"):
        TeacherCheckpoint.load(path)


# --------------------------------------------------------------------------------------------------------------------
# EMA weights
# --------------------------------------------------------------------------------------------------------------------


def test_weight_average_copies_first_then_decays():
    model = torch.nn.Linear(2, 1)
    ema = WeightAverage(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)  # the first update copies: the random initialisation never enters the average
    torch.testing.assert_close(ema.shadow["weight"], torch.ones(1, 2), rtol=0, atol=0)
    with torch.no_grad():
        model.weight.fill_(3.0)
    ema.update(model)
    torch.testing.assert_close(ema.shadow["weight"], torch.full((1, 2), 0.9 * 1.0 + 0.1 * 3.0))
    ema.update(model)
    torch.testing.assert_close(ema.shadow["weight"], torch.full((1, 2), 0.9 * 1.2 + 0.1 * 3.0))
    assert ema.updates == 3
    ema.copy_to(model)
    torch.testing.assert_close(model.weight.detach(), torch.full((1, 2), 1.38))
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(model, decay=0.0)


def test_ema_teacher_is_the_average_of_the_raw_run():
    """The saved weights are the EMA of the raw weights; with ema_decay 0 they are the raw weights, as before."""
    prior = _tiny_prior()
    raw = pretrain_teacher(prior, _fake_embed, _config(steps=6), {"name": "fake"})
    averaged = pretrain_teacher(prior, _fake_embed, _config(steps=6, ema_decay=0.5), {"name": "fake"})
    assert averaged.losses == raw.losses  # EMA changes what is saved, not the training run
    differs = [not torch.equal(raw.teacher.model.state_dict()[k], v)
               for k, v in averaged.teacher.model.state_dict().items()]
    assert any(differs)
    for (name, a), (_, b) in zip(averaged.teacher.model.named_buffers(), raw.teacher.model.named_buffers(),
                                 strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=f"buffer {name} is a constant, not averaged")


def test_ema_off_keeps_the_fingerprint_of_runs_before_it_existed():
    prior = _tiny_prior()
    table = torch.from_numpy(_fake_embed(prior.captions["caption"].tolist()))
    assert run_fingerprint(_config(), prior, table) == run_fingerprint(_config(ema_decay=0.0), prior, table)
    assert run_fingerprint(_config(ema_decay=0.99), prior, table) != run_fingerprint(_config(), prior, table)


def test_velocity_weight_changes_the_run_and_off_keeps_the_fingerprint():
    """The velocity term (MDM's lambda_vel) adds to the loss and so moves the weights; at 0 the run and its resume
    identity are those from before the field existed."""
    prior = _tiny_prior()
    table = torch.from_numpy(_fake_embed(prior.captions["caption"].tolist()))
    assert run_fingerprint(_config(), prior, table) == run_fingerprint(_config(velocity_weight=0.0), prior, table)
    assert run_fingerprint(_config(velocity_weight=1.0), prior, table) != run_fingerprint(_config(), prior, table)
    plain = pretrain_teacher(prior, _fake_embed, _config(steps=4, log_every=1), {"name": "fake"})
    weighted = pretrain_teacher(prior, _fake_embed, _config(steps=4, log_every=1, velocity_weight=1.0),
                                {"name": "fake"})
    assert weighted.losses[0][1] > plain.losses[0][1]  # step 1: the same draws and MSE, plus a positive term
    after = weighted.teacher.model.state_dict()
    assert any(not torch.equal(after[k], v) for k, v in plain.teacher.model.state_dict().items())
    with pytest.raises(ValueError, match="velocity_weight"):
        _config(velocity_weight=-1.0)


def test_velocity_from_step_trains_the_plain_run_until_then(tmp_path):
    """Before `velocity_from_step` the run is the plain one, draw for draw: its resume state there is the plain run's,
    which is what lets scripts/release_teacher.py --init-from start the variant from the plain run's checkpoint."""
    prior = _tiny_prior()
    plain = pretrain_teacher(prior, _fake_embed, _config(steps=4, log_every=1), {"name": "fake"})
    late = _config(steps=6, log_every=1, velocity_weight=1.0, velocity_from_step=4)
    pretrain_teacher(prior, _fake_embed, late, {"name": "fake"}, resume_dir=tmp_path, stop_after=4)
    state = torch.load(next(tmp_path.rglob("*.pt")), weights_only=False)
    assert state["step"] == 4 and state["losses"] == plain.losses
    for key, value in plain.teacher.model.state_dict().items():
        assert torch.equal(state["model"][key], value), key
    finished = pretrain_teacher(prior, _fake_embed, late, {"name": "fake"}, resume_dir=tmp_path)
    straight = pretrain_teacher(prior, _fake_embed, _config(steps=6, log_every=1), {"name": "fake"})
    assert finished.losses[:4] == straight.losses[:4] and finished.losses[4][1] > straight.losses[4][1]


@pytest.mark.parametrize("term", ["acceleration", "position"])
def test_later_loss_term_is_off_in_old_fingerprints_and_adds_to_the_loss_from_its_step(term):
    """Off, the field keeps every existing run's identity; on from step S it leaves the run before S draw for draw
    and adds a positive term from S (what lets --init-from start the fine-tune from the release's loop state)."""
    weight, from_step = f"{term}_weight", f"{term}_from_step"
    prior = _tiny_prior()
    table = torch.from_numpy(_fake_embed(prior.captions["caption"].tolist()))
    assert run_fingerprint(_config(), prior, table) == run_fingerprint(_config(**{weight: 0.0}), prior, table)
    assert run_fingerprint(_config(**{weight: 1.0}), prior, table) != run_fingerprint(_config(), prior, table)
    velocity = {"velocity_weight": 1.0, "velocity_from_step": 2}
    late = _config(steps=6, log_every=1, **{weight: 1.0, from_step: 4}, **velocity)
    assert late.forked_at == 4
    straight = pretrain_teacher(prior, _fake_embed, _config(steps=6, log_every=1, **velocity), {"name": "fake"})
    weighted = pretrain_teacher(prior, _fake_embed, late, {"name": "fake"})
    assert weighted.losses[:4] == straight.losses[:4] and weighted.losses[4][1] > straight.losses[4][1]
    with pytest.raises(ValueError, match=weight):
        _config(**{weight: -1.0})


def test_joint_columns_are_exactly_what_joints_are_recovered_from():
    """The position term weighs the columns every skeleton is made of: changing any of them moves the recovered
    joints, changing any other column moves none."""
    rng = np.random.default_rng(0)
    features = rng.normal(size=(12, 263)).astype(np.float32)
    joints = features_to_joints(features)
    for column in range(263):
        changed = features.copy()
        changed[:, column] += 0.5
        moved = not np.allclose(features_to_joints(changed), joints)
        assert moved == (JOINT_COLUMNS.start <= column < JOINT_COLUMNS.stop), column


def test_high_noise_share_redraws_that_share_of_the_batch_from_the_top_of_the_schedule():
    generator = torch.Generator().manual_seed(0)
    t = torch.randint(0, 100, (64,), generator=generator)
    out = emphasise_high_noise(t, 0.25, 100, generator)
    assert torch.equal(out[16:], t[16:])  # the rest of the batch keeps its uniform draw
    assert bool(((out[:16] >= 80) & (out[:16] < 100)).all()) and not torch.equal(out[:16], t[:16])
    assert torch.equal(emphasise_high_noise(t, 0.0, 100, generator), t)
    assert bool((emphasise_high_noise(t, 1.0, 3, generator) == 2).all())  # a tiny schedule: its last step
    with pytest.raises(ValueError, match="high_noise_share"):
        _config(high_noise_share=1.5)


def test_high_noise_share_is_off_in_old_fingerprints_and_on_from_its_step(tmp_path):
    """Off, the field keeps every existing run's identity; on from step S, the run is the one it varies until S and
    then trains different steps (what lets --init-from start it from that run's checkpoint)."""
    prior = _tiny_prior()
    table = torch.from_numpy(_fake_embed(prior.captions["caption"].tolist()))
    assert run_fingerprint(_config(), prior, table) == run_fingerprint(_config(high_noise_share=0.0), prior, table)
    assert run_fingerprint(_config(high_noise_share=0.5), prior, table) != run_fingerprint(_config(), prior, table)
    both = _config(high_noise_share=0.5, high_noise_from_step=4, velocity_weight=1.0, velocity_from_step=2)
    assert both.forked_at == 4
    assert _config(high_noise_share=0.0, high_noise_from_step=9).forked_at == 0
    straight = pretrain_teacher(prior, _fake_embed, _config(steps=6, log_every=1), {"name": "fake"})
    late = pretrain_teacher(prior, _fake_embed, _config(steps=6, log_every=1, high_noise_share=1.0,
                                                        high_noise_from_step=4), {"name": "fake"})
    assert late.losses[:4] == straight.losses[:4] and late.losses[4:] != straight.losses[4:]


def test_ema_resume_continues_the_same_average(tmp_path):
    prior = _tiny_prior()
    config = _config(ema_decay=0.7)
    straight = pretrain_teacher(prior, _fake_embed, config, {"name": "fake"})
    pretrain_teacher(prior, _fake_embed, config, {"name": "fake"}, resume_dir=tmp_path, stop_after=6)
    resumed = pretrain_teacher(prior, _fake_embed, config, {"name": "fake"}, resume_dir=tmp_path)
    assert resumed.resumed_from == 4
    assert resumed.losses == straight.losses
    for key, value in straight.teacher.model.state_dict().items():
        torch.testing.assert_close(resumed.teacher.model.state_dict()[key], value, rtol=0, atol=0)


def test_preview_sampler_is_validated_and_does_not_change_the_run():
    prior = _tiny_prior()
    table = torch.from_numpy(_fake_embed(prior.captions["caption"].tolist()))
    fast = _config(preview_sampler="dpmpp_2m", release="elsewhere")
    assert run_fingerprint(fast, prior, table) == run_fingerprint(_config(), prior, table)
    with pytest.raises(ValueError, match="preview_sampler"):
        _config(preview_sampler="euler")
