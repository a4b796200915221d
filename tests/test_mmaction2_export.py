"""The mmaction2 config written beside a PYSKL pickle: its text (no extra needed), its transforms, and a short
training run of mmaction2 on it through mmengine's `Runner.from_cfg` (those skip, saying why, without the extra)."""

from __future__ import annotations

import ast
import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pytest

from kinemic.classifier import ClassifierConfig, prepare_joints, recalibrate_batchnorm, sample_test_indices
from kinemic.formats.pyskl import SkeletonSample, write_pyskl
from kinemic.mmaction.checkpoint import classifier_from_mmaction
from kinemic.mmaction.export import CONFIG_SUFFIX, mmaction_config_text, write_mmaction_config
from kinemic.skeleton import NUM_JOINTS
from tests.test_classifier import toy_motions

pytestmark = pytest.mark.usefixtures("one_thread")

# Separates the toy classes within a few dozen steps (tests/test_classifier.py); long clips, so that the sampling
# of short sequences (loop from a random start) and of long ones (one frame per segment) are both exercised.
CONFIG = ClassifierConfig(epochs=10, batch_size=6, lr=0.05, clip_len=32, base_channels=8, num_test_clips=2)


def _mm():
    pytest.importorskip("mmaction", reason="the optional mmaction2 stack is absent: install it with `make setup-mm`")
    with warnings.catch_warnings():  # mmcv-lite has no compiled ops; the skeleton models never use them
        warnings.filterwarnings("ignore", message="Fail to import ``MultiScaleDeformableAttention``")
        import mmaction.models  # noqa: F401


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> tuple[Path, list[np.ndarray], np.ndarray]:
    """A tiny `real.pkl` as prepare_target writes it (splits fewshot / test), shifted off the origin, and its config."""
    joints, labels = toy_motions(6, np.random.default_rng(0))
    joints = [j + np.array([0.5, 0.0, -1.0], dtype=np.float32) for j in joints]  # centring must matter
    ids = [f"S001C001P001R001A{i:03d}" for i in range(len(joints))]
    folder = tmp_path_factory.mktemp("target")
    samples = [SkeletonSample(i, int(c), j) for i, c, j in zip(ids, labels, joints, strict=True)]
    fewshot = [d for i, d in enumerate(ids) if i % 6 < 4]  # 4 + 2 per class
    write_pyskl(folder / "real.pkl", samples, {"fewshot": fewshot, "test": sorted(set(ids) - set(fewshot))})
    path = write_mmaction_config(folder / "real.pkl", 3, CONFIG, "fewshot", val=(folder / "real.pkl", "test"),
                                 num_workers=0)
    return path, joints, labels


def test_config_is_written_beside_the_pickle_and_is_python(export):
    path, _, _ = export
    assert path.name == "real" + CONFIG_SUFFIX and path.parent == (path.parent / "real.pkl").parent
    text = path.read_text()
    ast.parse(text)
    assert "'{{ fileDirname }}/real.pkl'" in text
    for expected in ("num_person=1", "type='PelvisCentre'", "type='KinemicSampleFrames'", "nesterov=True",
                     "convert_to_iter_based=True", "center=9", "split='fewshot'", "split='test'"):
        assert expected in text, expected
    assert "PreNormalize3D" not in text and "num_person=2" not in text


def test_config_errors_name_the_problem(export, tmp_path):
    path, _, _ = export
    pickle = path.parent / "real.pkl"
    with pytest.raises(ValueError, match=r"no split 'train'; its splits are \['fewshot', 'test'\]"):
        write_mmaction_config(pickle, 3, CONFIG, "train")
    with pytest.raises(ValueError, match=r"labels \[2\] outside \[0, 2\)"):
        write_mmaction_config(pickle, 2, CONFIG, "fewshot")
    with pytest.raises(FileNotFoundError, match="PYSKL annotation pickle"):
        write_mmaction_config(tmp_path / "absent.pkl", 3, CONFIG, "fewshot")
    with pytest.raises(ValueError, match="fp32 only"):
        mmaction_config_text(pickle, 3, ClassifierConfig(precision="bf16"), "fewshot")
    with pytest.raises(ValueError, match="tcn_kernel"):  # an ST-GCN mmaction2 cannot express is refused by the model
        from kinemic.mmaction.model import recognizer_cfg
        from kinemic.models.stgcn import STGCNConfig
        recognizer_cfg(STGCNConfig(num_classes=3, tcn_kernel=5))


def test_config_without_validation_and_elsewhere(export, tmp_path):
    path, _, _ = export
    out = write_mmaction_config(path.parent / "real.pkl", 3, CONFIG, "fewshot", path=tmp_path / "cfg" / "train.py")
    text = out.read_text()
    assert "val_cfg = None" in text
    assert f"'{{{{ fileDirname }}}}/{Path('..') / '..' / path.parent.name / 'real.pkl'}'".replace("\\", "/") in text


def _pipeline(config_path: Path, name: str):
    from mmengine.config import Config
    from mmengine.dataset import Compose
    from mmengine.registry import DefaultScope, init_default_scope

    cfg = Config.fromfile(str(config_path))  # imports kinemic.mmaction.transforms through custom_imports
    init_default_scope("mmaction") if DefaultScope.get_current_instance() is None else None
    with DefaultScope.overwrite_default_scope("mmaction"):
        return Compose(cfg[name]), cfg


def test_test_pipeline_gives_kinemics_pelvis_centred_single_person_clips(export):
    _mm()
    path, joints, _ = export
    pipeline, cfg = _pipeline(path, "test_pipeline")
    assert cfg.train_dataloader.dataset.ann_file == str(path.parent / "real.pkl")
    centred = prepare_joints(joints)
    for i in (0, 5):
        kp = joints[i][None]  # (M=1, T, V, C) as PoseDataset reads it
        out = pipeline({"keypoint": kp, "total_frames": kp.shape[1], "label": 0, "start_index": 0})
        inputs = out["inputs"].numpy()
        assert inputs.shape == (2, 1, 32, NUM_JOINTS, 3)  # (num_clips, persons, frames, joints, xyz)
        expected = centred[i][sample_test_indices(len(centred[i]), 32, 2)]  # (clips, T, V, C), kinemic's own input
        np.testing.assert_array_equal(inputs[:, 0], expected)


def test_train_pipeline_samples_frames_of_the_centred_sample(export):
    _mm()
    path, joints, _ = export
    pipeline, _ = _pipeline(path, "train_pipeline")
    centred = prepare_joints(joints)[1]
    np.random.seed(0)
    out = pipeline({"keypoint": joints[1][None], "total_frames": len(joints[1]), "label": 0, "start_index": 0})
    clip = out["inputs"].numpy()
    assert clip.shape == (1, 1, 32, NUM_JOINTS, 3)
    frames = clip[0, 0].reshape(32, -1)
    matches = (frames[:, None] == centred.reshape(len(centred), -1)[None]).all(axis=2)  # (clip frame, sample frame)
    assert matches.any(axis=1).all()  # every clip frame is a frame of the pelvis-centred sample
    assert np.abs(centred[:, 0]).max() < 0.5 < np.abs(joints[1][:, 0]).max()  # and centring did move it


def test_mmaction2_trains_on_the_export_through_runner_from_cfg(export, tmp_path):
    _mm()
    from mmengine.config import Config
    from mmengine.runner import Runner

    path, joints, _ = export
    cfg = Config.fromfile(str(path))
    cfg.work_dir = str(tmp_path / "work")
    cfg.default_hooks.logger.interval = 1
    runner = Runner.from_cfg(cfg)
    runner.train()
    losses = np.asarray(runner.message_hub.get_scalar("train/loss").data[0])
    assert len(losses) == CONFIG.epochs * 2  # 12 samples in fewshot, batch 6
    first, last = losses[:4].mean(), losses[-4:].mean()  # two epochs each
    assert last < 0.8 * first, f"loss went from {first:.3f} to {last:.3f}"
    assert (tmp_path / "work" / f"epoch_{CONFIG.epochs}.pth").is_file()
    lr = runner.optim_wrapper.get_lr()["lr"][0]
    assert lr < 0.01 * CONFIG.lr  # the cosine has run down to (nearly) zero by the last step

    # the precise-BN hook left the statistics kinemic's own recalibration computes from the same weights
    trained = {key: value.detach().cpu().clone() for key, value in runner.model.state_dict().items()}
    ours = classifier_from_mmaction(trained, CONFIG, device="cpu")
    fewshot = [j for i, j in enumerate(prepare_joints(joints)) if i % 6 < 4]
    clips = [s[sample_test_indices(len(s), CONFIG.clip_len, 1)[0]] for s in fewshot]
    order = np.random.default_rng(np.random.SeedSequence(0).spawn(3)[2]).permutation(len(clips))
    recalibrate_batchnorm(ours.model, [clips[i] for i in order], 256)
    for key, value in ours.model.state_dict().items():
        if key.endswith(("running_mean", "running_var")):
            theirs = trained[key.replace("cls_head.fc_cls.", "cls_head.fc.")]
            np.testing.assert_allclose(theirs.numpy(), value.numpy(), rtol=1e-4, atol=1e-6, err_msg=key)
    assert not np.allclose(trained["backbone.data_bn.running_var"].numpy(), 1.0)  # not the start values


def test_precise_bn_hook_only_when_asked(export, tmp_path):
    path, _, _ = export
    assert "type='KinemicPreciseBN'" in path.read_text()
    plain = dataclasses.replace(CONFIG, recalibrate_bn=False)
    text = write_mmaction_config(path.parent / "real.pkl", 3, plain, "fewshot", path=tmp_path / "plain.py").read_text()
    assert "custom_hooks" not in text
