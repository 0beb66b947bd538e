"""Where semalign keeps its caches on this machine, and whether one is turned off.

One folder holds them all (``SEMALIGN_CACHE_DIR``, else ``$XDG_CACHE_HOME/semalign``, else
``~/.cache/semalign``): compiled programs in ``xla/``
(:mod:`semalign.compile_cache`), trained tokenizers and encoded texts in ``data/``
(:mod:`semalign.data.token_cache`). Each is turned off by its own variable set to ``0``,
``false``, ``off`` or ``no``. Standard library only.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_root", "turned_off"]

_OFF = ("0", "false", "off", "no")


def cache_root() -> Path:
    """The folder of semalign's caches (``SEMALIGN_CACHE_DIR``, XDG, or ``~/.cache``)."""
    chosen = os.environ.get("SEMALIGN_CACHE_DIR", "").strip()
    if chosen:
        return Path(chosen).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".cache") / "semalign"


def turned_off(variable: str) -> bool:
    """Whether the environment variable ``variable`` turns its cache off."""
    return os.environ.get(variable, "").strip().lower() in _OFF
