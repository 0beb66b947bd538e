"""The README's Python snippets marked ``<!-- test: runs ... -->`` run as written."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from semalign.testing import write_reviews_csv

ROOT = Path(__file__).resolve().parents[1]
MARKED = re.compile(r"<!-- test: runs[^>]*-->\s*```python\n(.*?)```", re.DOTALL)


def snippets() -> list[str]:
    return MARKED.findall((ROOT / "README.md").read_text(encoding="utf-8"))


def test_the_readme_marks_its_library_snippets():
    found = snippets()
    assert len(found) >= 2
    assert any("semalign.load(" in s and "semalign.train(" in s for s in found)


@pytest.mark.parametrize("index", range(len(snippets())))
def test_readme_snippet_runs(index, tmp_path):
    code = snippets()[index]
    write_reviews_csv(tmp_path / "reviews.csv", n=64)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    if "semalign.train(" in code:
        path, accuracy = done.stdout.split()
        assert (tmp_path / path / "config.json").is_file()
        assert 0.0 <= float(accuracy) <= 1.0
