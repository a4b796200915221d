"""Resume checkpoints of the training loops (teacher pretraining, student training): where they live, the random
streams they carry besides the loop's own state, and the hashing that names a run.

A run's checkpoint lives at `resume_dir / fingerprint / last.pt`, the fingerprint hashing every byte of the run's
config and inputs, so a checkpoint is only ever reused by the same run. Besides the loop's own state (weights,
optimizer, losses, step, partial log window) it holds the three random streams a loop draws from: the numpy
Generator, the CPU torch Generator and the global torch stream (dropout). Restoring all three makes an interrupted and
resumed run end with the same weights as an uninterrupted one. Writes are atomic; a finished run removes its file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kinemic.checkpoints import atomic_torch_save, load_torch_file

RESUME_FILE = "last.pt"


def update_with_array(digest: Any, array: np.ndarray) -> None:
    """Feed dtype, shape and every byte of `array` to `digest`, without copying a contiguous (or memory-mapped) array.

    The shape goes in too, so the same bytes split into other arrays (e.g. other motion lengths) hash differently.
    """
    array = np.ascontiguousarray(array)
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    digest.update(memoryview(array).cast("B"))


def update_with_tensor(digest: Any, tensor: torch.Tensor) -> None:
    """As `update_with_array`, for a tensor of any dtype (bf16 has no numpy twin: its raw bytes are hashed)."""
    tensor = tensor.detach().cpu().contiguous()
    digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
    digest.update(memoryview(tensor.reshape(-1).view(torch.uint8).numpy()))


def resume_file(resume_dir: Path | None, fingerprint: Callable[[], str]) -> Path | None:
    """The run's checkpoint path, or None when resuming is off (the fingerprint, a full hash, is then not computed)."""
    if resume_dir is None:
        return None
    return Path(resume_dir) / fingerprint() / RESUME_FILE


def load_resume(path: Path | None, rng: np.random.Generator, generator: torch.Generator) -> dict[str, Any] | None:
    """The saved loop state, with the three random streams restored in place; None when there is nothing to resume."""
    if path is None or not path.is_file():
        return None
    state = load_torch_file(path)
    rng.bit_generator.state = state["numpy_rng"]
    generator.set_state(state["torch_rng"])
    torch.set_rng_state(state["global_rng"])
    return state


def save_resume(path: Path, state: dict[str, Any], rng: np.random.Generator, generator: torch.Generator) -> None:
    """Write the loop's state with the three random streams, atomically (an interruption never leaves half a file)."""
    atomic_torch_save(
        {
            **state,
            "numpy_rng": rng.bit_generator.state,
            "torch_rng": generator.get_state(),
            "global_rng": torch.get_rng_state(),
        },
        path,
    )


def checkpoint_due(path: Path | None, step: int, every: int, steps: int) -> bool:
    """Whether to write a resume checkpoint after `step`: every `every` steps, never at the last one."""
    return path is not None and step % every == 0 and step < steps


def discard_finished(path: Path | None, step: int, steps: int) -> None:
    """Remove a finished run's checkpoint: its outputs now live in the stage's output."""
    if path is not None and step >= steps and path.exists():
        path.unlink()
