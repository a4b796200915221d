"""Resume checkpoints shared by the teacher and student loops: path, random streams, atomic save, clean-up."""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from kinemic.resume import (
    checkpoint_due,
    discard_finished,
    load_resume,
    resume_file,
    save_resume,
    update_with_array,
    update_with_tensor,
)


def test_resume_file_is_named_by_the_fingerprint_and_off_without_a_folder(tmp_path):
    def never() -> str:
        raise AssertionError("the fingerprint is a full hash: not computed when resuming is off")

    assert resume_file(None, never) is None
    assert resume_file(tmp_path, lambda: "abc") == tmp_path / "abc" / "last.pt"


def test_save_and_load_restore_every_random_stream(tmp_path):
    path = tmp_path / "run" / "last.pt"
    rng, generator = np.random.default_rng(1), torch.Generator().manual_seed(2)
    torch.manual_seed(3)
    assert load_resume(path, rng, generator) is None
    save_resume(path, {"step": 5, "losses": [(5, 0.5)]}, rng, generator)
    expected = (rng.random(3), torch.rand(3, generator=generator), torch.rand(3))

    rng, generator = np.random.default_rng(9), torch.Generator().manual_seed(9)
    torch.manual_seed(9)
    state = load_resume(path, rng, generator)
    assert state["step"] == 5 and state["losses"] == [(5, 0.5)]
    np.testing.assert_array_equal(rng.random(3), expected[0])
    torch.testing.assert_close(torch.rand(3, generator=generator), expected[1], rtol=0, atol=0)
    torch.testing.assert_close(torch.rand(3), expected[2], rtol=0, atol=0)
    assert not list(path.parent.glob(".*.tmp")), "the write is atomic: no temporary file is left"


def test_checkpoints_are_due_every_n_steps_but_the_last_and_removed_when_finished(tmp_path):
    path = tmp_path / "last.pt"
    assert [s for s in range(1, 11) if checkpoint_due(path, s, 3, 9)] == [3, 6]
    assert not checkpoint_due(None, 3, 3, 9)
    path.write_bytes(b"x")
    discard_finished(path, 8, 9)
    assert path.exists()
    discard_finished(path, 9, 9)
    assert not path.exists()
    discard_finished(None, 9, 9)


def test_hashing_sees_shape_and_dtype_not_only_bytes():
    def digest(feed, value) -> str:
        h = hashlib.sha256()
        feed(h, value)
        return h.hexdigest()

    a = np.arange(6, dtype=np.float32)
    assert digest(update_with_array, a) != digest(update_with_array, a.reshape(2, 3))
    assert digest(update_with_array, a) != digest(update_with_array, a.view(np.int32))
    t = torch.arange(6, dtype=torch.bfloat16)
    assert digest(update_with_tensor, t) == digest(update_with_tensor, t.clone())
    assert digest(update_with_tensor, t) != digest(update_with_tensor, t.reshape(3, 2))
