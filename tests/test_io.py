"""Atomic files: the old file or the whole new one, never half of it; the rename synced to disk where it can be."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from kinemic import io
from kinemic.io import atomic_file, write_json


def _is_folder(fd: int) -> bool:
    return stat.S_ISDIR(os.fstat(fd).st_mode)


def test_the_folder_is_synced_after_the_rename(tmp_path, monkeypatch):
    path, real_fsync, synced = tmp_path / "out.json", os.fsync, []

    def fsync(fd: int) -> None:
        synced.append(("folder" if _is_folder(fd) else "file", path.exists()))
        real_fsync(fd)

    monkeypatch.setattr(io.os, "fsync", fsync)
    write_json(path, {"a": 1})
    assert synced == [("file", False), ("folder", True)]  # the data before the rename, the folder after it
    assert path.read_text() == '{\n  "a": 1\n}\n'


def test_a_folder_that_cannot_be_opened_is_not_synced(tmp_path, monkeypatch):
    real_open = os.open

    def no_folders(path, flags, *args, **kwargs):
        if os.path.isdir(path):
            raise PermissionError(errno.EACCES, "a folder is not a file", str(path))  # what Windows says
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(io.os, "open", no_folders)
    write_json(tmp_path / "out.json", [1])
    assert (tmp_path / "out.json").read_text() == "[\n  1\n]\n"


@pytest.mark.parametrize(("code", "tolerated"), [(errno.EINVAL, True), (errno.EIO, False)])
def test_a_folder_sync_the_file_system_refuses_is_tolerated_a_disk_error_is_not(tmp_path, monkeypatch, code,
                                                                                 tolerated):
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if _is_folder(fd):
            raise OSError(code, os.strerror(code))
        real_fsync(fd)

    monkeypatch.setattr(io.os, "fsync", fsync)
    if tolerated:
        write_json(tmp_path / "out.json", 2)
    else:
        with pytest.raises(OSError, match=os.strerror(code)):
            write_json(tmp_path / "out.json", 2)
    assert (tmp_path / "out.json").read_text() == "2\n"  # either way the new file is in place: the rename came first


def test_a_failed_block_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="half"), atomic_file(path) as tmp:
        tmp.write_text("new, half")
        raise RuntimeError("half written")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]
