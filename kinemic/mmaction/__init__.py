"""mmaction2 (OpenMMLab) as an optional second home for kinemic's ST-GCN: an independent oracle, exports, a backend.

Why: people who train skeleton classifiers use PYSKL or its maintained successor mmaction2. This package lets them
take the project's PYSKL pickles and classifiers there unchanged, and lets the tests check kinemic's ST-GCN against an
implementation written by someone else.

Modules, one job each:
- `checkpoint`: kinemic <-> mmaction2 state dicts and checkpoint files (the head is `fc_cls` here, `fc` there).
- `model`: the mmaction2 `RecognizerGCN` config equal to a kinemic `STGCNConfig`.
- `transforms`: pelvis centring and kinemic's clip sampling as mmaction2 pipeline transforms (imports mmaction2).
- `hooks`: kinemic's BatchNorm recalibration as an mmengine hook for exported configs (imports mmaction2).
- `export`: an mmaction2 training config written next to a PYSKL pickle.
- `backend`: kinemic's classifier protocol trained by mmengine's runner on mmaction2's STGCN (imports mmaction2).

Only `transforms`, `hooks` and `backend` need the `mm` extra (`pip install -e ".[mm]"`, or `make setup-mm`);
everything else is plain Python and torch, so `import kinemic.mmaction` works in the core install.
"""

from __future__ import annotations

MM_EXTRA_HINT = (
    "the mmaction2 stack is not installed; install the optional extra with `pip install -c constraints.txt -e '.[mm]'` "
    "(or `make setup-mm`)"
)


def require_mm() -> None:
    """Import mmaction2 (which checks its mmcv / mmengine versions), or raise ImportError saying how to install it."""
    try:
        import mmaction  # noqa: F401
    except ImportError as err:
        raise ImportError(f"{MM_EXTRA_HINT} ({err})") from err
