"""The command line's persistent compilation cache: where it goes, who can turn it off."""

import os
import subprocess
import sys
import textwrap

import pytest

from semalign import compile_cache

VARS = (
    "JAX_COMPILATION_CACHE_DIR",
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
    "JAX_COMPILATION_CACHE_MAX_SIZE",
    "SEMALIGN_CACHE_DIR",
    "SEMALIGN_COMPILE_CACHE",
    "XDG_CACHE_HOME",
)


@pytest.fixture
def env(monkeypatch, tmp_path):
    for name in VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


def test_default_is_the_user_cache_folder(env, tmp_path):
    want = tmp_path / "home" / ".cache" / "semalign" / "xla"
    assert compile_cache.cli_compile_cache() == str(want)
    assert want.is_dir()
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == str(want)
    assert float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]) == 0.3
    assert int(os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"]) == 1 << 30


def test_xdg_then_semalign_cache_dir(env, tmp_path):
    env.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compile_cache.cli_compile_cache() == str(tmp_path / "xdg" / "semalign" / "xla")
    env.delenv("JAX_COMPILATION_CACHE_DIR")
    env.setenv("SEMALIGN_CACHE_DIR", str(tmp_path / "mine"))
    assert compile_cache.cli_compile_cache() == str(tmp_path / "mine" / "xla")


def test_the_user_s_own_settings_are_kept(env, tmp_path):
    env.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "theirs"))
    env.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "2")
    assert compile_cache.cli_compile_cache() == str(tmp_path / "theirs")
    assert os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "2"
    env.delenv("JAX_COMPILATION_CACHE_DIR")
    env.setenv("SEMALIGN_CACHE_DIR", str(tmp_path / "mine"))
    assert compile_cache.cli_compile_cache() == str(tmp_path / "mine" / "xla")
    assert os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "2"


@pytest.mark.parametrize("off", ["0", "off", "false"])
def test_turned_off(env, off):
    env.setenv("SEMALIGN_COMPILE_CACHE", off)
    assert compile_cache.cli_compile_cache() is None
    assert "JAX_COMPILATION_CACHE_DIR" not in os.environ


def test_a_folder_that_cannot_be_made_leaves_it_off(env, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    env.setenv("SEMALIGN_CACHE_DIR", str(tmp_path / "file"))
    assert compile_cache.cli_compile_cache() is None
    assert "JAX_COMPILATION_CACHE_DIR" not in os.environ
    assert (tmp_path / "file").read_text() == "not a folder"  # untouched


FIRST = textwrap.dedent(
    """
    import os, sys, time
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"  # tiny programs too
    from semalign.compile_cache import cli_compile_cache
    folder = cli_compile_cache()
    import jax, jax.numpy as jnp
    print(jax.config.jax_compilation_cache_dir == folder)
    jax.jit(lambda x: jnp.tanh(x) @ x.T)(jnp.ones((8, 8))).block_until_ready()
    print(sorted(os.listdir(folder)) != [])
    """
)


def test_jax_reads_it_and_keeps_a_compiled_program(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in VARS}
    env["SEMALIGN_CACHE_DIR"] = str(tmp_path / "cache")
    p = subprocess.run(
        [sys.executable, "-c", FIRST], capture_output=True, text=True, env=env, timeout=300
    )
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.split() == ["True", "True"]
    assert any(f.name.startswith("jit_") for f in (tmp_path / "cache" / "xla").iterdir())


def test_devices_says_where_compiled_programs_are_kept(env, tmp_path):
    from typer.testing import CliRunner

    from semalign.cli import app

    folder = tmp_path / "progs"
    folder.mkdir()
    (folder / "jit_step-abc-cache").write_bytes(b"x" * 2048)
    env.setenv("JAX_COMPILATION_CACHE_DIR", str(folder))
    out = CliRunner().invoke(app, ["devices"], env={"COLUMNS": "300"})
    assert out.exit_code == 0, out.output
    assert f"compilation cache: {folder} (1 program, 0.0 MiB)" in out.output
    env.delenv("JAX_COMPILATION_CACHE_DIR")
    assert compile_cache.describe() == "compilation cache: off (each run compiles its steps)"
