"""The released teacher: publish and load round trip, the guards against altered or foreign teachers, snapshots."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

from kinemic.conditioning import default_cache_dir, text_embedder
from kinemic.corpus import PreparedPrior
from kinemic.motion import FeatureStats
from kinemic.params import config_from_params
from kinemic.teacher import TeacherCheckpoint, TeacherConfig, pretrain_teacher, prior_hash, run_fingerprint
from kinemic.teacher_release import (
    ReleaseError,
    ReleaseManifest,
    frame_order_summary,
    load_release,
    prior_fingerprint,
    read_losses,
    release_recipe,
    run_resume_path,
    seed_resume_from_weights,
    train_in_snapshots,
    write_release,
)
from kinemic.text import EmbeddingCache, build_encoder
from tests.script_modules import load_module
from tests.test_teacher import RECIPE, TINY_MODEL, _config, _fake_embed, _tiny_prior

TEXT = {"name": "fake"}
ROOT = Path(__file__).resolve().parents[1]
RELEASE = ROOT / "releases" / "teacher"


@pytest.fixture(scope="module")
def trained():
    prior = _tiny_prior()
    config = _config(steps=4)
    return prior, config, pretrain_teacher(prior, _fake_embed, config, TEXT)


def _publish(folder, trained):
    prior, config, result = trained
    return write_release(folder, result.teacher, prior, config, {"cpu": "test"}, 12.5, {"card.recognition": 0.5},
                         result.losses)


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for key, value in a.state_dict().items():
        torch.testing.assert_close(b.state_dict()[key], value, rtol=0, atol=0)


def test_published_teacher_loads_with_its_manifest(tmp_path, trained):
    prior, config, result = trained
    manifest = _publish(tmp_path, trained)
    teacher, read = load_release(tmp_path, prior, TEXT)
    assert read == manifest == ReleaseManifest.read(tmp_path)
    assert teacher.source == "release" and teacher.step == 4
    _assert_same_weights(result.teacher.model, teacher.model)
    assert read.recipe["steps"] == 4 and "card" not in read.recipe
    assert read_losses(tmp_path) == [(s, pytest.approx(v, abs=1e-6)) for s, v in result.losses]


def test_missing_release_says_how_to_train_one(tmp_path, trained):
    with pytest.raises(ReleaseError, match="teacher.source: pretrain"):
        load_release(tmp_path / "nowhere", trained[0], TEXT)


def test_altered_checkpoint_is_refused(tmp_path, trained):
    _publish(tmp_path, trained)
    with open(tmp_path / "teacher.pt", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ReleaseError, match="sha256"):
        load_release(tmp_path, trained[0], TEXT)


def test_teacher_of_another_prior_is_refused(tmp_path, trained):
    _publish(tmp_path, trained)
    with pytest.raises(ReleaseError, match="another prior"):
        load_release(tmp_path, _tiny_prior(seed=1), TEXT)


def _rounded_elsewhere(prior: PreparedPrior, scale: float = 1.0) -> PreparedPrior:
    """The same world as another CPU's vector math writes it: every feature and statistic one float32 step up (and
    scaled by `scale`: 1.0 for rounding alone)."""
    def up(values):
        return np.nextafter(np.asarray(values, np.float32) * np.float32(scale), np.float32(np.inf))
    return PreparedPrior(up(prior.features), prior.motions.copy(), prior.captions.copy(),
                         FeatureStats(mean=up(prior.stats.mean), std=up(prior.stats.std)))


def test_same_prior_rounded_by_another_cpu_is_accepted(tmp_path, trained, caplog):
    prior = trained[0]
    manifest = _publish(tmp_path, trained)
    assert manifest.prior_fingerprint == prior_fingerprint(prior)
    elsewhere = _rounded_elsewhere(prior)
    assert prior_hash(elsewhere) != manifest.prior_hash
    with caplog.at_level("INFO", logger="kinemic.teacher_release"):
        teacher, _ = load_release(tmp_path, elsewhere, TEXT)
    assert teacher.source == "release"
    assert "another CPU" in caplog.text


def test_same_tables_with_other_statistics_are_refused(tmp_path, trained):
    _publish(tmp_path, trained)
    with pytest.raises(ReleaseError, match="feature statistics lie"):
        load_release(tmp_path, _rounded_elsewhere(trained[0], scale=1.01), TEXT)


def test_other_tables_are_refused_even_with_the_same_statistics(tmp_path, trained):
    prior = trained[0]
    _publish(tmp_path, trained)
    captions = prior.captions.copy()
    captions.loc[0, "caption"] = "a person waves sideways"
    with pytest.raises(ReleaseError, match="tables"):
        load_release(tmp_path, PreparedPrior(prior.features, prior.motions, captions, prior.stats), TEXT)


def _frames_reordered(prior: PreparedPrior, order) -> PreparedPrior:
    """The same motions (tables and statistics unchanged) with each motion's frames taken in `order(length)`."""
    features = np.array(prior.features)
    for offset, length in zip(prior.motions["offset"], prior.motions["length"], strict=True):
        features[offset : offset + length] = prior.features[offset : offset + length][order(length)]
    return PreparedPrior(features, prior.motions.copy(), prior.captions.copy(), prior.stats)


@pytest.mark.parametrize("order", [
    lambda length: np.arange(length)[::-1],                      # every motion played backwards
    lambda length: np.random.default_rng(length).permutation(length),  # frames shuffled
], ids=["reversed", "shuffled"])
def test_same_frames_in_another_order_are_refused(tmp_path, trained, order):
    """Reordered frames keep the tables and every statistic (both asserted): only the frame-order summary sees them."""
    prior = trained[0]
    manifest = _publish(tmp_path, trained)
    reordered = _frames_reordered(prior, order)
    assert prior_fingerprint(reordered) == manifest.prior_fingerprint
    np.testing.assert_allclose(reordered.features.mean(0), prior.features.mean(0), rtol=1e-5, atol=1e-6)
    assert len(manifest.prior_frame_order) == 2 * prior.features.shape[1]
    with pytest.raises(ReleaseError, match="another order"):
        load_release(tmp_path, reordered, TEXT)


def test_frame_order_summary_sees_direction_and_order():
    prior = _tiny_prior()
    summary = frame_order_summary(prior)
    half = prior.features.shape[1]
    backwards = frame_order_summary(_frames_reordered(prior, lambda length: np.arange(length)[::-1]))
    np.testing.assert_allclose(backwards[:half], summary[:half], rtol=1e-6)  # the same steps, taken backwards
    np.testing.assert_allclose(backwards[half:], -summary[half:], rtol=1e-6, atol=1e-9)  # the trend flips sign
    assert np.abs(summary[half:]).max() > 1e-2
    assert np.allclose(frame_order_summary(_rounded_elsewhere(prior)), summary, rtol=1e-5, atol=1e-6)


def test_release_without_frame_order_keeps_the_tables_and_statistics_check(tmp_path, trained):
    """Releases written before the frame-order summary: the same world rounded elsewhere still passes."""
    _publish(tmp_path, trained)
    data = json.loads((tmp_path / "release.json").read_text())
    del data["prior_frame_order"]
    (tmp_path / "release.json").write_text(json.dumps(data))
    assert load_release(tmp_path, _rounded_elsewhere(trained[0]), TEXT)[0].source == "release"


def test_release_without_fingerprint_needs_the_exact_prior(tmp_path, trained):
    """Releases written before the fingerprint existed keep the strict check: nothing else identifies their prior."""
    _publish(tmp_path, trained)
    data = json.loads((tmp_path / "release.json").read_text())
    del data["prior_fingerprint"]
    (tmp_path / "release.json").write_text(json.dumps(data))
    assert load_release(tmp_path, trained[0], TEXT)[0].step == 4
    with pytest.raises(ReleaseError, match="exact hash"):
        load_release(tmp_path, _rounded_elsewhere(trained[0]), TEXT)


def test_teacher_of_another_text_encoder_is_refused(tmp_path, trained):
    _publish(tmp_path, trained)
    with pytest.raises(ReleaseError, match="text encoder"):
        load_release(tmp_path, trained[0], {"name": "other"})


def test_manifest_of_another_format_is_refused(tmp_path, trained):
    _publish(tmp_path, trained)
    data = json.loads((tmp_path / "release.json").read_text())
    (tmp_path / "release.json").write_text(json.dumps({**data, "format": "something/9"}))
    with pytest.raises(ReleaseError, match="format"):
        load_release(tmp_path, trained[0], TEXT)


def test_release_source_is_a_valid_teacher_source():
    assert TeacherConfig(source="release").release == "releases/teacher"
    with pytest.raises(ValueError, match="release"):
        TeacherConfig(source="download")


def test_snapshots_equal_uninterrupted_runs_to_that_step(tmp_path):
    """Snapshot k holds the EMA and raw weights a straight run to step k ends with; a re-run reuses them."""
    prior = _tiny_prior()
    config = _config(steps=12, ema_decay=0.7, checkpoint_every=2)
    snaps = train_in_snapshots(prior, _fake_embed, config, TEXT, tmp_path / "resume", tmp_path / "snaps", every=4,
                               until=8)
    assert [s.step for s in snaps] == [4, 8]
    for snap in snaps:
        straight_ema = pretrain_teacher(prior, _fake_embed, _config(steps=snap.step, ema_decay=0.7), TEXT)
        straight_raw = pretrain_teacher(prior, _fake_embed, _config(steps=snap.step), TEXT)
        _assert_same_weights(straight_ema.teacher.model, TeacherCheckpoint.load(snap.ema).model)
        _assert_same_weights(straight_raw.teacher.model, TeacherCheckpoint.load(snap.raw).model)
    again = train_in_snapshots(prior, _fake_embed, config, TEXT, tmp_path / "resume", tmp_path / "snaps", every=4,
                               until=8)
    assert [s.raw for s in again] == [s.raw for s in snaps]
    with pytest.raises(ValueError, match="multiple"):
        train_in_snapshots(prior, _fake_embed, config, TEXT, tmp_path / "resume", tmp_path / "x", every=3, until=6)


def test_a_variant_started_from_another_runs_state_snapshots_only_past_it(tmp_path):
    """A recipe variant whose resume checkpoint is another run's state at step 4 (scripts/release_teacher.py
    --init-from) keeps no snapshot at or below 4: those weights are the other run's. Its step 8 is 4 steps of its own
    recipe on top, unlike the source run's step 8."""
    prior = _tiny_prior()
    plain = _config(steps=12, checkpoint_every=2)
    snaps = train_in_snapshots(prior, _fake_embed, plain, TEXT, tmp_path / "resume", tmp_path / "plain", every=4,
                               until=4)
    source = run_resume_path(tmp_path / "resume", plain, prior, _fake_embed)
    variant = _config(steps=12, checkpoint_every=2, velocity_weight=1.0)
    target = run_resume_path(tmp_path / "resume", variant, prior, _fake_embed)
    assert target != source
    target.parent.mkdir(parents=True)
    target.write_bytes(source.read_bytes())
    ran = train_in_snapshots(prior, _fake_embed, variant, TEXT, tmp_path / "resume", tmp_path / "variant", every=4,
                             until=8)
    assert [s.step for s in ran] == [8] and TeacherCheckpoint.load(ran[0].raw).step == 8
    assert not (tmp_path / "variant" / "raw_000004.pt").exists()
    on = train_in_snapshots(prior, _fake_embed, plain, TEXT, tmp_path / "resume", tmp_path / "plain", every=4,
                            until=8)
    assert [s.step for s in on] == [4, 8] and snaps[0].raw == on[0].raw
    plain_8, variant_8 = TeacherCheckpoint.load(on[1].raw).model, TeacherCheckpoint.load(ran[0].raw).model
    assert any(not torch.equal(plain_8.state_dict()[k], v) for k, v in variant_8.state_dict().items())


def _recipe(path: Path = RECIPE) -> TeacherConfig:
    return config_from_params(TeacherConfig, yaml.safe_load(path.read_text())["teacher"], "teacher")


def test_release_records_the_recipe_as_written():
    """The released recipe.yaml gives, field for field, the recipe release.json holds (model and text as written,
    not expanded to every MDMConfig field), and the manifest's recipe rebuilds the same config."""
    manifest = ReleaseManifest.read(RELEASE)
    assert release_recipe(_recipe()) == manifest.recipe
    assert manifest.trained_with() == _recipe()


def test_released_recipe_finds_its_resume_checkpoint():
    """`scripts/release_teacher.py train` keeps its resume checkpoint under <snapshots>/resume/fac75e4d7b164173:
    the fingerprint of recipe.yaml on the embedded default prior. Needs that prior (`dvc repro prepare_prior`) and
    its captions' embeddings in the text cache; skipped without them."""
    config = _recipe()
    folder = ROOT / "data" / "prepared" / "prior"
    if not folder.is_dir():
        pytest.skip("no prepared prior in this workspace (dvc repro prepare_prior)")
    prior = PreparedPrior.load(folder).subset(config.splits)
    if prior_hash(prior) != ReleaseManifest.read(RELEASE).prior_hash:
        pytest.skip("the workspace's prior has other bytes than the release's (another world, or the same one "
                    "rounded by another CPU): the resume fingerprint hashes the bytes")
    captions = prior.captions["caption"].tolist()
    _, cached = EmbeddingCache(default_cache_dir()).get(build_encoder(config.text.encoder, **config.text.options),
                                                          list(dict.fromkeys(captions)))
    if not cached.all():
        pytest.skip("the prior's caption embeddings are not cached (dvc repro teacher caches them)")
    table = torch.from_numpy(np.asarray(text_embedder(config.text, default_cache_dir())(captions), dtype=np.float32))
    assert run_fingerprint(config, prior, table) == "fac75e4d7b164173"


RECIPES = ROOT / "docs" / "results" / "teacher_recipes"


@pytest.mark.parametrize("name, changed", [
    ("velocity", {"velocity_weight": 1.0, "velocity_from_step": 12500}),
    ("velocity_whole_motions", {"velocity_weight": 1.0, "velocity_from_step": 12500, "max_frames": 196}),
    ("velocity_high_noise", {"velocity_weight": 1.0, "velocity_from_step": 12500, "high_noise_share": 0.5,
                             "high_noise_from_step": 22000}),
])
def test_candidate_recipes_are_the_first_release_plus_what_they_say(name, changed):
    """The recipes of the README's recipe study (docs/results/teacher_recipes) load, and differ from the first
    release's recipe (plain.yaml) only where their header says: up to their fine-tune step they train that run."""
    plain = release_recipe(_recipe(RECIPES / "plain.yaml"))
    recipe = release_recipe(_recipe(RECIPES / f"{name}.yaml"))
    assert {k: v for k, v in recipe.items() if plain.get(k) != v} == changed
    assert set(plain) <= set(recipe)


def test_the_release_is_the_high_noise_recipe():
    assert release_recipe(_recipe()) == release_recipe(_recipe(RECIPES / "velocity_high_noise.yaml"))


def _release_script():
    return load_module("scripts/release_teacher.py")


def test_init_from_refuses_a_state_past_the_variants_fine_tune_step(tmp_path):
    """--init-from copies another run's state in as the variant's resume checkpoint only when that state is at or
    before `velocity_from_step`: a later one would hold plain steps the variant's recipe says are velocity steps."""
    prior = _tiny_prior()
    plain = _config(steps=12, checkpoint_every=2)
    pretrain_teacher(prior, _fake_embed, plain, TEXT, resume_dir=tmp_path / "plain", stop_after=4)
    source = run_resume_path(tmp_path / "plain", plain, prior, _fake_embed)
    script = _release_script()
    late = _config(steps=12, checkpoint_every=2, velocity_weight=1.0, velocity_from_step=2)
    with pytest.raises(SystemExit, match=r"step 4, past the step where the recipe starts to differ \(2"):
        script._seed_resume(source, tmp_path / "late", late, prior, _fake_embed)
    assert not (tmp_path / "late").exists()
    variant = _config(steps=12, checkpoint_every=2, velocity_weight=1.0, velocity_from_step=4)
    script._seed_resume(source, tmp_path / "variant", variant, prior, _fake_embed)
    assert run_resume_path(tmp_path / "variant", variant, prior, _fake_embed).read_bytes() == source.read_bytes()


def test_publish_reads_the_log_of_a_variant_and_of_the_runs_it_started_from(tmp_path):
    """A variant's release counts the steps before its fork from its parent's log: a later line of a step replaces an
    earlier one (a resumed run logs again; a variant logs its own steps after the fork), and nothing past the
    published step is read."""
    script = _release_script()
    parent, variant = tmp_path / "parent.tsv", tmp_path / "variant.tsv"
    parent.write_text("50\t1.0\t100.0\n100\t0.9\t110.0\n150\t0.8\t120.0\n")
    variant.write_text("150\t0.7\t5000.0\n200\t0.6\t5010.0\n250\t0.5\t5020.0\n")
    rows = script._log_rows([parent, variant], 200)
    assert rows == [(50, 1.0, 100.0), (100, 0.9, 110.0), (150, 0.7, 5000.0), (200, 0.6, 5010.0)]
    assert script._wall_seconds(rows) == 20.0  # the pause between the two runs is not training time


def test_release_card_names_the_terms_that_start_later():
    script = _release_script()
    words = script._later_terms_words(SimpleNamespace(recipe={
        "velocity_weight": 1.0, "velocity_from_step": 12500, "high_noise_share": 0.5, "high_noise_from_step": 22000}))
    assert "velocity term 1.0 from step 12500" in words and "0.5 of every batch" in words and "22000" in words
    assert script._later_terms_words(SimpleNamespace(recipe={"velocity_weight": 0.0})) == ""
    accelerated = SimpleNamespace(recipe={"acceleration_weight": 1.0, "acceleration_from_step": 26000})
    assert script._later_terms_words(accelerated) == ", acceleration term 1.0 from step 26000"
    positioned = SimpleNamespace(recipe={"position_weight": 2.0, "position_from_step": 26000})
    assert script._later_terms_words(positioned) == ", joint-column term 2.0 from step 26000"


def _fine_tune_source(tmp_path):
    """A tiny teacher at step 4 (EMA weights, as a release holds) whose text encoder is the recipe's."""
    prior = _tiny_prior()
    config = _config(steps=4, ema_decay=0.7)
    teacher = pretrain_teacher(prior, _fake_embed, config, config.text.to_dict()).teacher
    teacher.save(tmp_path / "teacher.pt")
    return prior, teacher


def _fine_tune(**overrides) -> TeacherConfig:
    fields = dict(steps=12, ema_decay=0.7, checkpoint_every=2, velocity_weight=1.0, velocity_from_step=4)
    return _config(**{**fields, **overrides})


def test_a_fine_tune_of_weights_starts_at_them_and_replays(tmp_path):
    """--init-from teacher.pt: the variant's loop starts at the teacher's step with its weights as both raw and EMA
    weights and a fresh optimizer, then trains reproducibly (the random streams come from the recipe's seed)."""
    prior, teacher = _fine_tune_source(tmp_path)
    config = _fine_tune()
    runs = []
    for name in ("a", "b"):
        path = run_resume_path(tmp_path / name, config, prior, _fake_embed)
        seed_resume_from_weights(path, teacher, config)
        state = torch.load(path, weights_only=False)
        assert state["step"] == 4 and state["losses"] == [] and state["optimizer"]["state"] == {}
        for key, value in teacher.model.state_dict().items():
            torch.testing.assert_close(state["model"][key], value, rtol=0, atol=0)
            if key in state["ema"]["shadow"]:
                torch.testing.assert_close(state["ema"]["shadow"][key], value, rtol=0, atol=0)
        result = pretrain_teacher(prior, _fake_embed, config, config.text.to_dict(), resume_dir=tmp_path / name,
                                  stop_after=6)
        assert result.resumed_from == 4 and result.teacher.step == 6
        runs.append(result.teacher.model)
    _assert_same_weights(runs[0], runs[1])
    assert any(not torch.equal(teacher.model.state_dict()[k], v) for k, v in runs[0].state_dict().items())


@pytest.mark.parametrize("overrides, message", [
    ({"model": {**TINY_MODEL, "latent_dim": 48}}, "not the recipe's"),
    ({"velocity_from_step": 2}, "past the step where the recipe starts to differ"),
    ({"text": {"encoder": "clip", "options": {}, "normalize": True}}, "text encoder"),
])
def test_a_fine_tune_of_weights_refuses_a_recipe_that_does_not_fit(tmp_path, overrides, message):
    _, teacher = _fine_tune_source(tmp_path)
    with pytest.raises(ValueError, match=message):
        seed_resume_from_weights(tmp_path / "resume.pt", teacher, _fine_tune(**overrides))
    assert not (tmp_path / "resume.pt").exists()


def test_init_from_a_teacher_checkpoint_is_recorded_and_never_published(tmp_path):
    """The script tells a teacher checkpoint from a resume checkpoint, records what the run started from, and
    `publish` refuses any run whose lineage fine-tuned bare weights: no recipe replays its optimizer restart."""
    prior, _ = _fine_tune_source(tmp_path)
    script = _release_script()
    started = script._seed_resume(tmp_path / "teacher.pt", tmp_path / "run", _fine_tune(), prior, _fake_embed)
    assert started["kind"] == "weights" and started["step"] == 4 and len(started["sha256"]) == 64
    assert run_resume_path(tmp_path / "run", _fine_tune(), prior, _fake_embed).is_file()
    assert script._seed_resume(tmp_path / "teacher.pt", tmp_path / "run", _fine_tune(), prior, _fake_embed) is None
    script._refuse_fine_tunes_of_weights({"init_from": {**started, "kind": "resume"}}, [{}])
    with pytest.raises(SystemExit, match="fresh optimizer"):
        script._refuse_fine_tunes_of_weights({"init_from": started}, [])
    with pytest.raises(SystemExit, match="fresh optimizer"):
        script._refuse_fine_tunes_of_weights({}, [{"init_from": started}])


@pytest.mark.parametrize("name", ["finetune_release", "finetune_release_velocity4"])
def test_fine_tune_recipes_of_the_release_fork_at_its_step(name):
    """The README's fine-tunes of the released weights (docs/results/teacher_recipes/finetune_*.yaml) describe the
    release's model and text encoder and fork at its step, so `--init-from releases/teacher/teacher.pt` accepts them."""
    recipe, release = _recipe(RECIPES / f"{name}.yaml"), _recipe()
    assert recipe.forked_at == ReleaseManifest.read(RELEASE).step
    assert recipe.model == release.model and recipe.text == release.text


def test_grown_fine_tune_recipe_is_the_release_with_more_layers():
    """docs/results/teacher_recipes/finetune_grown6.yaml (README "The residue is the denoiser's own output") fine-tunes
    the release grown by scripts/grow_teacher.py: the release's model but for its depth, forked at its step."""
    recipe, release = _recipe(RECIPES / "finetune_grown6.yaml"), _recipe()
    assert recipe.forked_at == ReleaseManifest.read(RELEASE).step
    assert recipe.model.num_layers == 6 and release.model.num_layers == 4
    assert dataclasses.replace(recipe.model, num_layers=4) == release.model and recipe.text == release.text
