"""Data-parallel student training (train.nproc): CPU, gloo, 2 processes under torchrun, a tiny teacher and world.

The 2-process runs happen once per module: this file is also the worker torchrun starts
(`python -m torch.distributed.run ... -m tests.test_training_distributed <root> <out>`). In one process group, each
rank trains through the library (the exact runs, an interrupted run and its resume) and runs the `train` stage's
main() as the stage's own relaunch would, recording every file it writes; it saves what it trained and logged to
`<out>/rank<r>.pt` for the tests to compare with 1-process runs in the test process.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from kinemic.distributed import World, gather_batch, process_group, shard
from kinemic.models.mdm import MDM
from kinemic.motion import FeatureStats
from kinemic.objectives import MemoryBank
from kinemic.teacher import TeacherCheckpoint
from kinemic.training import (
    StepInputs,
    TrainConfig,
    _own_rows,
    _student_stream,
    build_student,
    draw_batch,
    run_fingerprint,
    train_student,
)
from tests.test_distributed import _max_difference, _outputs, run_two_ranks
from tests.test_teacher import _fake_embed
from tests.test_training import TEMPLATES, _config, _data, _fewshot, _soft_pairs, _teacher

# The exact runs: a dropout-free teacher (the student copies its transformer) and no LoRA dropout, so that the only
# random masks are the text and action dropout, drawn for the whole batch and sharded; dropped often (0.3) so that a
# misaligned mask shows. Six few-shot samples (three per class): three per rank.
EXACT = {"text_mask_prob": 0.3, "action_mask_prob": 0.3, "steps": 6, "log_every": 2}
# The resume runs keep the teacher's transformer dropout (0.1), which each rank seeds per step.
RESUMABLE = {"steps": 6, "checkpoint_every": 2, "log_every": 1}
STOP_AFTER = 3  # the resume starts from step 2 and redoes step 3

# 1 vs 2 processes: the same samples and draws, but sums over the batch taken in another order (half-batch matmuls
# and GRU passes, then DDP's all-reduce of the two halves' gradients, instead of one pass over the batch), so the
# gradients differ in the last float32 bits (~1e-7 relative); the contrastive term's gradient is the same on both
# ranks and is summed then halved, which is exact. Adam divides each update by the gradient's running RMS, so those
# relative differences pass into the updates about unchanged: ~1e-7 x lr (1e-3) per step. After 6 steps we measured
# <= 7.2e-7 on the merged student weights (LoRA folded in, O(0.1-1)), <= 1.5e-6 on MIC (its GRU's initial state),
# 0 on the logit scale, and 4.2e-7 relative on the logged losses; atol 1e-5 leaves a margin of 7 and more, while a
# misaligned sample, draw or dropout mask moves weights by 1e-3 or more (checked below).
WEIGHT_ATOL = 1e-5
LOSS_RTOL = 1e-5  # the logged means: each the mean of the two slices' means
# The gradients of the last step, after 5 steps of such weight differences: measured within 2.7e-5 of each tensor's
# largest entry; a wrong share of the contrastive term (its gradient not summed over the ranks' copies, say) or a
# term left out is off by tens of percent.
GRADIENT_RTOL = 1e-3
# One exception, as the attention's key bias in MDM (tests/test_distributed.py): MIC's attention-score bias (the last
# layer of attention_net, one number) adds the same value to every frame's score, which the softmax over frames
# ignores. Its exact gradient is zero, so it is pure rounding noise, which Adam turns into steps of up to lr that
# differ between summation orders (3.6e-4 here). It cannot change an output: MIC is compared through its outputs too.
SCORE_BIAS = "attention_net.3.bias"


def _exact_teacher() -> TeacherCheckpoint:
    """test_training's tiny teacher without dropout, its text encoder named as a stage can rebuild it."""
    torch.manual_seed(0)
    model = MDM(latent_dim=32, ff_size=64, num_layers=1, num_heads=2, text_dim=16, mask_frames=True, dropout=0.0)
    stats = FeatureStats(mean=np.zeros(263, np.float32), std=np.ones(263, np.float32))
    return TeacherCheckpoint(model.eval(), stats, 20, "cosine", {"encoder": "minilm", "options": {}, "normalize": True},
                             40, "pretrain")


def _mic_outputs(mic: torch.nn.Module, state: dict[str, torch.Tensor]) -> torch.Tensor:
    """MIC's context vectors and attention for a fixed batch of features, with `state`'s weights."""
    mic.load_state_dict(state)
    features = torch.randn(3, 10, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = mic(features, torch.tensor([10, 7, 4]))
    return torch.cat([out.z.flatten(), out.attention.flatten()])


def _last_gradients(parts) -> dict[str, torch.Tensor]:
    """The gradients the last step applied (all-reduced under DDP, then clipped), by parameter name."""
    named = [(f"student.{n}", p) for n, p in parts.student.named_parameters() if p.requires_grad]
    named += [(f"mic.{n}", p) for n, p in parts.mic.named_parameters()] + [("logit_scale", parts.logit_scale)]
    return {name: p.grad.detach().clone() for name, p in named}


def _stage_params(nproc: int) -> dict:
    train = {**EXACT, "lr": 1e-3, "lora": {"rank": 4, "alpha": 8.0, "dropout": 0.0}, "mic_hidden": 8,
             "mic_output": 8, "bank_size": 4, "prior_max_frames": 24, "seed": 5, "device": "cpu", "nproc": nproc}
    return {"train": train, "runtime": {"threads": 1}}


def _stage_args(root: Path, out: str) -> list[str]:
    run = root / out
    return ["--params", str(run / "params.yaml"), "--teacher", str(root / "teacher"), "--target", str(root / "target"),
            "--prior", str(root / "prior"), "--pairs", str(root / "soft_pairs.parquet"), "--out", str(run / "student"),
            "--plots", str(run / "plots"), "--metrics", str(run / "train.json"), "--live", str(run / "live"),
            "--resume-dir", str(run / "resume"), "--previews", "0"]


def _run_stage(argv: list[str]) -> None:
    """The `train` stage's main() with the tests' bag-of-words text encoder in place of the named one."""
    import stages.train

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stages.train, "text_embedder", lambda spec, cache: _fake_embed)
        stages.train.main(argv)


def _stage_inputs(root: Path) -> None:
    """What the stage reads: teacher, prepared target and prior, soft pairs; params for 1 and 2 processes."""
    data = _data()
    _exact_teacher().save(root / "teacher" / "teacher.pt")
    _fewshot().save(root / "target")
    data.prior.save(root / "prior")
    _soft_pairs(data.prior).to_parquet(root / "soft_pairs.parquet", index=False)
    for nproc, out in ((1, "one"), (2, "two")):
        (root / out).mkdir()
        (root / out / "params.yaml").write_text(yaml.safe_dump(_stage_params(nproc)))


def _worker(root: Path, out: Path) -> None:
    """One rank: the library runs and the stage, recording every file this rank writes and every progress row."""
    import kinemic.resume
    import kinemic.training
    import stages.train

    torch.set_num_threads(1)
    writes: list[str] = []

    def recording(module, name: str):
        original = getattr(module, name)

        def record(*args, **kwargs):
            writes.append(f"{name} {args[1] if name == 'atomic_torch_save' else args[0]}")
            return original(*args, **kwargs)

        setattr(module, name, record)

    recording(kinemic.resume, "atomic_torch_save")
    recording(kinemic.training, "discard_finished")
    for name in ("atomic_output_dir", "write_json", "CurveLog", "write_curves_live"):
        recording(stages.train, name)
    rows: list[int] = []

    def progress(step: int, total: int, row: dict) -> None:
        rows.append(step)

    data = _data()
    with process_group(torch.device("cpu")) as world:  # the runs below and the stage join this group
        exact = train_student(_exact_teacher(), data, _config(**EXACT), progress=progress)
        prompted = train_student(_exact_teacher(), _data(TEMPLATES), _config(**EXACT, extra_templates=TEMPLATES))
        scratch = train_student(_exact_teacher(), data, _config(method="scratch", **EXACT))
        config = _config(**RESUMABLE)
        straight = train_student(_teacher(), data, config)
        interrupted = train_student(_teacher(), data, config, resume_dir=out / "resume", stop_after=STOP_AFTER)
        left = sorted(str(p.relative_to(out)) for p in (out / "resume").rglob("*") if p.is_file())
        resumed = train_student(_teacher(), data, config, resume_dir=out / "resume")
        library_writes = list(writes)
        _run_stage(_stage_args(root, "two"))
    torch.save({
        "world": (world.rank, world.size),
        "exact": (exact.checkpoint.model.state_dict(), exact.losses, exact.parts.mic.state_dict(),
                  exact.parts.logit_scale.detach()),
        "gradients": _last_gradients(exact.parts),
        "windows": exact.windows.to_dict(orient="list"),  # plain lists: the record loads with weights_only
        "prompted": (prompted.checkpoint.model.state_dict(), prompted.losses,
                     prompted.windows.to_dict(orient="list")),
        "scratch": (scratch.checkpoint.model.state_dict(), scratch.losses),
        "straight": (straight.checkpoint.model.state_dict(), straight.losses, straight.parts.mic.state_dict()),
        "interrupted_step": interrupted.checkpoint.extra["steps"],
        "left_after_interruption": left,
        "resumed": (resumed.checkpoint.model.state_dict(), resumed.losses, resumed.parts.mic.state_dict(),
                    resumed.resumed_from),
        "library_writes": library_writes,
        "stage_writes": writes[len(library_writes):],
        "progress": rows,
    }, out / f"rank{world.rank}.pt")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, list[dict]]:
    """The stage in one process (here) and everything in two under torchrun; each rank's record."""
    root, out = tmp_path_factory.mktemp("train"), tmp_path_factory.mktemp("ddp")
    _stage_inputs(root)
    cwd = os.getcwd()
    try:
        _run_stage(_stage_args(root, "one"))
    finally:
        os.chdir(cwd)
    run_two_ranks("tests.test_training_distributed", str(root), str(out))
    return root, [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]


def _assert_rows_close(rows: list[dict], reference: list[dict]) -> None:
    assert [sorted(r) for r in rows] == [sorted(r) for r in reference]
    for row, want in zip(rows, reference, strict=True):
        np.testing.assert_allclose([row[k] for k in sorted(row)], [want[k] for k in sorted(row)], rtol=LOSS_RTOL)


def test_two_processes_train_as_one_on_the_same_global_batch(runs, one_thread):
    ranks = runs[1]
    assert [r["world"] for r in ranks] == [(0, 2), (1, 2)]
    single = train_student(_exact_teacher(), _data(), _config(**EXACT))
    weights, losses, mic, logit_scale = ranks[0]["exact"]
    for key, value in ranks[1]["exact"][0].items():  # DDP keeps the ranks' weights identical, bit for bit
        torch.testing.assert_close(value, weights[key], rtol=0, atol=0)
    reference = single.checkpoint.model.state_dict()
    difference = max(float((weights[k] - v).abs().max()) for k, v in reference.items())
    assert difference <= WEIGHT_ATOL, f"1 vs 2 processes: student weights differ by {difference:.2e}"
    reference_mic = {k: v.clone() for k, v in single.parts.mic.state_dict().items()}
    for key, value in reference_mic.items():
        if key != SCORE_BIAS:
            torch.testing.assert_close(mic[key], value, rtol=0, atol=WEIGHT_ATOL)
    torch.testing.assert_close(_mic_outputs(single.parts.mic, mic), _mic_outputs(single.parts.mic, reference_mic),
                               rtol=0, atol=WEIGHT_ATOL)
    torch.testing.assert_close(logit_scale, single.parts.logit_scale.detach(), rtol=0, atol=WEIGHT_ATOL)
    _assert_rows_close(losses, single.losses)
    for name, value in _last_gradients(single.parts).items():  # all-reduced, the contrastive term's sum included
        if not name.endswith(SCORE_BIAS):
            difference = float((ranks[0]["gradients"][name] - value).abs().max())
            assert difference <= GRADIENT_RTOL * float(value.abs().max()), f"{name}: gradients differ by {difference}"
    # The tolerance tells runs apart: without the condition dropout, or with another seed, the weights move by far more.
    for other in (_config(**{**EXACT, "text_mask_prob": 0.0, "action_mask_prob": 0.0}), _config(**EXACT, seed=6)):
        moved = train_student(_exact_teacher(), _data(), other).checkpoint.model.state_dict()
        assert max(float((moved[k] - v).abs().max()) for k, v in reference.items()) > 100 * WEIGHT_ATOL


def test_every_rank_records_the_windows_one_process_records(runs, one_thread):
    """Each rank picks the windows of its slice; the record gathers them, so every rank, rank 0 (which writes them)
    included, ends with the whole batch's windows, those of one process."""
    single = train_student(_exact_teacher(), _data(), _config(**EXACT)).windows
    assert len(single) == 6 * 6 and single["window_start"].nunique() > 1
    for rank in runs[1]:
        pd.testing.assert_frame_equal(pd.DataFrame(rank["windows"]), single, check_dtype=False)
    root = runs[0]
    one, two = (pd.read_parquet(root / run / "plots/windows.parquet") for run in ("one", "two"))
    pd.testing.assert_frame_equal(two, one)
    assert len(one) == 6 * 6 and list(one["step"].unique()) == [1, 2, 3, 4, 5, 6]


def test_drawn_prompts_are_the_same_in_two_processes(runs, one_thread):
    """train.extra_templates: the prompts are drawn from (seed, step) for the whole batch on every rank, so two
    processes condition each sample on the prompt one process does, and train to its weights."""
    single = train_student(_exact_teacher(), _data(TEMPLATES), _config(**EXACT, extra_templates=TEMPLATES))
    weights, losses, windows = runs[1][0]["prompted"]
    reference = single.checkpoint.model.state_dict()
    assert max(float((weights[k] - v).abs().max()) for k, v in reference.items()) <= WEIGHT_ATOL
    _assert_rows_close(losses, single.losses)
    pd.testing.assert_frame_equal(pd.DataFrame(windows), single.windows, check_dtype=False)
    plain = train_student(_exact_teacher(), _data(), _config(**EXACT)).checkpoint.model.state_dict()
    assert max(float((plain[k] - v).abs().max()) for k, v in reference.items()) > 100 * WEIGHT_ATOL  # prompts count


def test_the_stage_draws_prompts_for_training_and_leaves_generation_the_class_prompt(runs, one_thread):
    from kinemic.student import StudentCheckpoint

    root = runs[0]
    (root / "prompted").mkdir()
    params = _stage_params(1)
    params["train"]["extra_templates"] = list(TEMPLATES)
    (root / "prompted" / "params.yaml").write_text(yaml.safe_dump(params))
    _run_stage(_stage_args(root, "prompted"))
    provenance = json.loads((root / "prompted/student/provenance.json").read_text())
    plain = json.loads((root / "one/student/provenance.json").read_text())
    assert provenance["class_prompts"] == plain["class_prompts"] and "train_prompts" not in plain
    assert provenance["train_prompts"] == {
        name: [prompt, *(t.replace("{label}", name) for t in TEMPLATES)]
        for name, prompt in zip(("wave slowly", "wave quickly"), plain["class_prompts"], strict=True)}
    student = StudentCheckpoint.load(root / "prompted/student/student.pt")
    assert student.class_prompts == plain["class_prompts"]  # generation conditions on the class prompt alone
    np.testing.assert_array_equal(student.prompt_embeddings, _fake_embed(plain["class_prompts"]))


def test_every_weight_of_a_scratch_student_trains_as_in_one_process(runs, one_thread):
    """The scratch student trains every MDM weight under DDP (no unused parameter); compared as the teacher's are,
    leaving out the attention's key biases, whose exact gradient is zero (tests/test_distributed.py)."""
    single = train_student(_exact_teacher(), _data(), _config(method="scratch", **EXACT))
    weights, losses = runs[1][0]["scratch"]
    reference = single.checkpoint.model.state_dict()
    assert _max_difference(reference, weights) <= WEIGHT_ATOL
    torch.testing.assert_close(_outputs(single.checkpoint.model, weights), _outputs(single.checkpoint.model, reference),
                               rtol=0, atol=WEIGHT_ATOL)
    _assert_rows_close(losses, single.losses)


def test_rank_zero_alone_writes(runs):
    main, other = runs[1]
    assert other["library_writes"] == [] and other["stage_writes"] == [] and other["progress"] == []
    saves = [w for w in main["library_writes"] if w.startswith("atomic_torch_save")]
    assert len(saves) == 2, main["library_writes"]  # step 2 of the interrupted run, step 4 of the resumed one
    assert main["progress"] == [2, 4, 6]
    assert main["left_after_interruption"] == other["left_after_interruption"]
    assert len(main["left_after_interruption"]) == 1 and main["left_after_interruption"][0].endswith("last.pt")
    kinds = [w.split()[0] for w in main["stage_writes"]]
    assert kinds == ["CurveLog", "CurveLog", "discard_finished", "write_curves_live", "atomic_output_dir",
                     "write_json", "atomic_output_dir", "write_json"], main["stage_writes"]


def test_interrupted_two_process_run_resumes_to_the_same_weights(runs):
    for rank in runs[1]:
        assert rank["interrupted_step"] == STOP_AFTER
        straight, straight_losses, straight_mic = rank["straight"]
        resumed, resumed_losses, resumed_mic, resumed_from = rank["resumed"]
        assert resumed_from == 2
        assert resumed_losses == straight_losses
        for state, reference in ((resumed, straight), (resumed_mic, straight_mic)):
            for key, value in reference.items():
                torch.testing.assert_close(state[key], value, rtol=0, atol=0)


def test_the_stage_in_two_processes_writes_what_one_process_writes(runs):
    root = runs[0]
    one, two = root / "one", root / "two"
    names = sorted(str(f.relative_to(one)) for f in one.rglob("*") if f.is_file() and "runs" not in f.parts)
    assert names == sorted(str(f.relative_to(two)) for f in two.rglob("*") if f.is_file() and "runs" not in f.parts)
    assert (one / "student/provenance.json").read_bytes() == (two / "student/provenance.json").read_bytes()
    weights = [torch.load(run / "student/student.pt", weights_only=True)["state_dict"] for run in (one, two)]
    assert max(float((weights[1][k] - v).abs().max()) for k, v in weights[0].items()) <= WEIGHT_ATOL
    metrics = [json.loads((run / "train.json").read_text()) for run in (one, two)]
    assert metrics[0].keys() == metrics[1].keys() and "final.lr" not in metrics[0]
    for key, value in metrics[0].items():
        assert metrics[1][key] == (pytest.approx(value, rel=LOSS_RTOL, abs=1e-6) if isinstance(value, float) else value)
    curves = sorted(str(f.relative_to(one / "live")) for f in (one / "live").rglob("*.tsv"))
    assert "plots/metrics/lr.tsv" in curves and "plots/metrics/contrastive.tsv" in curves
    for name in curves:
        a, b = (np.loadtxt(run / "live" / name, delimiter="\t", skiprows=1, ndmin=2) for run in (one, two))
        np.testing.assert_allclose(b, a, rtol=LOSS_RTOL)
    facts = [json.loads((run / "runs/train.json").read_text())["processes"] for run in (one, two)]
    assert facts == [1, 2]


# --------------------------------------------------------------------------------------------------------------------
# the pieces, in one process
# --------------------------------------------------------------------------------------------------------------------


def test_each_rank_drops_the_conditions_one_process_drops_on_its_rows(one_thread):
    """Under DDP a student stream draws the text and action masks of the whole batch from the step's generator, as
    the model does in one process, and applies its rows: each rank's outputs are the rows of the whole batch's."""
    teacher, data, config = _exact_teacher(), _data(), _config(**EXACT)
    parts = build_student(teacher.model, 2, config)
    parts.student.train()
    batch = draw_batch(data, config, np.random.default_rng(0), torch.device("cpu"), config.prior_max_frames)
    size = len(batch.target_idx)
    rng = torch.Generator().manual_seed(1)
    x_t, t = torch.randn(size, 12, 263, generator=rng), torch.randint(0, 20, (size,), generator=rng)
    text, mask = torch.from_numpy(data.prompt_embeddings)[batch.labels], torch.ones(size, 12, dtype=torch.bool)
    masks = torch.rand(2 * size, generator=torch.Generator().manual_seed(3)) < 0.3
    assert masks.any(), "no condition dropped: pick another seed"

    def stream(world: World) -> tuple[torch.Tensor, torch.Generator]:
        generator = torch.Generator().manual_seed(3)
        inputs = StepInputs(parts=parts, teacher=teacher.model, diffusion=teacher.diffusion(), data=data, batch=batch,
                            stats=teacher.stats, config=config, bank=MemoryBank(0), generator=generator,
                            device=torch.device("cpu"), world=world)
        own = _own_rows(world, size)
        x0, _ = _student_stream(inputs, own(x_t), own(t), own(text), own(batch.labels), own(mask), own)
        return x0, generator

    whole, whole_generator = stream(World())
    for rank in range(2):
        part, generator = stream(World(rank, 2))
        torch.testing.assert_close(part, whole[shard(size, World(rank, 2))], rtol=0, atol=1e-5)
        assert torch.equal(generator.get_state(), whole_generator.get_state())  # the whole batch's draws, no more
    base = parts.student.get_base_model()
    assert (base.config.cond_mask_prob, base.config.action_mask_prob) == (0.3, 0.3)  # the model's own, restored
    assert not base.embed_action._forward_hooks


def test_one_process_takes_the_tensors_themselves():
    value = torch.arange(6.0)
    assert _own_rows(World(), 6)(value) is value and gather_batch(value, World()) is value
    torch.testing.assert_close(_own_rows(World(1, 2), 6)(value), value[3:])


def test_nproc_is_validated_and_not_part_of_the_run():
    teacher, data = _teacher(), _data()
    assert run_fingerprint(_config(nproc=2), teacher, data) == run_fingerprint(_config(), teacher, data)
    with pytest.raises(ValueError, match="train.nproc"):
        TrainConfig(nproc=0)
    with pytest.raises(ValueError, match="divisible by train.nproc"):
        TrainConfig(target_batch=5, nproc=2)


if __name__ == "__main__":
    _worker(Path(sys.argv[1]), Path(sys.argv[2]))
