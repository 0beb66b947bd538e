"""Resuming a run, for every task: the saved plan, where training stands, the weights.

A run's ``train_state.json`` is its commit record: the epoch loop writes it after an
epoch's checkpoint is complete and before the checkpoint pointers move, so a process
killed at any moment leaves a state that names checkpoints which exist. Resuming
(:func:`restore_progress`) points ``last`` and ``best`` back at the checkpoints the state
names and drops ``metrics.jsonl`` lines of epochs the state never committed; the run then
continues as if it had never stopped.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semalign.config import TrainConfig
from semalign.errors import RunError
from semalign.runs import RunPaths, open_run, read_json

__all__ = [
    "Interrupted",
    "Progress",
    "ResumePoint",
    "interrupted",
    "open_for_resume",
    "restore_progress",
    "shielded",
]


@dataclass(frozen=True)
class Progress:
    """Where training stands after the last finished epoch (``state.json``)."""

    epoch: int = 0
    best: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0


@dataclass(frozen=True)
class ResumePoint:
    """A run opened to continue (:func:`open_for_resume`).

    Attributes:
      run: the run folder; saved: its ``config.json``.
      progress: where training stands (``state.json``: epoch, best, early-stopping count).
      train: the plan: the saved train config with the overrides applied.
      changes: ``(field, saved value, new value)`` of each override that changed the plan.
    """

    run: RunPaths
    saved: dict
    progress: Progress
    train: TrainConfig
    changes: tuple[tuple[str, Any, Any], ...]


def open_for_resume(
    path: str,
    overrides: Mapping[str, Any] | None = None,
    check: Callable[[RunPaths, dict], None] | None = None,
) -> ResumePoint:
    """Open a run to continue: its saved config is the plan, ``overrides`` change it.

    Args:
      path: the run folder.
      overrides: :class:`TrainConfig` fields to change (``{"epochs": 6}``: a finished
        run may be trained further); every other field keeps its saved value.
      check: ``(run, saved config)``, raises :class:`RunError` when the caller cannot
        continue this run (another task).

    Raises:
      RunError: the run is incomplete, has no finished epoch, fails ``check``, already
        finished its epochs, or stopped early and the patience was not raised.
      ValueError: an override that is not a :class:`TrainConfig` field, or invalid.
    """
    import dataclasses

    overrides = dict(overrides or {})
    if unknown := sorted(set(overrides) - {f.name for f in dataclasses.fields(TrainConfig)}):
        raise ValueError(f"unknown train options {unknown}: overrides take TrainConfig fields")
    run = open_run(path, require=("config", "tokenizer", "labels", "checkpoints"))
    state = read_json(run.state) if run.state.exists() else None
    if state is None:
        raise RunError(f"nothing to resume in {run.root}: it has no finished epoch; retrain it")
    saved = read_json(run.config)
    if check is not None:
        check(run, saved)
    planned = TrainConfig(**saved["train"])
    train_cfg = dataclasses.replace(planned, **overrides)
    changes = tuple(
        (k, getattr(planned, k), v) for k, v in overrides.items() if v != getattr(planned, k)
    )
    progress = Progress(
        state["epoch"], state["best_metric"], state["best_epoch"], state["bad_epochs"]
    )
    if state.get("finished") and train_cfg.epochs <= state["epoch"]:
        raise RunError(
            f"run {run.root} already finished {state['epoch']} epochs: pass --epochs N with "
            f"N > {state['epoch']} to train further"
        )
    if state.get("stopped_early") and 0 < train_cfg.patience <= progress.bad_epochs:
        raise RunError(
            f"run {run.root} stopped early after epoch {state['epoch']} ({progress.bad_epochs} "
            f"epochs without improvement, patience {train_cfg.patience}): pass --patience N "
            f"with N > {progress.bad_epochs} (or 0) to train further"
        )
    return ResumePoint(run, saved, progress, train_cfg, changes)


def restore_progress(run: RunPaths, progress: Progress | None, model, optimizer) -> Progress:
    """Load the committed checkpoint into ``model`` and ``optimizer`` when resuming.

    The pointers are put where ``train_state.json`` says (a kill may have left them
    behind it), and ``metrics.jsonl`` loses the lines of epochs the state never committed
    (a kill between the log line and the state), so the resumed run logs each epoch once.
    """
    if progress is None:
        return Progress()
    from semalign.nn.encoder import LEGACY_LAYOUTS
    from semalign.runs import checkpoints
    from semalign.workflows import hosts

    if hosts.is_lead():
        checkpoints.agree(
            run.checkpoints, f"epoch-{progress.epoch:04d}", f"epoch-{progress.best_epoch:04d}"
        )
        _forget_uncommitted(run.metrics, progress.epoch)
    hosts.barrier("resume")
    items = {"model": model, "optimizer": optimizer}
    checkpoints.restore(run.checkpoints, items, "last", layouts=LEGACY_LAYOUTS)
    return progress


def _forget_uncommitted(path: Path, epoch: int) -> None:
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    keep = [x for x in lines if x.strip() and json.loads(x).get("epoch", 0) <= epoch]
    if len(keep) != len(lines):
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(x + "\n" for x in keep), encoding="utf-8")
        tmp.replace(path)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Ctrl-C (SIGINT) inside the block takes effect when it ends, not in the middle.

    A checkpoint, the state that commits it and the pointers are written whole; the
    interrupt is then raised as :class:`KeyboardInterrupt`. Off the main thread (where
    no signal handler can be set) the block runs unshielded, and so does a process whose
    SIGINT is not Python's default: one that ignores it (a job started with ``&`` from a
    script inherits SIG_IGN, and must go on ignoring it) or has its own handler.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


class Interrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C; what the run kept.

    Attributes:
      run: the run folder (None: interrupted before it was made).
      epoch: the last epoch whose checkpoint is committed (0: none).
      finished: that epoch was the last planned one (only the test evaluation was lost).
    """

    def __init__(self, run: Path | None, epoch: int, finished: bool):
        super().__init__(run, epoch, finished)
        self.run, self.epoch, self.finished = run, epoch, finished


def interrupted(run: RunPaths | None) -> Interrupted:
    """An :class:`Interrupted` of ``run`` from its committed ``train_state.json``."""
    if run is None or not run.state.is_file():
        return Interrupted(None if run is None else run.root, 0, False)
    state = read_json(run.state)
    return Interrupted(run.root, int(state["epoch"]), bool(state.get("finished")))
