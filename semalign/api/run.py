"""A run folder as a Python object, and :func:`load`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Run", "load"]


@dataclass(frozen=True)
class Run:
    """A run folder, with what training reported when it came from :func:`semalign.train`.

    A ``Run`` is path-like (``os.fspath(run)``): ``semalign.load(run)`` and the workflows'
    ``run=`` arguments accept it.

    Attributes:
      path: the run folder.
      result: the :class:`~semalign.workflows.train.TrainResult` (None for a folder
        opened with :meth:`open`).
    """

    path: Path
    result: Any = None

    def __fspath__(self) -> str:
        return str(self.path)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Run:
        """The run at ``path`` (no training result)."""
        return cls(Path(path))

    @property
    def name(self) -> str:
        """The folder's name."""
        return self.path.name

    @property
    def test(self) -> Any:
        """The task's test report of the served checkpoint (None: unfinished or opened)."""
        return None if self.result is None else self.result.test

    @property
    def validation(self) -> Any:
        """The task's validation report of the served checkpoint."""
        return None if self.result is None else self.result.validation

    def load(self, checkpoint: str = "served"):
        """The run's :class:`~semalign.api.model.Model`."""
        return load(self.path, checkpoint=checkpoint)


def load(
    run: str | os.PathLike[str] | None = None,
    *,
    runs_dir: str | os.PathLike[str] = "runs",
    checkpoint: str = "served",
):
    """Load a trained run: a :class:`~semalign.api.model.Model` with its task's methods.

    Args:
      run: a run folder (or a :class:`Run`); None: the newest run under ``runs_dir``.
      runs_dir: where to look for the newest run.
      checkpoint: ``served`` (the one training reported), ``best`` or ``last``.

    Raises:
      RunError: no run, an incomplete one, or a checkpoint that does not fit its config.
    """
    from semalign.api.model import Model
    from semalign.workflows.loading import load_run

    if run is not None:
        run = os.fspath(run)
    return Model(load_run(run, runs_dir=runs_dir, which=checkpoint), checkpoint)
