"""CLI skeleton: instant help (no JAX), version, scorings table."""

import json
import subprocess
import sys

from typer.testing import CliRunner

from semalign import __version__
from semalign.cli import app

runner = CliRunner()


def test_help_does_not_import_jax():
    code = (
        "import sys\n"
        "from semalign.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'jax' not in sys.modules, 'jax imported by --help'\n"
        "assert 'flax' not in sys.modules\n"
        "print('OK')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "OK" in out.stdout


def test_version():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0
    assert __version__ in r.output


def test_scorings_json_lists_every_registered_scoring():
    from semalign.attention import scoring

    r = runner.invoke(app, ["scorings", "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert [row["name"] for row in rows] == list(scoring.available())
    assert {row["name"] for row in rows if not row["fused"]} == {"l1", "additive"}


def test_scorings_table_renders():
    r = runner.invoke(app, ["scorings"])
    assert r.exit_code == 0
    assert "differential" in r.output and "fused" in r.output
