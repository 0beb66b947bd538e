"""Experiment tracking: TensorBoard and the ``metrics.jsonl`` log.

:class:`Tracker` is the interface the train loop writes to. :class:`TensorBoardTracker`
imports tensorboardX only when constructed; :class:`NoopTracker` is the default for
``--no-tensorboard`` and for every process but process 0 (the caller checks
``jax.process_index()``; this module does not import JAX).

:class:`MetricsLog` is independent of TensorBoard: one JSON object per line, flushed on
every write, readable with :func:`read_metrics` or any JSON-lines tool.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from semalign.errors import RunError

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "MetricsLog",
    "NoopTracker",
    "TensorBoardTracker",
    "Tracker",
    "make_tracker",
    "read_metrics",
]


@runtime_checkable
class Tracker(Protocol):
    """Where training writes what it wants to show: scalars, images, embeddings, text."""

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        """Records scalar values at ``step``, e.g. ``{"train/loss": 0.3}``."""
        ...

    def image(self, tag: str, step: int, image: np.ndarray) -> None:
        """Records an image; ``image`` is ``[height, width, 3]`` uint8 RGB."""
        ...

    def embedding(self, tag: str, step: int, matrix: np.ndarray, metadata: Sequence[str]) -> None:
        """Records vectors for the projector; ``matrix`` is ``[n, dim]``, one label a row."""
        ...

    def text(self, tag: str, step: int, text: str) -> None:
        """Records a (markdown) text at ``step``."""
        ...

    def flush(self) -> None:
        """Writes pending records to disk."""
        ...

    def close(self) -> None:
        """Flushes and releases the tracker; no call is allowed after it."""
        ...


@dataclass(frozen=True)
class NoopTracker:
    """A tracker that records nothing: for ``--no-tensorboard`` and non-zero processes."""

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        """Does nothing."""

    def image(self, tag: str, step: int, image: np.ndarray) -> None:
        """Does nothing."""

    def embedding(self, tag: str, step: int, matrix: np.ndarray, metadata: Sequence[str]) -> None:
        """Does nothing."""

    def text(self, tag: str, step: int, text: str) -> None:
        """Does nothing."""

    def flush(self) -> None:
        """Does nothing."""

    def close(self) -> None:
        """Does nothing."""


def _tsv_cell(label: str) -> str:
    """Makes one metadata label safe for a one-column TSV line."""
    label = str(label).replace("\\", "\\\\")
    label = label.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return label if label.strip() else repr(label)


class TensorBoardTracker:
    """A tracker writing TensorBoard event files (and projector data) to ``log_dir``.

    Usable as a context manager, which closes it.

    Args:
        log_dir: the folder for event files, usually the run's ``events/``; created
            if missing.
        flush_secs: how often tensorboardX flushes pending events on its own.
    """

    def __init__(self, log_dir: str | Path, *, flush_secs: int = 30) -> None:
        from tensorboardX import SummaryWriter  # optional and slow: imported here

        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._writer = SummaryWriter(logdir=str(self.log_dir), flush_secs=flush_secs)

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        """Records scalar values at ``step``.

        Args:
            step: the global step.
            values: tag -> value, e.g. ``{"train/loss": 0.3, "eval/accuracy": 0.9}``.
        """
        for tag, value in values.items():
            self._writer.add_scalar(tag, float(value), global_step=int(step))

    def image(self, tag: str, step: int, image: np.ndarray) -> None:
        """Records an RGB image.

        Args:
            tag: the image's name.
            step: the global step.
            image: ``[height, width, 3]`` uint8, e.g. from
                :func:`semalign.tracking.plotting.figure_to_rgb`.

        Raises:
            ValueError: if ``image`` is not ``[height, width, 3]`` uint8.
        """
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"image {tag!r} must be [height, width, 3] uint8, got shape "
                f"{image.shape} dtype {image.dtype}"
            )
        self._writer.add_image(tag, image, global_step=int(step), dataformats="HWC")

    def embedding(self, tag: str, step: int, matrix: np.ndarray, metadata: Sequence[str]) -> None:
        """Records vectors for the TensorBoard projector.

        Writes ``<log_dir>/<step:05d>/<tag>/{tensors,metadata}.tsv`` and appends an
        entry to ``<log_dir>/projector_config.pbtxt``. Tabs and newlines inside a
        label are escaped, and a blank label is written quoted, so every row keeps
        exactly one line.

        Args:
            tag: the embedding's name, e.g. ``"token_embeddings"``.
            step: the global step.
            matrix: ``[n, dim]`` vectors, one a row.
            metadata: ``n`` labels, e.g. the vocabulary in id order.

        Raises:
            ValueError: if ``matrix`` is not 2-D or ``metadata`` has not one label per row.
        """
        matrix = np.asarray(matrix, dtype=np.float32)
        if matrix.ndim != 2:
            raise ValueError(f"embedding {tag!r} must be [n, dim], got shape {matrix.shape}")
        if len(metadata) != matrix.shape[0]:
            raise ValueError(
                f"embedding {tag!r} has {matrix.shape[0]} rows but {len(metadata)} "
                "metadata labels: pass one label per row"
            )
        self._writer.add_embedding(
            matrix,
            metadata=[_tsv_cell(m) for m in metadata],
            global_step=int(step),
            tag=tag,
        )

    def text(self, tag: str, step: int, text: str) -> None:
        """Records a markdown text at ``step``."""
        self._writer.add_text(tag, text, global_step=int(step))

    def flush(self) -> None:
        """Writes pending events to disk."""
        self._writer.flush()

    def close(self) -> None:
        """Flushes and closes the event file."""
        self._writer.close()

    def __enter__(self) -> TensorBoardTracker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def make_tracker(log_dir: str | Path, *, enabled: bool) -> Tracker:
    """Builds the tracker for a run.

    Args:
        log_dir: the TensorBoard folder (the run's ``events/``).
        enabled: ``False`` for ``--no-tensorboard`` or on a process other than 0.

    Returns:
        A :class:`TensorBoardTracker` when enabled, else a :class:`NoopTracker`.
    """
    return TensorBoardTracker(log_dir) if enabled else NoopTracker()


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy / jax scalars and arrays
        return obj.tolist()
    if isinstance(obj, Path):
        return obj.as_posix()
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serializable")


@dataclass(frozen=True)
class MetricsLog:
    """Appends one JSON object per line to ``metrics.jsonl``.

    Each :meth:`append` opens the file, writes one complete line and closes it, so
    the log is flushed after every record and survives a crash. Non-finite floats
    are written as ``NaN`` / ``Infinity`` (Python's JSON dialect, which
    :func:`read_metrics` reads back).

    Args:
        path: the ``.jsonl`` file; its folder must exist.
    """

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def append(self, record: Mapping[str, Any]) -> None:
        """Appends one record.

        Args:
            record: a JSON-serializable mapping, e.g.
                ``{"step": 100, "epoch": 1, "eval/accuracy": 0.91}``; numpy and JAX
                scalars are converted.

        Raises:
            RunError: if the folder of :attr:`path` does not exist.
            TypeError: if a value is not JSON-serializable (nothing is written).
        """
        line = json.dumps(dict(record), ensure_ascii=False, default=_json_default)
        if not self.path.parent.is_dir():
            raise RunError(
                f"cannot write metrics to '{self.path}': folder '{self.path.parent}' "
                "does not exist; create the run first"
            )
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Reads a ``metrics.jsonl`` file written by :class:`MetricsLog`.

    Args:
        path: the file.

    Returns:
        The records in file order; blank lines are skipped.

    Raises:
        RunError: if the file is missing, or a line is not a JSON object; the message
            names the file and the line number.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise RunError(
            f"missing metrics file '{path}': the run has not been evaluated yet; "
            "train it or pick another run with --run"
        ) from None
    except UnicodeDecodeError as e:
        raise RunError(
            f"corrupt metrics file '{path}' (not UTF-8 at byte {e.start}): fix or delete the file"
        ) from None
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise RunError(
                f"corrupt metrics file '{path}' (line {number}, column {e.colno}: "
                f"{e.msg}): fix or delete that line"
            ) from None
        if not isinstance(record, dict):
            raise RunError(
                f"corrupt metrics file '{path}' (line {number} is a "
                f"{type(record).__name__}, expected a JSON object): fix or delete that line"
            )
        records.append(record)
    return records
