"""Reading the files a pipeline stage wrote: a missing, truncated or corrupt file fails naming itself, the stage that
writes it, and the command that rebuilds it.

A file cut short (a full disk, a copy interrupted outside DVC) otherwise fails in the words of the library reading it
(`mmap length is greater than file size`, `Parquet magic bytes not found in footer`, `File is not a zip file`), which
name neither the file nor what to do.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

# What numpy, pandas/pyarrow and zipfile raise on a truncated or malformed file (pyarrow's ArrowInvalid is a
# ValueError; a missing array in an .npz is a KeyError).
READ_ERRORS = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, pickle.UnpicklingError)
# torch.load raises those too, and its zip reader a RuntimeError ("failed finding central directory")
TORCH_READ_ERRORS = (*READ_ERRORS, RuntimeError)


def read_stage_file(path: str | Path, stage: str, read: Callable[[Path], T],
                    errors: tuple[type[BaseException], ...] = READ_ERRORS) -> T:
    """`read(path)`, or an error that names `path` and says to re-run `stage`, the stage that writes it.

    `errors`: what `read` raises on a truncated or malformed file, when it raises more than numpy and pandas do
    (`TORCH_READ_ERRORS` for torch.load).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; run `dvc repro {stage}` first")
    try:
        return read(path)
    except errors as err:
        raise ValueError(
            f"{path}: cannot be read ({type(err).__name__}: {err}); the file is truncated, corrupt or from an older "
            f"version of stage '{stage}', which writes it: re-run that stage with `dvc repro -f {stage}`"
        ) from err
