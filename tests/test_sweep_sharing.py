"""A sweep shared between two machines through DVC's own engine (README "Sweeps across machines").

Two clones of the committed HEAD stand for machines A and B; a bare clone is their Git remote `origin` and a folder is
their DVC remote, all under tmp_path. A runs an experiment of the real pipeline (stages validate and synthesize on a
tiny world) and pushes it with `dvc exp push origin`; B pulls it with `dvc exp pull origin`, sees it with its metrics
in `dvc exp show`, applies it and gets A's outputs byte for byte from the DVC remote without running a stage; B runs
its own experiment and pushes it; A pulls it, and either clone lists both runs as `scripts/results_table.py` reads
them.

The clones start from HEAD without `dvc.lock`, a pipeline that has not run yet: `dvc exp run` resolves the top-level
`plots` of dvc.yaml when it commits an experiment, and a lock naming output directories (plots/teacher, ...) whose
cache is neither on the machine nor on the DVC remote makes it fail (DVC 3.67: "failed to load directory
('plots', 'teacher')"). A real sweep starts from a baseline whose outputs were pushed once (`dvc push`) and pulled on
every machine; reproducing the whole baseline here would take minutes.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# A world of 4 prior motions and 36 target clips, no previews: validate + synthesize take seconds.
SMALL = ["-S", "synthetic.prior.num_motions=4", "-S", "synthetic.target.num_performers=2",
         "-S", "synthetic.target.clips_per_class=2", "-S", "synthetic.previews.enabled=false"]
OUTPUTS = ("data/validated.json", "data/raw/synthetic", "metrics/synthesize.json")


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",  # `python` of the stage commands
        "DVC_NO_ANALYTICS": "1",
        "DVC_SITE_CACHE_DIR": str(tmp / "dvc-site"),  # not /var/tmp/dvc
        "DVC_GLOBAL_CONFIG_DIR": str(tmp / "dvc-global"),  # a user's global default remote must not leak in
        "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "1"),
    })
    return env


def _run(env: dict, cwd: Path, *args: str) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode:
        raise AssertionError(f"`{' '.join(args)}` in {cwd.name} exited {done.returncode}:\n{done.stdout}\n"
                             f"{done.stderr}")
    return done.stdout


def _machine(env: dict, root: Path, name: str, remote: Path, template: bool, *clone_args: str) -> Path:
    """A clone of origin with a git identity and the shared DVC remote in its git-ignored local config: copied from
    docs/remotes/local.config, or set with `dvc remote add --local`."""
    clone = root / name
    _run(env, root, "git", "clone", "-q", *clone_args, str(root / "origin.git"), name)
    for key, value in (("user.name", f"machine {name}"), ("user.email", f"{name}@example.org"),
                       ("commit.gpgsign", "false")):
        _run(env, clone, "git", "config", key, value)
    if template:
        text = (REPO / "docs" / "remotes" / "local.config").read_text()
        (clone / ".dvc" / "config.local").write_text(text.replace("/mnt/shared/kinemic-dvc", str(remote)))
    else:
        _dvc(env, clone, "remote", "add", "--local", "-d", "storage", str(remote))
    return clone


def _dvc(env: dict, cwd: Path, *args: str) -> str:
    return _run(env, cwd, sys.executable, "-m", "dvc", *args)


def _apply(env: dict, clone: Path, name: str) -> None:
    """`dvc exp apply`. It applies the experiment and checks out its outputs, then fails on the outputs that have no
    hash in dvc.lock (their stages never ran here, see the module docstring): those, and only those, may be listed."""
    done = subprocess.run([sys.executable, "-m", "dvc", "exp", "apply", name], cwd=clone, env=env,
                          capture_output=True, text=True)
    if done.returncode:
        header = "Checkout failed for following targets:"
        assert header in done.stderr, done.stderr
        failed = set(done.stderr.split(header, 1)[1].split("Is your cache up to date?")[0].split())
        assert failed and not failed & {*OUTPUTS, "data/raw"}, done.stderr


def _hashes(clone: Path) -> dict[str, str]:
    files = [f for out in OUTPUTS for f in sorted([clone / out, *(clone / out).rglob("*")]) if f.is_file()]
    assert len(files) > 10, files
    return {str(f.relative_to(clone)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def _experiments(env: dict, clone: Path) -> tuple[list[dict], dict[str, dict]]:
    """`dvc exp show --json` and its finished experiments by name (their last rev's data)."""
    shown = json.loads(_dvc(env, clone, "exp", "show", "--json"))
    exps = {}
    for entry in shown:
        for exp in entry.get("experiments") or []:
            if exp.get("name"):
                exps[exp["name"]] = exp["revs"][0]["data"]
    return shown, exps


def _results_table_runs(shown: list[dict]) -> set[str]:
    """The run names scripts/results_table.py reads from `dvc exp show --json` (kinemic.results.read_runs)."""
    from kinemic.results import dvc_runs

    return {run.name for run in dvc_runs(shown)}


@pytest.mark.slow
def test_a_sweep_shared_between_two_clones(tmp_path):
    env = _env(tmp_path)
    remote = tmp_path / "dvc-remote"
    remote.mkdir()
    _run(env, tmp_path, "git", "clone", "-q", "--bare", str(REPO), "origin.git")

    # Machine A: the baseline (no stage has run yet, see the module docstring), then part of the sweep.
    a = _machine(env, tmp_path, "a", remote, True)
    assert _run(env, a, "git", "check-ignore", ".dvc/config.local").strip() == ".dvc/config.local"
    assert "storage" not in (a / ".dvc" / "config").read_text()  # the remote stays out of the repository
    _run(env, a, "git", "switch", "-q", "-c", "sweep")  # a branch, whatever HEAD the repository was cloned at
    _run(env, a, "git", "rm", "-q", "dvc.lock")
    _run(env, a, "git", "commit", "-q", "-m", "baseline: the pipeline has not run yet")
    _run(env, a, "git", "push", "-q", "origin", "sweep")
    _dvc(env, a, "exp", "run", "synthesize", "--name", "a-small", *SMALL)
    produced = _hashes(a)  # validate's `persist` output, synthesize's cached directory and its `cache: false` metrics
    assert (a / "runs" / "synthesize.json").is_file()  # run facts: ignored by git and DVC, they stay on the machine
    metrics_a = json.loads((a / "metrics" / "synthesize.json").read_text())
    assert metrics_a["prior_motions"] == 4 and metrics_a["target_performers"] == 2
    _dvc(env, a, "exp", "push", "origin")  # the experiments of HEAD: git refs to origin, cached outputs to storage
    assert any(remote.rglob("*.dir"))  # data/raw/synthetic's listing, and its files, are on the DVC remote

    # Machine B: pull A's experiment; its params and metrics show, its outputs come from the remote, nothing runs.
    b = _machine(env, tmp_path, "b", remote, False, "--branch", "sweep")
    _dvc(env, b, "exp", "pull", "origin")
    _, exps = _experiments(env, b)
    assert set(exps) == {"a-small"}
    assert exps["a-small"]["metrics"]["metrics/synthesize.json"]["data"] == metrics_a
    assert exps["a-small"]["params"]["params.yaml"]["data"]["synthetic"]["prior"]["num_motions"] == 4
    _apply(env, b, "a-small")
    assert _hashes(b) == produced  # `dvc exp pull` fetched the outputs into B's cache, `dvc exp apply` checked out
    assert "Everything is up to date" in _dvc(env, b, "pull", "--with-deps", "synthesize")
    assert _hashes(b) == produced
    assert json.loads(_dvc(env, b, "status", "--json", "validate", "synthesize")) == {}
    assert not (b / "runs").exists()  # every stage run writes runs/<stage>.json: none ran in B

    # B runs the rest of the sweep and pushes it; A pulls it, and both clones show the whole sweep.
    _dvc(env, b, "exp", "run", "synthesize", "--name", "b-seed1", "-S", "synthetic.seed=1", *SMALL)
    metrics_b = json.loads((b / "metrics" / "synthesize.json").read_text())
    assert metrics_b["seed"] == 1 and metrics_b != metrics_a
    _dvc(env, b, "exp", "push", "origin")
    _dvc(env, a, "exp", "pull", "origin")
    for clone in (a, b):
        shown, exps = _experiments(env, clone)
        assert {name: data["metrics"]["metrics/synthesize.json"]["data"] for name, data in exps.items()} == {
            "a-small": metrics_a, "b-seed1": metrics_b}
        assert {"a-small", "b-seed1"} <= _results_table_runs(shown)


@pytest.mark.parametrize("template, url", [("local.config", "/mnt/shared/kinemic-dvc"),
                                           ("ssh.config", "ssh://storage.example.org/srv/kinemic-dvc")])
def test_remote_templates_are_local_dvc_config(tmp_path, template, url):
    """docs/remotes/* are valid `.dvc/config.local` files (DVC checks them against its schema; the SSH keys need no
    plugin for that), they name the default remote `storage`, and DVC keeps that file out of Git."""
    env = _env(tmp_path)
    _run(env, tmp_path, "git", "init", "-q")
    _dvc(env, tmp_path, "init", "-q")
    (tmp_path / ".dvc" / "config.local").write_text((REPO / "docs" / "remotes" / template).read_text())
    config = dict(line.split("=", 1) for line in _dvc(env, tmp_path, "config", "--list", "--local").splitlines())
    assert config["core.remote"] == "storage" and config["remote.storage.url"] == url
    assert "remote.storage.password" not in config
    assert _run(env, tmp_path, "git", "status", "--porcelain", "--ignored", ".dvc/config.local").startswith("!! ")
    assert _run(env, REPO, "git", "check-ignore", ".dvc/config.local").strip() == ".dvc/config.local"
