"""Data-parallel teacher pretraining (kinemic.distributed): CPU, gloo, 2 processes under torchrun, the tiny model.

The 2-process runs happen once per module: this file is also the worker torchrun starts
(`python -m torch.distributed.run ... -m tests.test_distributed <out>`), each rank saving what it trained and what it
wrote to `<out>/rank<r>.pt` for the tests to compare with a 1-process run in the test process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from kinemic import distributed
from kinemic.distributed import World
from kinemic.teacher import TeacherConfig, pretrain_teacher, run_fingerprint
from tests.test_teacher import TINY_MODEL, _config, _fake_embed, _tiny_prior

REPO_ROOT = Path(__file__).resolve().parents[1]

# Dropout masks are drawn per rank for its own slice, so only a dropout-free model trains exactly as one process does.
EXACT = {"model": {**TINY_MODEL, "dropout": 0.0}}
# The resume runs keep dropout (0.1) and add EMA: both must survive an interruption bit for bit.
RESUMABLE = {"ema_decay": 0.7}
STOP_AFTER = 6  # checkpoint_every is 4: the resume starts from step 4 and redoes steps 5-6

# 1 vs 2 processes: the same samples, but the weight gradients are sums over the batch's frames taken in another order
# (two half-batch matmuls, then DDP's all-reduce of the halves, instead of one matmul over the whole batch), so they
# differ in the last float32 bits (~1e-7 relative). Adam divides each step by the gradient's running RMS, so these
# relative differences pass into the updates about unchanged: ~1e-7 x lr (1e-3) per step. After 12 steps we measured
# <= 2.4e-7 on weights of O(0.1), and 1e-7 on the logged losses (~1); atol 1e-5 leaves a margin of 40, while a wrong
# slice or a misaligned random stream (another caption, timestep, noise or text-dropout draw) moves weights by ~1e-3.
WEIGHT_ATOL = 1e-5
# One exception: the attention's key bias (the middle third of `in_proj_bias`). Its exact gradient is zero (it adds
# the same q.b_k to all of a query's logits, which softmax ignores), so its gradient is pure rounding noise (~1e-10)
# and Adam's update noise / (|noise| + eps) gives it steps of up to lr that differ between any two summation orders
# (5e-5 after 12 steps here). It cannot change any output, so the tests compare it through the outputs instead.
OUTPUT_ATOL = 1e-5


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_two_ranks(module: str, *args: str) -> None:
    """`python -m <module> <args>` in 2 CPU processes under torchrun (gloo), one thread each, from the repository
    root; a failed rank fails the calling test with the output's tail. The distributed test files' one launcher."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT), "MASTER_ADDR": "127.0.0.1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
               "--master_addr=127.0.0.1", f"--master_port={_free_port()}", "-m", module, *args]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]


def _worker(out: Path) -> None:
    """One rank: the three 2-process runs, recording every checkpoint file this rank writes or removes."""
    import kinemic.resume
    import kinemic.teacher

    torch.set_num_threads(1)
    writes: list[str] = []
    save, discard = kinemic.resume.atomic_torch_save, kinemic.teacher.discard_finished

    def recording_save(data, path):
        writes.append(f"save {path}")
        save(data, path)

    def recording_discard(path, step, steps):
        writes.append(f"discard {path}")
        discard(path, step, steps)

    kinemic.resume.atomic_torch_save = recording_save
    kinemic.teacher.discard_finished = recording_discard

    prior = _tiny_prior()
    with distributed.process_group(torch.device("cpu")) as world:  # the runs below join this group
        exact = pretrain_teacher(prior, _fake_embed, _config(**EXACT), {"name": "fake"})
        config = _config(**RESUMABLE)
        straight = pretrain_teacher(prior, _fake_embed, config, {"name": "fake"})
        interrupted = pretrain_teacher(prior, _fake_embed, config, {"name": "fake"}, resume_dir=out / "resume",
                                       stop_after=STOP_AFTER)
        left = sorted(str(p.relative_to(out)) for p in (out / "resume").rglob("*") if p.is_file())
        resumed = pretrain_teacher(prior, _fake_embed, config, {"name": "fake"}, resume_dir=out / "resume")
    torch.save({
        "world": (world.rank, world.size),
        "exact": (exact.teacher.model.state_dict(), exact.losses),
        "straight": (straight.teacher.model.state_dict(), straight.losses),
        "interrupted_step": interrupted.teacher.step,
        "left_after_interruption": left,
        "resumed": (resumed.teacher.model.state_dict(), resumed.losses, resumed.resumed_from),
        "writes": writes,
    }, out / f"rank{world.rank}.pt")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("ddp")
    run_two_ranks("tests.test_distributed", str(out))
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]


def _max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """The largest weight difference, the attention's key biases left out (they cannot change an output)."""
    assert a.keys() == b.keys()
    width = TINY_MODEL["latent_dim"]
    differences = []
    for key in a:
        delta = (a[key] - b[key]).abs()
        if key.endswith("self_attn.in_proj_bias"):  # (3D,): query, key and value biases
            delta[width : 2 * width] = 0
        differences.append(float(delta.max()))
    return max(differences)


def _outputs(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> torch.Tensor:
    """The model's x0 predictions for a fixed batch of noisy motions, with `state`'s weights."""
    model.load_state_dict(state)
    generator = torch.Generator().manual_seed(0)
    x_t = torch.randn(4, 24, 263, generator=generator)
    t = torch.randint(0, 20, (4,), generator=generator)
    text = torch.from_numpy(_fake_embed(["a person waves slowly", "someone moves quickly"] * 2))
    mask = torch.arange(24)[None, :] < torch.tensor([24, 20, 16, 12])[:, None]
    with torch.no_grad():
        return model(x_t, t, text_emb=text, mask=mask)


def test_two_processes_train_as_one_on_the_same_global_batches(ranks, one_thread):
    assert [r["world"] for r in ranks] == [(0, 2), (1, 2)]
    prior = _tiny_prior()
    single = pretrain_teacher(prior, _fake_embed, _config(**EXACT), {"name": "fake"})
    weights, losses = ranks[0]["exact"]
    for key, value in ranks[1]["exact"][0].items():  # DDP keeps the ranks' weights identical, bit for bit
        torch.testing.assert_close(value, weights[key], rtol=0, atol=0)
    reference = {k: v.clone() for k, v in single.teacher.model.state_dict().items()}
    difference = _max_difference(reference, weights)
    assert difference <= WEIGHT_ATOL, f"1 vs 2 processes: weights differ by {difference:.2e}"
    torch.testing.assert_close(_outputs(single.teacher.model, weights), _outputs(single.teacher.model, reference),
                               rtol=0, atol=OUTPUT_ATOL)
    assert [s for s, _ in losses] == [s for s, _ in single.losses]
    np.testing.assert_allclose([v for _, v in losses], [v for _, v in single.losses], rtol=1e-5)
    other_seed = pretrain_teacher(prior, _fake_embed, _config(**EXACT, seed=4), {"name": "fake"})
    assert _max_difference(reference, other_seed.teacher.model.state_dict()) > 100 * WEIGHT_ATOL


def test_rank_zero_alone_writes_checkpoints(ranks):
    main, other = ranks
    assert other["writes"] == []
    saves = [w for w in main["writes"] if w.startswith("save")]
    assert len(saves) == 1 + 1, main["writes"]  # step 4 of the interrupted run, step 8 of the resumed one
    assert main["left_after_interruption"] == other["left_after_interruption"]
    assert len(main["left_after_interruption"]) == 1 and main["left_after_interruption"][0].endswith("last.pt")


def test_interrupted_two_process_run_resumes_to_the_same_weights(ranks):
    for rank in ranks:
        assert rank["interrupted_step"] == STOP_AFTER
        straight, straight_losses = rank["straight"]
        resumed, resumed_losses, resumed_from = rank["resumed"]
        assert resumed_from == 4
        assert resumed_losses == straight_losses
        for key, value in straight.items():
            torch.testing.assert_close(resumed[key], value, rtol=0, atol=0)


# --------------------------------------------------------------------------------------------------------------------
# the pieces, in one process
# --------------------------------------------------------------------------------------------------------------------


def test_shard_slices_the_global_batch():
    assert distributed.shard(6, World()) == slice(0, 6)
    assert [distributed.shard(6, World(r, 3)) for r in range(3)] == [slice(0, 2), slice(2, 4), slice(4, 6)]
    with pytest.raises(ValueError, match="divisible by the number of processes"):
        distributed.shard(6, World(0, 4))


@pytest.mark.parametrize(("batch_size", "size"), [(6, 2), (64, 4), (40, 2)])
def test_rank_generators_draw_their_slice_of_the_batch(batch_size, size):
    """The layout `rank_generator` relies on: a CPU torch.rand takes the stream's words one per element, in order."""
    generator = torch.Generator().manual_seed(7)
    torch.randn(5, generator=generator)
    copy = torch.Generator()
    copy.set_state(generator.get_state())
    whole = torch.rand(batch_size, generator=copy)
    for rank in range(size):
        world = World(rank, size)
        part = torch.rand(batch_size // size, generator=distributed.rank_generator(generator, batch_size, world))
        torch.testing.assert_close(part, whole[distributed.shard(batch_size, world)], rtol=0, atol=0)
    assert torch.equal(generator.get_state(), torch.Generator().manual_seed(7).get_state()) is False
    torch.testing.assert_close(torch.rand(3, generator=generator), whole[:3], rtol=0, atol=0)  # not advanced


def test_step_seeds_differ_across_ranks_and_steps():
    seeds = {distributed.step_seed(10, step, rank) for step in range(50) for rank in range(4)}
    assert len(seeds) == 200 and all(0 <= s < 2**63 for s in seeds)


def test_one_process_is_left_alone(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert not distributed.launched() and distributed.is_main()
    with distributed.process_group(torch.device("cpu")) as world:
        assert world == World() and not torch.distributed.is_initialized()
    assert distributed.rank_device(torch.device("cpu"), world) == torch.device("cpu")
    assert distributed.relaunch(1, "stages.teacher", []) is False
    monkeypatch.setenv("WORLD_SIZE", "1")  # torchrun with one process: still the single-process path
    assert not distributed.launched()
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert distributed.relaunch(2, "stages.teacher", []) is False  # never nests torchrun in torchrun


def test_torchrun_command_reruns_the_stage_with_its_arguments():
    command = distributed.torchrun_command(2, "stages.teacher", ["--prior", "data/prepared/prior"])
    assert command[1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
                           "stages.teacher", "--prior", "data/prepared/prior"]
    assert command[0] == sys.executable


def test_nproc_is_validated_and_not_part_of_the_run():
    prior = _tiny_prior()
    table = torch.from_numpy(_fake_embed(prior.captions["caption"].tolist()))
    assert run_fingerprint(_config(nproc=2), prior, table) == run_fingerprint(_config(), prior, table)
    with pytest.raises(ValueError, match="teacher.nproc"):
        TeacherConfig(nproc=0)
    with pytest.raises(ValueError, match="divisible by teacher.nproc"):
        TeacherConfig(batch_size=6, nproc=4)


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))


def test_more_processes_on_a_cpu_warn_once_that_they_share_the_cores(caplog):
    from kinemic.distributed import warn_cpu_processes

    with caplog.at_level("WARNING"):
        warn_cpu_processes("teacher", 1, torch.device("cpu"), "same")
        warn_cpu_processes("teacher", 2, torch.device("cuda"), "same")
        assert not caplog.records
        warn_cpu_processes("teacher", 2, torch.device("cpu"), "the weights are the same")
    assert len(caplog.records) == 1 and "teacher.nproc=2 on a CPU" in caplog.text and "the weights are" in caplog.text
