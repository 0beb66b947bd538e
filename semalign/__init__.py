"""semalign: text classification and semantic alignment with pluggable attention scoring.

Importing the top-level package is cheap: it does not import JAX. ``semalign.load(run)``
and ``semalign.train(...)`` (the library face, :mod:`semalign.api`) import it when called.
``semalign.use_cpu_cores()`` (before JAX starts) gives JAX one CPU device per core, as
``semalign train`` does: the fast CPU train step. Import the submodules
(``semalign.tasks``, ``semalign.workflows``, ``semalign.attention.scoring``, ...) for the
rest of the library.
"""

__version__ = "0.2.0"

#: Names served lazily from :mod:`semalign.api`, so that ``import semalign`` stays cheap.
_FACE = ("Model", "Run", "Unsupported", "load", "train")

__all__ = ["__version__", "use_cpu_cores", *_FACE]


def __getattr__(name: str):
    if name in _FACE:
        # By name, not an import statement: modules below the face import ``semalign`` for
        # its version, and import-linter would read this lazy hook as them importing the face.
        import importlib

        return getattr(importlib.import_module("semalign.api"), name)
    if name == "use_cpu_cores":  # JAX-free: it must run before JAX starts
        import importlib

        return importlib.import_module("semalign.sharding").use_cpu_cores
    raise AttributeError(f"module 'semalign' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), "use_cpu_cores", *_FACE})
