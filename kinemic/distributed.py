"""Data-parallel training under `torchrun`: the process group, this process's rank, and its share of a global batch.

A training loop that runs in N processes (`python -m torch.distributed.run --nproc_per_node=N ...`) stays the same run
as in one process: every rank draws the whole global batch from the same seeded streams, exactly as a single process
does, and keeps its contiguous slice of it (`shard`); DistributedDataParallel averages the gradients over the ranks.
Each rank's loss is the mean over an equal slice, so the average of the ranks' gradients is the single-process
gradient up to the order of float summation. Weights, optimizer and EMA then stay identical on every rank; rank 0
alone writes checkpoints and outputs (`World.is_main`).

A loss that compares samples across the batch (the student's contrastive loss and its memory bank) sees the whole
batch through `gather_batch`, an all_gather whose backward gives each rank the sum of the ranks' gradients of its own
slice, so the averaged gradients stay the single-process gradient.

Without torchrun (WORLD_SIZE unset or 1) everything here is a no-op: `process_group` yields a one-process `World`
and a loop takes its single-process path unchanged. The backend is `nccl` on CUDA and `gloo` on CPU, with a timeout of
`GROUP_TIMEOUT` for any one collective.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

log = logging.getLogger(__name__)

# How long a rank waits in one collective before the run fails (torch's defaults: 10 min for NCCL, 30 for gloo). The
# longest waits are legitimate: ranks loading data or embedding a corpus's captions at different speeds before the
# first collective, rank 0 writing a checkpoint while the others wait at the next step, and generation's uneven shares
# (one batch more on some ranks); on real data these can pass 10 minutes, while a hung rank is still caught.
GROUP_TIMEOUT = timedelta(hours=1)


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (rank 0 of 1 without torchrun)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched() -> bool:
    """Whether torchrun started this process as one of several (it sets RANK, WORLD_SIZE and LOCAL_RANK)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def current_world() -> World:
    """This process's rank and the number of processes, from torchrun's environment (rank 0 of 1 without it)."""
    if not launched():
        return World()
    return World(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", "0")))


def is_main() -> bool:
    """Rank 0, or the only process: the one that writes checkpoints, metrics and plots."""
    return current_world().is_main


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def rank_device(device: torch.device, world: World) -> torch.device:
    """The device this rank trains on: its own GPU (LOCAL_RANK, made the current one, as NCCL wants before the
    group exists) under torchrun on CUDA, else `device` unchanged."""
    if not world.distributed or device.type != "cuda":
        return device
    if device.index is not None:
        raise ValueError(f"device {str(device)!r} names one GPU, but {world.size} processes each take their own "
                         "(cuda:LOCAL_RANK): use 'cuda' or 'auto'")
    torch.cuda.set_device(world.local_rank)
    return torch.device("cuda", world.local_rank)


@contextmanager
def process_group(device: torch.device) -> Iterator[World]:
    """The process group for a torchrun launch, created on entry and destroyed on exit (`gloo` on CPU, `nccl` on
    CUDA). A group someone else created is used and left alone; without torchrun this yields `World()` and does
    nothing."""
    world = current_world()
    if not world.distributed or dist.is_initialized():
        yield world
        return
    dist.init_process_group(backend_for(device), timeout=GROUP_TIMEOUT)
    try:
        yield world
    finally:
        dist.destroy_process_group()


def shard(batch_size: int, world: World) -> slice:
    """This rank's contiguous slice of a global batch of `batch_size` samples: global batch / N samples each."""
    if batch_size % world.size:
        raise ValueError(f"the global batch_size ({batch_size}) must be divisible by the number of processes "
                         f"({world.size}): each takes an equal slice, so that the average of their gradients is the "
                         "gradient of the whole batch")
    per_rank = batch_size // world.size
    return slice(world.rank * per_rank, (world.rank + 1) * per_rank)


def rank_generator(generator: torch.Generator, batch_size: int, world: World) -> torch.Generator:
    """A copy of the shared CPU generator whose next `batch_size / N` per-sample uniforms are this rank's slice of the
    `batch_size` uniforms the shared generator would draw next.

    A CPU `torch.rand(n)` takes one word of the Mersenne Twister stream per element, in order, so skipping the lower
    ranks' draws lines this rank up with its slice. The shared generator itself is not advanced.
    """
    local = torch.Generator(device="cpu")
    local.set_state(generator.get_state())
    skip = shard(batch_size, world).start
    if skip:
        torch.rand(skip, generator=local)
    return local


def step_seed(seed: int, step: int, rank: int) -> int:
    """A seed for one rank's global torch stream (dropout) at one step: distinct across ranks, and a function of the
    step alone, so a resumed run draws the same masks without saving every rank's stream."""
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1, np.uint64)[0]) >> 1


def gather_batch(tensor: torch.Tensor, world: World) -> torch.Tensor:
    """The ranks' slices (B / N, ...) put together in rank order: the whole batch (B, ...), as one process holds it,
    on every rank; `tensor` itself in one process.

    Gradients flow back to every rank's slice: the backward sums, for each slice, the gradients that all ranks' copies
    of the batch received. When every rank computes the same loss of the whole batch, that is N times the loss's
    gradient, which DDP's average over the N ranks turns back into the single-process gradient.
    """
    if not world.distributed:
        return tensor
    return _GatherBatch.apply(tensor, world)


class _GatherBatch(torch.autograd.Function):
    """all_gather with the gradient `gather_batch` describes (torch.distributed.nn.functional.all_gather has the same
    gradient, but is deprecated in torch 2.14 and warns)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, world: World) -> torch.Tensor:
        ctx.rows = shard(tensor.shape[0] * world.size, world)
        slices = [torch.empty_like(tensor) for _ in range(world.size)]
        dist.all_gather(slices, tensor.contiguous())
        return torch.cat(slices)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        total = grad.clone(memory_format=torch.contiguous_format)  # all_reduce sums in place: not autograd's buffer
        dist.all_reduce(total)  # every rank's gradient of the whole batch, summed
        return total[ctx.rows], None


def mean_over_ranks(value: torch.Tensor) -> torch.Tensor:
    """The mean of a tensor over all ranks (a logged loss: the mean of the equal slices' means is the batch's)."""
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / dist.get_world_size()


def check_agree(value: int, what: str, device: torch.device) -> None:
    """Raise on every rank unless all ranks hold the same `value` (e.g. the step a resume starts from)."""
    bounds = torch.tensor([value, -value], dtype=torch.int64, device=device)
    dist.all_reduce(bounds, op=dist.ReduceOp.MAX)
    if int(bounds[0]) != -int(bounds[1]):
        raise RuntimeError(f"the ranks disagree on {what} (from {-int(bounds[1])} to {int(bounds[0])}; this rank "
                           f"has {value}): every rank must see the same resume directory")


def share_threads(threads: int) -> None:
    """Under torchrun, give each of the N ranks threads / N (at least 1) of the `threads` the stage would use alone,
    so N processes do not oversubscribe the cores; without torchrun, leave the threads as they are."""
    world = current_world()
    if world.distributed:
        from kinemic.runtime import apply_threads

        apply_threads(max(1, threads // world.size))


def torchrun_command(nproc: int, module: str, argv: Sequence[str]) -> list[str]:
    """`python -m torch.distributed.run --standalone --nproc_per_node=N -m <module> <argv>`."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", module, *argv]


def relaunch(nproc: int, module: str, argv: Sequence[str]) -> bool:
    """Run `python -m <module> <argv>` again in `nproc` processes under torchrun and wait for it; False (nothing done)
    when one process is asked for or this process already is one of torchrun's. A failed launch raises."""
    if nproc <= 1 or "LOCAL_RANK" in os.environ:  # inside torchrun (even of one process): never nest launches
        return False
    command = torchrun_command(nproc, module, argv)
    log.info("relaunching under torchrun: %s", " ".join(command))
    subprocess.run(command, check=True)
    return True


def batch_share(batches: int, world: World) -> range:
    """This rank's contiguous run of `batches` batches (of a sampling request, say): the first `batches % N` ranks
    take one more, and the ranks' runs, in rank order, are the batches in order."""
    per_rank, extra = divmod(batches, world.size)
    start = world.rank * per_rank + min(world.rank, extra)
    return range(start, start + per_rank + (world.rank < extra))


def gather_in_rank_order(items: list, world: World) -> list | None:
    """Every rank's `items` (picklable), concatenated in rank order, on rank 0 (which alone writes them); None on the
    other ranks, which so never hold the whole set. `items` itself in one process."""
    if not world.distributed:
        return list(items)
    shares: list | None = [None] * world.size if world.is_main else None
    dist.gather_object(list(items), shares, dst=0)
    return [item for share in shares for item in share] if world.is_main else None


def warn_cpu_processes(section: str, nproc: int, device: torch.device, same: str) -> None:
    """Warn that `<section>.nproc` > 1 on a CPU gains little: the processes share the same cores. `same` says what
    stays as with one process (the output, the weights up to float order)."""
    if nproc > 1 and device.type == "cpu" and is_main():  # the launching process and rank 0: once each, not per rank
        log.warning("%s.nproc=%d on a CPU: the processes share the same cores, so this gains little over one process "
                    "(%s); it is meant for one GPU per process", section, nproc, same)
