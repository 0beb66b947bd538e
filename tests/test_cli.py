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


def _commands(group, prefix=()):
    """``(words, command)`` of every command under a Typer/Click group, sub-groups included."""
    import typer.main

    click_group = typer.main.get_command(group) if not hasattr(group, "commands") else group
    for name, cmd in click_group.commands.items():
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, (*prefix, name))
        else:
            yield (*prefix, name), cmd


def test_every_command_help_shows_an_example():
    commands = dict(_commands(app))
    assert {("train",), ("evaluate",), ("export", "onnx")} <= set(commands)
    for words, _ in commands.items():
        out = CliRunner().invoke(app, [*words, "--help"], terminal_width=200)
        assert out.exit_code == 0, out.output
        example = f"Example: semalign {' '.join(words)}"
        assert example in " ".join(out.output.split()), f"`semalign {' '.join(words)} --help`"
