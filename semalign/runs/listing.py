"""What a run folder says about itself, read without building anything.

:func:`find_runs` walks a folder (``./runs``, a study folder) and :func:`read_run` reads
one run's ``config.json``, ``train_state.json`` and ``metrics.jsonl`` into a
:class:`RunRecord`: task, scoring, epochs, the validation curve, the served checkpoint's
numbers. Runs of every version since 0.1.0 read the same way. Standard library only, so
``semalign runs`` answers at once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from semalign.errors import RunError
from semalign.runs.folder import RunPaths, read_json

__all__ = ["RunRecord", "find_runs", "read_run"]

#: The task of a run whose config names none (0.1.0 classifiers); ground cannot ask tasks/.
_FIRST_TASK = "classification"


@dataclass(frozen=True)
class RunRecord:
    """One run folder, as its files describe it.

    Attributes:
      paths: the run folder.
      task: the run's task (0.1.0 classifiers name none: ``classification``).
      scoring: the scoring, or the per-head list joined with commas.
      version: the semalign that wrote ``config.json`` (None before it was recorded).
      epochs_done: finished epochs (``train_state.json``, else the validation lines).
      epochs_planned: the plan's epochs.
      finished: the test line is written (training is complete).
      served: ``best`` or ``last``: the checkpoint the test line is of (None: unfinished;
        ``best`` for runs older than the field).
      served_epoch: its epoch; for an unfinished run the best epoch so far.
      validation: ``(epoch, selection metric)`` per validation line (``val_score``).
      test: the test line of ``metrics.jsonl`` (None: unfinished).
      tokens_per_second: real training tokens over step seconds, all epochs.
      train_seconds: seconds spent in training steps, all epochs.
      modified: when the run last wrote its metrics (or config).
      train: the ``train`` section of ``config.json``.
    """

    paths: RunPaths
    task: str
    scoring: str
    version: str | None
    epochs_done: int
    epochs_planned: int | None
    finished: bool
    served: str | None
    served_epoch: int | None
    validation: tuple[tuple[int, float], ...]
    test: dict[str, Any] | None
    tokens_per_second: float | None
    train_seconds: float
    modified: datetime
    train: dict[str, Any] = field(default_factory=dict)

    @property
    def validation_score(self) -> float | None:
        """The selection metric on validation of the served (else best-so-far) epoch."""
        scores = [s for e, s in self.validation if e == self.served_epoch]
        return scores[-1] if scores else None

    def test_value(self, key: str) -> float | None:
        """A number of the test line (``accuracy``, ``spearman_cosine``), None if absent."""
        value = (self.test or {}).get(key)
        return float(value) if isinstance(value, int | float) else None


def _records(path: Path) -> list[dict[str, Any]]:
    # A torn last line (a crash while appending) is skipped, not fatal: the list stays useful.
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def read_run(path: str | Path) -> RunRecord:
    """Read one run folder.

    Args:
      path: a folder holding ``config.json``.

    Returns:
      Its :class:`RunRecord`.

    Raises:
      RunError: no ``config.json``, or it (or ``train_state.json``) is not valid JSON.
    """
    run = RunPaths(Path(path))
    config = read_json(run.config)
    if not isinstance(config, dict):
        raise RunError(f"{run.config} is not a JSON object: not a semalign run")
    state = read_json(run.state) if run.state.is_file() else {}
    lines = _records(run.metrics)
    val = [r for r in lines if r.get("split") == "validation" and "epoch" in r]
    tests = [r for r in lines if r.get("split") == "test"]
    test = tests[-1] if tests else None
    curve = {int(r["epoch"]): _number(r.get("val_score")) for r in val}
    seconds = [(_number(r.get("epoch_seconds")), _number(r.get("tokens_per_second"))) for r in val]
    seconds = [(s, t) for s, t in seconds if s is not None and t is not None]
    step_seconds = sum(s for s, _ in seconds)
    tokens = sum(s * t for s, t in seconds)
    if test is not None:
        served, served_epoch = test.get("checkpoint", "best"), test.get("epoch")
    else:
        served, served_epoch = None, state.get("best_epoch") or None
    attention = (config.get("model") or {}).get("attention") or {}
    scoring = attention.get("scoring", "dot")
    train = config.get("train") or {}
    stamp = run.metrics if run.metrics.is_file() else run.config
    return RunRecord(
        paths=run,
        task=config.get("task") or _FIRST_TASK,
        scoring=scoring if isinstance(scoring, str) else ",".join(map(str, scoring)),
        version=config.get("version"),
        epochs_done=int(state.get("epoch", max(curve, default=0))),
        epochs_planned=train.get("epochs"),
        finished=test is not None,
        served=served,
        served_epoch=served_epoch,
        validation=tuple((e, s) for e, s in sorted(curve.items()) if s is not None),
        test=test,
        tokens_per_second=tokens / step_seconds if step_seconds > 0 else None,
        train_seconds=step_seconds,
        modified=datetime.fromtimestamp(stamp.stat().st_mtime),
        train=train,
    )


def _walk(folder: Path) -> Iterator[Path]:
    for child in sorted(folder.iterdir()):
        if child.name.startswith(".") or not child.is_dir() or child.is_symlink():
            continue
        if (child / "config.json").is_file():
            yield child
        else:  # a study folder (or any folder of runs)
            yield from _walk(child)


def find_runs(root: str | Path = "runs") -> list[Path]:
    """The run folders under ``root``, recursing into folders that are not runs.

    Args:
      root: a folder of runs (study folders inside are searched too), or one run.

    Returns:
      Run folders (those holding ``config.json``), sorted by path.

    Raises:
      RunError: ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        what = "it is a file" if root.exists() else "no such folder"
        raise RunError(
            f"cannot list runs in '{root}' ({what}): pass a folder of runs, e.g. "
            "`semalign runs runs`"
        )
    if (root / "config.json").is_file():
        return [root]
    return list(_walk(root))
