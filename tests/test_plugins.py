"""User scorings reach the command line through --plugin / SEMALIGN_PLUGINS."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from semalign.cli import app
from semalign.errors import SemalignError
from semalign.plugins import load_plugin, load_plugins

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "examples" / "custom_scoring.py"


def scorings_listed(args, extra_env=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(extra_env or {})}
    done = subprocess.run(
        [sys.executable, "-m", "semalign.cli", *args, "scorings", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return {row["name"]: row for row in json.loads(done.stdout)}


def test_a_plugin_file_adds_its_scoring_to_the_cli():
    rows = scorings_listed(["--plugin", str(PLUGIN)])
    assert rows["gaussian"]["formula"] == "−‖q_i − k_j‖² / (2σ_h²)"
    assert rows["gaussian"]["parametric"] and "dot" in rows


def test_the_environment_variable_names_plugins_too():
    assert "gaussian" in scorings_listed([], {"SEMALIGN_PLUGINS": str(PLUGIN)})
    assert "gaussian" not in scorings_listed([], {"SEMALIGN_PLUGINS": ""})


def test_a_file_loaded_twice_registers_once():
    first = load_plugin(str(PLUGIN))
    assert load_plugins([str(PLUGIN), " "]) == (first,)


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("no_such_module_xyz", "cannot import plugin 'no_such_module_xyz'"),
        ("missing/plugin.py", "plugin file 'missing/plugin.py' does not exist"),
    ],
)
def test_a_missing_plugin_is_one_line(name, needle):
    r = CliRunner().invoke(app, ["--plugin", name, "tasks"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert needle in r.output and len(r.output.strip().splitlines()) == 1


def test_a_plugin_that_fails_names_the_error(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(
        SemalignError, match=r"plugin '.*bad.py' failed on import \(RuntimeError: boom\)"
    ):
        load_plugin(str(bad))
    assert "semalign_plugin_bad" not in sys.modules
