"""XLA's persistent compilation cache for the command line: each program compiles once.

A default ``semalign train`` compiles a train and an eval step for each of its length
buckets (about 40 s on a 2-core CPU, part of every run's start); JAX can keep compiled
programs on disk and load them in a fraction of a second when the same program comes
again (the same model, shapes, mesh and JAX version). The command line turns it on, in
the user's cache folder, before JAX starts; the environment decides:

- ``JAX_COMPILATION_CACHE_DIR`` set by the user: kept as it is (JAX's own setting);
- ``SEMALIGN_COMPILE_CACHE=0``: off;
- ``SEMALIGN_CACHE_DIR``: the folder for semalign's caches (default
  ``$XDG_CACHE_HOME/semalign``, else ``~/.cache/semalign``); programs go in ``xla/``.

The cache is bounded (:data:`MAX_BYTES`, least recently used programs go first) and only
programs that took :data:`MIN_SECONDS` or more to compile are kept. A cache that cannot be
written leaves compilation as it was.
"""

from __future__ import annotations

import os
from pathlib import Path

from semalign.caches import cache_root, turned_off

__all__ = ["MAX_BYTES", "MIN_SECONDS", "cache_root", "cli_compile_cache", "describe"]

#: Upper bound of the program cache on disk.
MAX_BYTES = 1 << 30
#: Programs compiled faster than this are not worth a file (JAX's default is 1 s; the
#: default model's eval steps take 0.5-1 s).
MIN_SECONDS = 0.3

_JAX_DIR = "JAX_COMPILATION_CACHE_DIR"


def cli_compile_cache() -> str | None:
    """The command line's start: the persistent compilation cache on, unless chosen otherwise.

    Only the environment changes (JAX is not imported; it reads these when it starts).

    Returns:
      The cache folder JAX will use, or None when off (turned off, or not writable).
    """
    if os.environ.get(_JAX_DIR):
        return os.environ[_JAX_DIR]
    if turned_off("SEMALIGN_COMPILE_CACHE"):
        return None
    folder = cache_root() / "xla"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(folder, os.W_OK):
        return None
    os.environ[_JAX_DIR] = str(folder)
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", str(MIN_SECONDS))
    os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(MAX_BYTES))
    return str(folder)


def describe() -> str:
    """One line: where compiled programs are kept (and how many), or that they are not."""
    folder = os.environ.get(_JAX_DIR)
    if not folder:
        return "compilation cache: off (each run compiles its steps)"
    path = Path(folder)
    files = [f for f in path.iterdir() if f.is_file()] if path.is_dir() else []
    size = sum(f.stat().st_size for f in files) / 2**20
    programs = f"{len(files)} program{'' if len(files) == 1 else 's'}"
    return f"compilation cache: {path} ({programs}, {size:.1f} MiB)"
