"""The code each DVC stage runs, found by walking its imports, so dvc.yaml's code deps need no upkeep by hand.

A stage's code deps are its script, `stages/__init__.py` (it sets the process up before any stage runs), and every
`kinemic` file that importing the script executes: modules imported anywhere in a file (function-level imports too,
so an optional backend counts) and the `__init__.py` of every package on the way. `scripts/sync_stage_deps.py`
rewrites dvc.yaml from this, and a test requires an exact match, so a moved module re-runs exactly the stages that
run it.
"""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import yaml

STAGE_SETUP = "stages/__init__.py"


def _module_file(root: Path, module: str) -> Path | None:
    path = root.joinpath(*module.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else None


def kinemic_imports(root: Path, path: Path) -> set[str]:
    """Modules of `kinemic` a file imports (absolute or relative), including `from kinemic.x import submodule`."""
    package = ".".join(path.relative_to(root).parent.parts)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m.split(".")[0] == "kinemic"}


def library_files_run_by(root: Path, script: Path) -> set[str]:
    """Every kinemic file that importing `script` executes, packages' __init__ files included, transitively."""
    files, todo = set(), [script]
    while todo:
        path = todo.pop()
        if path in files:
            continue
        files.add(path)
        for module in kinemic_imports(root, path):
            parts = module.split(".")
            todo += [f for i in range(1, len(parts) + 1) if (f := _module_file(root, ".".join(parts[:i]))) is not None]
    return {str(f.relative_to(root)) for f in files if f.relative_to(root).parts[0] == "kinemic"}


def stage_script(root: Path, stage: dict) -> Path:
    """The file of the module a stage runs (`python -m stages.x ...` -> stages/x.py)."""
    return root.joinpath(*shlex.split(stage["cmd"])[2].split(".")).with_suffix(".py")


def code_deps(root: Path, stage: dict) -> list[str]:
    """The code deps a stage must list, in dvc.yaml's order: its script, the stage setup, then the library."""
    script = stage_script(root, stage)
    return [str(script.relative_to(root)), STAGE_SETUP, *sorted(library_files_run_by(root, script))]


def is_code_dep(path: str) -> bool:
    return path.startswith(("kinemic/", "stages/")) or path in ("kinemic", "stages")


def synced_dvc_yaml(root: Path, text: str) -> str:
    """dvc.yaml's text with each stage's code deps replaced by `code_deps`; data deps, comments and order stay."""
    stages = yaml.safe_load(text)["stages"]
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    stage = None
    i = 0
    while i < len(lines):
        line = lines[i]
        header = re.match(r"^  ([A-Za-z_][\w-]*):\s*$", line)
        if header:
            stage = header.group(1)
        if stage in stages and re.match(r"^    deps:\s*$", line):
            out.append(line)
            i += 1
            entries = []
            while i < len(lines) and re.match(r"^      - ", lines[i]):
                entries.append(lines[i])
                i += 1
            data = [e for e in entries if not is_code_dep(e.strip()[2:].strip())]
            out += [f"      - {dep}\n" for dep in code_deps(root, stages[stage])] + data
            continue
        out.append(line)
        i += 1
    return "".join(out)
