"""User code that registers scorings (or tasks) before a command runs: ``--plugin``.

A plugin is a Python module, named on the path (``mypkg.scorings``) or as a ``.py`` file
(``./gaussian.py``), whose import calls ``semalign.attention.scoring.register`` (or
``semalign.tasks.register``). The command line imports the modules named by ``semalign
--plugin MODULE`` or the ``SEMALIGN_PLUGINS`` environment variable (space-separated) before
any command; a library user simply imports theirs. A run trained with a plugin's scoring
needs the same plugin wherever it is loaded again (evaluate, inspect, export ...).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from semalign.errors import SemalignError

__all__ = ["ENV_VAR", "load_plugin", "load_plugins"]

#: Environment variable naming plugins, space-separated (the command line reads it).
ENV_VAR = "SEMALIGN_PLUGINS"


def _from_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise SemalignError(f"plugin file '{path}' does not exist: give a .py file or a module")
    name = f"semalign_plugin_{path.stem}"
    if name in sys.modules:  # the same file twice: imported once, registered once
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_plugin(name: str) -> ModuleType:
    """Import one plugin: a module name or a path to a ``.py`` file.

    Raises:
      SemalignError: the module or file cannot be found or fails to import (one line).
    """
    try:
        if name.endswith(".py") or "/" in name or "\\" in name:
            return _from_file(Path(name))
        return importlib.import_module(name)
    except SemalignError:
        raise
    except ModuleNotFoundError as err:
        raise SemalignError(
            f"cannot import plugin {name!r} ({err}): give a module on the Python path "
            "(PYTHONPATH) or the path of a .py file"
        ) from None
    except Exception as err:  # the user's module itself failed: say where
        raise SemalignError(
            f"plugin {name!r} failed on import ({type(err).__name__}: {err})"
        ) from None


def load_plugins(names: Iterable[str]) -> tuple[ModuleType, ...]:
    """Import each plugin in order (see :func:`load_plugin`)."""
    return tuple(load_plugin(n) for n in names if n.strip())
