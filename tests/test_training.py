"""The training loop on a tiny world: every method runs, KineMIC trains the intended parameters, resume works."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import torch

from kinemic.corpus import PreparedPrior
from kinemic.models.mdm import MDM
from kinemic.motion import FeatureStats
from kinemic.objectives import MemoryBank
from kinemic.resume import update_with_array, update_with_tensor
from kinemic.target_set import PreparedTarget
from kinemic.teacher import TeacherCheckpoint
from kinemic.training import (
    WINDOW_RECORD,
    StepInputs,
    TrainConfig,
    build_student,
    build_training_data,
    draw_batch,
    draw_prompt_rows,
    kinemic_step,
    run_fingerprint,
    train_student,
)
from kinemic.window_previews import mine_windows
from tests.test_teacher import _fake_embed, _tiny_prior

CLASSES = ["wave slowly", "wave quickly"]


def _teacher() -> TeacherCheckpoint:
    torch.manual_seed(0)
    model = MDM(latent_dim=32, ff_size=64, num_layers=1, num_heads=2, text_dim=16, mask_frames=True).eval()
    stats = FeatureStats(mean=np.zeros(263, np.float32), std=np.ones(263, np.float32))
    return TeacherCheckpoint(model, stats, 20, "cosine", {"name": "fake"}, 40, "pretrain")


def _fewshot(per_class: int = 3) -> PreparedTarget:
    rng = np.random.default_rng(1)
    rows, feats = [], []
    for c, name in enumerate(CLASSES):
        for k in range(per_class):
            n = int(rng.integers(8, 15))
            feats.append(np.sin((0.1 + 0.3 * c) * np.arange(n)[:, None] + np.linspace(0, 3, 263)).astype(np.float32))
            rows.append(dict(sample_id=f"S001C001P00{k}R001A00{c}", setup=1, camera=1, performer=k, replication=1,
                             action=c, class_index=c, class_name=name, caption=f"a person does {name}",
                             split="fewshot"))
    joints = [np.zeros((len(f), 22, 3), np.float32) for f in feats]
    return PreparedTarget.from_clips(pd.DataFrame(rows), feats, joints)


def _soft_pairs(prior) -> pd.DataFrame:
    rows = []
    for c in range(2):
        ids = prior.motions["motion_id"][c::2].tolist()  # slow motions for class 0, quick for class 1
        rows += [dict(class_id=c, class_name=CLASSES[c], prompt=f"a person performs a {CLASSES[c]}.", rank=r,
                      motion_id=m, caption="", similarity=0.5) for r, m in enumerate(ids)]
    return pd.DataFrame(rows)


def _data(extra_templates: tuple[str, ...] = ()):
    prior = _tiny_prior()
    return build_training_data(_fewshot(), _soft_pairs(prior), prior, _fake_embed, extra_templates)


def _config(**kw) -> TrainConfig:
    base = dict(steps=4, lr=1e-3, lora={"rank": 4, "alpha": 8.0, "dropout": 0.0}, mic_hidden=8, mic_output=8,
                bank_size=4, prior_max_frames=24, seed=5, device="cpu", checkpoint_every=2, log_every=1)
    base.update(kw)
    return TrainConfig(**base)


def test_kinemic_step_trains_exactly_the_intended_parameters():
    teacher, data, config = _teacher(), _data(), _config()
    parts = build_student(teacher.model, 2, config)
    parts.student.train()
    batch = draw_batch(data, config, np.random.default_rng(0), torch.device("cpu"), config.prior_max_frames)
    loss, losses = kinemic_step(StepInputs(
        parts=parts, teacher=teacher.model, diffusion=teacher.diffusion(), data=data, batch=batch, stats=teacher.stats,
        config=config, bank=MemoryBank(4), generator=torch.Generator().manual_seed(0), device=torch.device("cpu"),
    ))
    loss.backward()
    assert set(losses.as_dict()) == {"loss", "target_rec", "contrastive", "window_rec", "window_distill", "dww_mean",
                                     "logit_scale"}
    assert 0.0 <= losses.dww_mean <= 1.0
    assert all(p.grad is None for p in teacher.model.parameters())
    student_grads = {n for n, p in parts.student.named_parameters() if p.grad is not None}
    assert student_grads and all("lora_" in n or n.endswith("action_embedding") for n in student_grads)
    assert all(p.grad is not None for p in parts.mic.parameters())
    assert parts.logit_scale.grad is not None


@pytest.mark.parametrize("switches", [dict(use_dist=False, use_dww=False), dict(use_dist=True, use_dww=False),
                                      dict(use_dist=False, use_dww=True)])
def test_ablation_switches_change_the_loss_terms(switches):
    teacher, data = _teacher(), _data()
    config = _config(**switches)
    result = train_student(teacher, data, config)
    row = result.losses[-1]
    assert ("window_distill" in row) == config.use_dist
    assert (row["dww_mean"] == 1.0) == (not config.use_dww)


@pytest.mark.parametrize("method", ["lora", "scratch", "zeroshot"])
def test_baselines_produce_the_same_kind_of_checkpoint(method, tmp_path):
    from kinemic.student import StudentCheckpoint

    config = _config(method=method)
    result = train_student(_teacher(), _data(), config)
    result.checkpoint.save(tmp_path / "student.pt")
    loaded = StudentCheckpoint.load(tmp_path / "student.pt")
    assert loaded.method == method and loaded.class_names == CLASSES
    assert loaded.uses_action == (method != "zeroshot")
    assert result.windows is None  # no prior, no windows
    if method != "zeroshot":
        assert set(result.losses[-1]) == {"step", "loss", "target_rec", "lr"}
        # the rate the loop applied, which the stage logs as it is
        assert result.losses[-1]["lr"] == (config.scratch_lr if method == "scratch" else config.lr)


def test_resume_after_interruption_continues_the_same_run(tmp_path):
    teacher, data = _teacher(), _data()
    straight = train_student(teacher, data, _config())
    train_student(teacher, data, _config(), resume_dir=tmp_path, stop_after=3)
    resumed = train_student(teacher, data, _config(), resume_dir=tmp_path)
    assert resumed.resumed_from == 2
    assert resumed.losses == straight.losses
    pd.testing.assert_frame_equal(resumed.windows, straight.windows)  # steps 1-2 came back with the checkpoint
    for key, value in straight.checkpoint.model.state_dict().items():
        torch.testing.assert_close(resumed.checkpoint.model.state_dict()[key], value, rtol=0, atol=0)


@pytest.mark.parametrize(("checkpoint_every", "log_every", "stop_after"), [(3, 2, 4), (2, 3, 5)])
def test_resume_between_log_points_logs_the_same_losses(tmp_path, checkpoint_every, log_every, stop_after):
    """The partial log window travels with the resume checkpoint: same curve, same weights, any intervals."""
    teacher, data = _teacher(), _data()
    config = _config(steps=7, checkpoint_every=checkpoint_every, log_every=log_every)
    straight = train_student(teacher, data, config)
    train_student(teacher, data, config, resume_dir=tmp_path, stop_after=stop_after)
    resumed = train_student(teacher, data, config, resume_dir=tmp_path)
    assert resumed.resumed_from == stop_after // checkpoint_every * checkpoint_every
    assert resumed.resumed_from % log_every != 0  # the checkpoint lies between two log points
    assert resumed.losses == straight.losses
    for key, value in straight.checkpoint.model.state_dict().items():
        torch.testing.assert_close(resumed.checkpoint.model.state_dict()[key], value, rtol=0, atol=0)
    for key, value in straight.parts.mic.state_dict().items():
        torch.testing.assert_close(resumed.parts.mic.state_dict()[key], value, rtol=0, atol=0)


def test_fingerprint_sees_every_value_of_every_input():
    teacher, data, config = _teacher(), _data(), _config()
    reference = run_fingerprint(config, teacher, data)
    assert run_fingerprint(config, _teacher(), _data()) == reference

    def changed(**fields):
        return run_fingerprint(config, teacher, dataclasses.replace(data, **fields))

    prior = data.prior
    features = prior.features.copy()
    features[len(features) // 2 + 1, 200] += 1e-3
    assert changed(prior=PreparedPrior(features, prior.motions, prior.captions, prior.stats)) != reference
    captions = data.caption_embeddings.copy()
    captions[len(captions) - 2, 9] += 1e-3
    assert changed(caption_embeddings=captions) != reference
    prompts = data.prompt_embeddings.copy()
    prompts[-1, -1] += 1e-3
    assert changed(prompt_embeddings=prompts) != reference
    target = [f.copy() for f in data.target_features]
    target[-1][-1, 100] += 1e-3
    assert changed(target_features=target) != reference
    pairs = [p.copy() for p in data.pairs_by_class]
    pairs[-1][-1] = pairs[0][0]
    assert changed(pairs_by_class=pairs) != reference

    other = _teacher()
    weight = max(other.model.parameters(), key=lambda p: p.numel())  # past the first 4 KB that were hashed before
    with torch.no_grad():
        weight.view(-1)[-1] += 1e-3
    assert run_fingerprint(config, other, data) != reference


def test_mined_windows_lie_inside_the_prior_motion():
    teacher, data = _teacher(), _data()
    result = train_student(teacher, data, _config(steps=2))
    windows = mine_windows(result.parts, teacher, data, count=2, seed=0)
    assert len(windows) == 2
    for w in windows:
        prior_len = len(data.prior.motion(w.prior_index))
        assert 0 <= w.start and w.start + w.length <= prior_len
        assert w.length == min(prior_len, len(data.target_features[w.target_index]))
        assert np.isclose(w.attention.sum(), 1.0, atol=1e-5)


def test_kinemic_needs_soft_pairs():
    data = build_training_data(_fewshot(), None, None, _fake_embed)
    with pytest.raises(ValueError, match="needs the prepared prior and the soft pairs"):
        train_student(_teacher(), data, _config())
    with pytest.raises(ValueError, match="train.method"):
        TrainConfig(method="gan")


def test_lora_settings_have_one_set_of_defaults_and_parse_from_params():
    from kinemic.params import config_from_params
    from kinemic.student import LoRASettings

    assert TrainConfig().lora == LoRASettings()
    config = config_from_params(TrainConfig, {"lora": {"rank": 4, "alpha": 8.0, "dropout": 0.0}}, "train")
    assert config.lora == LoRASettings(rank=4, alpha=8.0, dropout=0.0)
    assert dataclasses.asdict(config)["lora"] == {"rank": 4, "alpha": 8.0, "dropout": 0.0}  # the run fingerprint's view
    with pytest.raises(ValueError, match=r"'train\.lora': unknown keys \['rnak'\]; valid keys are"):
        config_from_params(TrainConfig, {"lora": {"rnak": 4}}, "train")
    with pytest.raises(ValueError, match="LoRA rank"):
        TrainConfig(lora={"rank": 0})


def test_prior_crops_default_to_the_teachers_training_crop(tmp_path):
    """train.prior_max_frames 0 (the default) crops prior motions to the teacher checkpoint's max_frames, so the two
    can no longer disagree; an explicit value still overrides it."""
    teacher, data = _teacher(), _data()
    implicit = train_student(teacher, data, _config(prior_max_frames=0, steps=3))
    explicit = train_student(teacher, data, _config(prior_max_frames=teacher.max_frames, steps=3))
    other = train_student(teacher, data, _config(prior_max_frames=8, steps=3))
    assert implicit.losses == explicit.losses
    assert other.losses != implicit.losses
    with pytest.raises(ValueError, match="prior_max_frames"):
        _config(prior_max_frames=-1)


def test_window_filter_reports_what_it_keeps_and_off_changes_nothing():
    teacher, data = _teacher(), _data()
    plain = train_student(teacher, data, _config(steps=3))
    assert all("window_kept" not in row for row in plain.losses)
    strict = train_student(teacher, data, _config(steps=3, window_speed_ratio=1.0001))
    loose = train_student(teacher, data, _config(steps=3, window_speed_ratio=1e6))
    assert all(0.0 <= row["window_kept"] <= 1.0 for row in strict.losses)
    assert [row["window_kept"] for row in loose.losses] == [1.0] * len(loose.losses)
    assert "kept" not in plain.windows.columns
    kept = strict.windows.groupby("step")["kept"].mean()  # log_every 1: one row per step
    assert kept.tolist() == [row["window_kept"] for row in strict.losses]
    assert [r["target_rec"] for r in loose.losses] == [r["target_rec"] for r in plain.losses]
    with pytest.raises(ValueError, match="window_speed_ratio"):
        _config(window_speed_ratio=0.5)


def test_only_the_scratch_student_trains_at_the_scratch_rate():
    assert TrainConfig(method="scratch", lr=2e-5, scratch_lr=1e-4).learning_rate == 1e-4
    assert TrainConfig(method="lora", lr=2e-5, scratch_lr=1e-4).learning_rate == 2e-5
    assert TrainConfig(method="kinemic", lr=2e-5, scratch_lr=1e-4).learning_rate == 2e-5


def test_the_recorded_windows_are_the_crops_drawn_and_the_windows_eq2_picked(monkeypatch):
    """Every row of TrainResult.windows: the crop draw_batch drew (replayed from the seed) and the start that
    best_window_starts returned inside it, at the paired target's length."""
    import kinemic.training

    picks = []

    def recording(attention, lengths, window):
        starts = best_window_starts(attention, lengths, window)
        picks.append(starts.clone())
        return starts

    best_window_starts = kinemic.training.best_window_starts
    monkeypatch.setattr(kinemic.training, "best_window_starts", recording)
    teacher, data, config = _teacher(), _data(), _config(steps=3)
    windows = train_student(teacher, data, config).windows
    assert list(windows.columns) == ["step", "class_id", "class_name", "target_index", "prior_index", "motion_id",
                                     "crop_start", "crop_length", "window_start", "window_length"]
    assert set(WINDOW_RECORD) - set(windows.columns) == {"kept"}  # the filter is off
    assert len(picks) == 3 and len(windows) == 3 * len(data.target_features)
    rng = np.random.default_rng(config.seed)
    for step, starts in enumerate(picks):
        batch = draw_batch(data, config, rng, torch.device("cpu"), config.prior_max_frames, step)
        rows = windows[windows["step"] == step + 1]
        np.testing.assert_array_equal(rows["window_start"], starts.numpy())
        np.testing.assert_array_equal(rows["target_index"], batch.target_idx)
        np.testing.assert_array_equal(rows["class_id"], batch.labels.numpy())
        np.testing.assert_array_equal(rows["prior_index"], batch.prior_idx)
        np.testing.assert_array_equal(rows["crop_start"], batch.prior_starts)
        np.testing.assert_array_equal(rows["crop_length"], [len(m) for m in batch.prior_motions])
        targets = [len(data.target_features[i]) for i in batch.target_idx]
        np.testing.assert_array_equal(rows["window_length"], np.minimum(rows["crop_length"], targets))
        assert (rows["window_start"] + rows["window_length"] <= rows["crop_length"]).all()
        for row, crop in zip(rows.itertuples(), batch.prior_motions, strict=True):
            assert row.motion_id == data.prior.motions["motion_id"].iloc[row.prior_index]
            assert row.class_name == CLASSES[row.class_id]
            full = data.prior.motion(row.prior_index)
            np.testing.assert_array_equal(crop, full[row.crop_start : row.crop_start + row.crop_length])


# --------------------------------------------------------------------------------------------------------------------
# prompts drawn per step (train.extra_templates)
# --------------------------------------------------------------------------------------------------------------------

TEMPLATES = ("someone does {label} now", "a {label} is done")


def test_every_class_gets_its_prompts_and_the_class_prompt_keeps_its_embedding():
    plain, data = _data(), _data(TEMPLATES)
    assert plain.step_prompts == [] and plain.prompt_templates == 1
    assert data.prompt_templates == 3
    assert data.step_prompts == [*data.class_prompts, "someone does wave slowly now", "someone does wave quickly now",
                                 "a wave slowly is done", "a wave quickly is done"]  # row j * C + c
    np.testing.assert_array_equal(data.step_prompt_embeddings[:2], data.prompt_embeddings)
    np.testing.assert_array_equal(data.step_prompt_embeddings[2:], _fake_embed(data.step_prompts[2:]))
    with pytest.raises(ValueError, match=r"extra_templates: 'someone dances' must be text containing '\{label\}'"):
        TrainConfig(extra_templates=("someone dances",))


def test_prompt_draws_are_seeded_cover_each_class_and_never_cross_it():
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    draws = np.stack([draw_prompt_rows(labels, 3, 4, seed=42, step=s) for s in range(60)])  # (steps, B)
    np.testing.assert_array_equal(draws[7], draw_prompt_rows(labels, 3, 4, seed=42, step=7))
    assert not np.array_equal(draws, np.stack([draw_prompt_rows(labels, 3, 4, seed=43, step=s) for s in range(60)]))
    assert (draws % 3 == labels).all()  # row j * C + c: always the sample's own class
    for c in range(3):
        assert set(draws[:, labels == c].ravel().tolist()) == {c, 3 + c, 6 + c, 9 + c}  # all 4 of its prompts


def test_drawn_prompts_condition_the_student_and_move_no_other_draw():
    teacher, config = _teacher(), _config(steps=3)
    plain = train_student(teacher, _data(), config)
    # The class prompt's own template as the extra one: every drawn prompt has the class prompt's embedding, so the
    # run is the plain run exactly, though a prompt was drawn for every sample of every step.
    own = ("a person performs a {label}.",)
    same = _data(own)
    assert same.prompt_templates == 2
    repeated = train_student(teacher, same, dataclasses.replace(config, extra_templates=own))
    assert repeated.losses == plain.losses
    pd.testing.assert_frame_equal(repeated.windows, plain.windows)
    for key, value in plain.checkpoint.model.state_dict().items():
        torch.testing.assert_close(repeated.checkpoint.model.state_dict()[key], value, rtol=0, atol=0)
    other = train_student(teacher, _data(TEMPLATES), dataclasses.replace(config, extra_templates=TEMPLATES))
    assert other.losses != plain.losses  # other prompts condition the student
    with pytest.raises(ValueError, match="train.extra_templates"):  # data and config must agree
        train_student(teacher, _data(TEMPLATES), config)
    # The batch's own draws do not move: the same samples, crops and captions, and the same stream left behind.
    rngs = np.random.default_rng(0), np.random.default_rng(0)
    for step in range(3):
        a, b = (draw_batch(d, config, r, torch.device("cpu"), 24, step) for d, r in zip((_data(), _data(TEMPLATES)),
                                                                                      rngs, strict=True))
        assert a.prompt_rows is None and b.prompt_rows is not None
        for name in ("target_idx", "prior_idx", "prior_starts", "prior_captions"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert rngs[0].bit_generator.state == rngs[1].bit_generator.state


def test_drawn_prompts_are_part_of_the_run_identity_and_off_keeps_the_old_one():
    teacher, config = _teacher(), _config()
    plain = run_fingerprint(config, teacher, _data())
    on = dataclasses.replace(config, extra_templates=TEMPLATES)
    assert run_fingerprint(on, teacher, _data(TEMPLATES)) != plain
    assert _data(TEMPLATES).fingerprint() != _data().fingerprint()
    assert _data(TEMPLATES[:1]).fingerprint() != _data(TEMPLATES).fingerprint()
    # Off, the identity is the one of runs before the option existed: the config without the key, the data unchanged.
    fields = dataclasses.asdict(config)
    del fields["nproc"], fields["extra_templates"]
    assert "extra_templates" not in json.dumps(fields)
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode())
    digest.update(_data().fingerprint().encode())
    for name, value in teacher.model.state_dict().items():
        digest.update(name.encode())
        update_with_tensor(digest, value)
    update_with_array(digest, teacher.stats.mean)
    update_with_array(digest, teacher.stats.std)
    digest.update(f"{teacher.diffusion_steps}{teacher.noise_schedule}".encode())
    assert digest.hexdigest()[:16] == plain
