"""The house's rules, checked.

Layers (import-linter), no branch on a task name outside ``tasks/``, modules of a
readable size.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from semalign import tasks

PACKAGE = Path(__file__).resolve().parents[1] / "semalign"
#: The longest module allowed (the issue asks for ~400 lines).
MAX_LINES = 440


def task_name_branches(source: str, names: tuple[str, ...]) -> list[int]:
    """Line numbers where ``source`` compares with, or keys a dict / match on, a task name."""

    def named(node: ast.AST) -> bool:
        if isinstance(node, ast.Constant):
            return node.value in names
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return any(named(e) for e in node.elts)
        return False

    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and any(named(x) for x in (node.left, *node.comparators)):
            lines.append(node.lineno)
        elif (
            isinstance(node, ast.Dict)
            and node.keys
            and all(k is not None and named(k) for k in node.keys)
        ):  # a table keyed by task names (a record with a "similarity" field is not one)
            lines.append(node.lineno)
        elif isinstance(node, ast.match_case) and isinstance(node.pattern, ast.MatchValue):
            if named(node.pattern.value):
                lines.append(node.pattern.lineno)
    return lines


@pytest.mark.parametrize(
    "snippet",
    [
        'if task == "similarity":\n    pass',
        'ok = name in ("classification", "other")',
        'table = {"pair-classification": 1}',
        'match t:\n    case "classification":\n        pass',
    ],
)
def test_the_branch_finder_finds_branches(snippet):
    assert task_name_branches(snippet, tasks.names())


def test_the_branch_finder_leaves_defaults_and_messages_alone():
    source = 'def f(task="classification"):\n    return f"a {task} run"\n'
    assert task_name_branches(source, tasks.names()) == []


def test_no_branch_on_a_task_name_outside_tasks():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "tasks" in path.relative_to(PACKAGE).parts:
            continue
        for line in task_name_branches(path.read_text(encoding="utf-8"), tasks.names()):
            found.append(f"{path.relative_to(PACKAGE.parent)}:{line}")
    assert not found, "branches on task names outside semalign/tasks/: " + ", ".join(found)


def test_modules_stay_readable():
    long = {
        str(p.relative_to(PACKAGE.parent)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_import_contracts_hold():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    if not Path(exe).exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    root = PACKAGE.parent
    done = subprocess.run([exe], cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "BROKEN" not in done.stdout
