"""Shared test fixtures.

The official-output parity data lives in the repository (`tests/fixtures/parity`, copied from `../shared`), so every
clone runs the parity tests and a missing fixture is a failure. Only the real NTU-VIBE samples stay in `../shared`
(they are not ours to redistribute); their tests skip cleanly when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("KINEMIC_SHARED", REPO_ROOT.parent / "shared"))
PARITY_DIR = REPO_ROOT / "tests" / "fixtures" / "parity"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
torch.set_num_threads(min(2, torch.get_num_threads()))


def _shared_path(*parts: str) -> Path:
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: these checks need the shared reference data beside the checkout (../shared)")
    return path


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    """`tests/fixtures/parity`: outputs of the official HumanML3D and MDM code (provenance in its README)."""
    if not PARITY_DIR.is_dir():
        raise FileNotFoundError(
            f"{PARITY_DIR} is missing: the parity fixtures are part of the repository; restore them with "
            "`git checkout -- tests/fixtures/parity`"
        )
    return PARITY_DIR


@pytest.fixture(scope="session")
def ntu_fewshot_dir() -> Path:
    """`../shared/data/ntu-vibe-fewshot`: the 30 real NTU-VIBE few-shot samples in HumanML3D layout."""
    return _shared_path("data", "ntu-vibe-fewshot")


@pytest.fixture(scope="session")
def ntu_metadata_path() -> Path:
    """`../shared/data/ntu_metadata.json`: NTU RGB+D 120 class names and caption templates."""
    return _shared_path("data", "ntu_metadata.json")


@pytest.fixture(scope="session")
def humanml_parity(parity_dir: Path):
    with np.load(parity_dir / "humanml3d_features.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def one_thread():
    """Tiny nets run fastest on one thread, and on a busy 2-core machine OpenMP spin-waits make two threads up to 10x
    slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def pytest_collection_modifyitems(config, items):
    """`@pytest.mark.gpu` tests need CUDA; elsewhere they skip, saying why."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (none here); run on a GPU machine to check the CUDA paths")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
