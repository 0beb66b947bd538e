"""Run folders: the unit users pass around.

A run folder holds everything one training run produced::

    runs/<name>/
      config.json        everything needed to rebuild the model and the data pipeline
      data.json          where the data came from: fingerprint and split membership
      tokenizer.json     labels.json
      checkpoints/       orbax, best + last, resumable
      events/            TensorBoard
      metrics.jsonl      one line per evaluation
      train_state.json   epoch / step bookkeeping for resume
      model.onnx         export.json   after ``semalign export onnx``

Every command that takes a model takes ``--run PATH`` and defaults to the newest run
under ``./runs``; :func:`resolve_run` implements that rule.

This module is ground layer: standard library only, so importing it is instant.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from semalign.errors import RunError

__all__ = [
    "DEFAULT_REQUIRE",
    "RunPaths",
    "create_run",
    "default_run_name",
    "exported_model",
    "newest_run",
    "open_run",
    "read_json",
    "resolve_run",
    "write_json",
]

#: Pieces a run needs before a model can be loaded from it.
DEFAULT_REQUIRE: tuple[str, ...] = ("config", "tokenizer", "labels", "checkpoints")

# Piece name -> (path inside the run folder, is a folder).
_PIECES: dict[str, tuple[str, bool]] = {
    "config": ("config.json", False),
    "data": ("data.json", False),
    "tokenizer": ("tokenizer.json", False),
    "labels": ("labels.json", False),
    "checkpoints": ("checkpoints", True),
    "events": ("events", True),
    "metrics": ("metrics.jsonl", False),
    "onnx": ("model.onnx", False),
    "export_report": ("export.json", False),
    "state": ("train_state.json", False),
}

_NAME_UNSAFE = re.compile(r"[^a-z0-9_.-]+")


@dataclass(frozen=True)
class RunPaths:
    """The paths inside one run folder; building it touches no file.

    Args:
        root: the run folder, e.g. ``runs/imdb-dot-20261122-001530``. A ``str`` is
            converted to a :class:`~pathlib.Path`.
    """

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def name(self) -> str:
        """The run's name: the last part of :attr:`root`."""
        return self.root.name

    @property
    def config(self) -> Path:
        """``config.json``: everything needed to rebuild the model and the data pipeline."""
        return self.root / _PIECES["config"][0]

    @property
    def data(self) -> Path:
        """``data.json``: the data's fingerprint and split membership (runs since 0.2)."""
        return self.root / _PIECES["data"][0]

    @property
    def tokenizer(self) -> Path:
        """``tokenizer.json``: the tokenizer trained on the train split."""
        return self.root / _PIECES["tokenizer"][0]

    @property
    def labels(self) -> Path:
        """``labels.json``: the class names, in logit order."""
        return self.root / _PIECES["labels"][0]

    @property
    def checkpoints(self) -> Path:
        """``checkpoints/``: orbax checkpoints (best and last)."""
        return self.root / _PIECES["checkpoints"][0]

    @property
    def events(self) -> Path:
        """``events/``: TensorBoard event files and projector data."""
        return self.root / _PIECES["events"][0]

    @property
    def metrics(self) -> Path:
        """``metrics.jsonl``: one JSON object per evaluation."""
        return self.root / _PIECES["metrics"][0]

    @property
    def onnx(self) -> Path:
        """``model.onnx``: written by ``semalign export onnx``."""
        return self.root / _PIECES["onnx"][0]

    @property
    def export_report(self) -> Path:
        """``export.json``: the parity check of the last ONNX export."""
        return self.root / _PIECES["export_report"][0]

    @property
    def state(self) -> Path:
        """``train_state.json``: epoch / step bookkeeping for resume."""
        return self.root / _PIECES["state"][0]

    def missing(self, require: Sequence[str] = DEFAULT_REQUIRE) -> list[str]:
        """Names the required pieces that are absent, as they appear on disk.

        A folder piece (``checkpoints``, ``events``) counts as present only if it
        holds at least one entry.

        Args:
            require: piece names, each one of the properties of this class
                (``"config"``, ``"checkpoints"``, ...).

        Returns:
            The missing pieces in ``require`` order, e.g.
            ``["tokenizer.json", "checkpoints/ (empty)"]``; empty when complete.

        Raises:
            ValueError: if a name in ``require`` is not a run piece (a bug, not a
                user error).
        """
        out = []
        for piece in require:
            if piece not in _PIECES:
                raise ValueError(
                    f"unknown run piece {piece!r}: expected one of {', '.join(_PIECES)}"
                )
            rel, is_dir = _PIECES[piece]
            path = self.root / rel
            if is_dir:
                if not path.is_dir():
                    out.append(f"{rel}/")
                elif not any(path.iterdir()):
                    out.append(f"{rel}/ (empty)")
            elif not path.is_file():
                out.append(rel)
        return out


def _validate_name(name: str) -> None:
    if not name or not name.strip():
        raise RunError("run name is empty: pass --name with a non-empty folder name")
    seps = {"/", "\\", os.sep} | ({os.altsep} if os.altsep else set())
    if any(s in name for s in seps):
        raise RunError(
            f"run name {name!r} contains a path separator: pass --name with a plain "
            "folder name and --runs-dir for the parent folder"
        )
    if name.startswith("."):
        raise RunError(f"run name {name!r} starts with a dot: pass --name without a leading dot")


def create_run(runs_dir: str | Path, name: str, *, overwrite: bool = False) -> RunPaths:
    """Creates the folder of a new run with its ``checkpoints/`` and ``events/``.

    An existing empty folder is reused.

    Args:
        runs_dir: the parent folder, created if missing (usually ``runs``).
        name: the run's folder name: not empty, no path separator, no leading dot.
        overwrite: remove an existing non-empty run folder of that name first.

    Returns:
        The paths of the new run.

    Raises:
        RunError: if ``name`` is invalid, if the run exists and is not empty while
            ``overwrite`` is false, or if the path exists and is not a folder.
    """
    _validate_name(name)
    run = RunPaths(Path(runs_dir) / name)
    root = run.root
    if root.exists() or root.is_symlink():
        if not root.is_dir() or root.is_symlink():
            raise RunError(
                f"cannot create run at '{root}': it exists and is not a folder (a file or "
                "a link); remove it or pick another name with --name"
            )
        if any(root.iterdir()):
            if not overwrite:
                raise RunError(
                    f"run '{root}' already exists: pass --overwrite to replace it "
                    "or --name to pick another"
                )
            shutil.rmtree(root)
    run.checkpoints.mkdir(parents=True, exist_ok=True)
    run.events.mkdir(parents=True, exist_ok=True)
    return run


def _slug(text: str, fallback: str) -> str:
    slug = _NAME_UNSAFE.sub("-", text.strip().lower()).strip("-.")
    return slug[:40].rstrip("-.") or fallback


def default_run_name(dataset: str, scoring: str, now: datetime | None = None) -> str:
    """Builds a run name from the dataset, the scoring and the time.

    Each part is lower-cased, runs of characters other than ``a-z0-9_.-`` become one
    ``-``, and it is cut to 40 characters, so the result is a valid folder name.

    >>> from datetime import datetime
    >>> default_run_name("IMDB", "dot", now=datetime(2026, 11, 22, 0, 15, 30))
    'imdb-dot-20261122-001530'
    >>> default_run_name("data/my reviews.csv", "diff-transformer",
    ...                  now=datetime(2026, 1, 2, 3, 4, 5))
    'data-my-reviews.csv-diff-transformer-20260102-030405'

    Args:
        dataset: the dataset name or path.
        scoring: the scoring name.
        now: the time stamp; the current local time when ``None``.

    Returns:
        ``<dataset>-<scoring>-<YYYYmmdd-HHMMSS>``.
    """
    now = datetime.now() if now is None else now
    stamp = now.strftime("%Y%m%d-%H%M%S")
    return f"{_slug(dataset, 'data')}-{_slug(scoring, 'scoring')}-{stamp}"


def open_run(path: str | Path, *, require: Sequence[str] = DEFAULT_REQUIRE) -> RunPaths:
    """Opens an existing run folder and checks it has the pieces a command needs.

    Args:
        path: the run folder.
        require: the pieces that must be present (names of :class:`RunPaths`
            properties); ``checkpoints`` and ``events`` must also be non-empty.

    Returns:
        The paths of the run.

    Raises:
        RunError: if the folder does not exist or lacks a required piece.
    """
    run = RunPaths(Path(path))
    if not run.root.is_dir():
        what = "it is a file, not a run folder" if run.root.exists() else "no such folder"
        raise RunError(
            f"no run at '{run.root}' ({what}): pass --run with a run folder "
            "or train one with `semalign train`"
        )
    missing = run.missing(require)
    if missing:
        raise RunError(
            f"run '{run.root}' is incomplete (missing {', '.join(missing)}): "
            "retrain it or pick another with --run"
        )
    return run


def newest_run(runs_dir: str | Path = "runs") -> RunPaths:
    """Finds the run under ``runs_dir`` whose ``config.json`` was written last.

    Args:
        runs_dir: the folder holding run folders.

    Returns:
        The paths of the newest run (not checked for completeness; see
        :func:`open_run`).

    Raises:
        RunError: if ``runs_dir`` holds no folder with a ``config.json``.
    """
    runs_dir = Path(runs_dir)
    best: tuple[float, str] | None = None
    newest: RunPaths | None = None
    if runs_dir.is_dir():
        for child in runs_dir.iterdir():
            run = RunPaths(child)
            if child.name.startswith(".") or not run.config.is_file():
                continue
            key = (run.config.stat().st_mtime, child.name)
            if best is None or key > best:
                best, newest = key, run
    if newest is None:
        raise RunError(
            f"no run found under '{runs_dir}': train one with `semalign train` "
            "or pass --run with a run folder"
        )
    return newest


def resolve_run(
    run: str | Path | None,
    runs_dir: str | Path = "runs",
    require: Sequence[str] = DEFAULT_REQUIRE,
) -> RunPaths:
    """Applies the ``--run`` rule: the given run, else the newest under ``runs_dir``.

    Args:
        run: the value of ``--run``; ``None`` picks :func:`newest_run`.
        runs_dir: where to look when ``run`` is ``None``.
        require: the pieces that must be present, as in :func:`open_run`.

    Returns:
        The paths of a run holding every required piece.

    Raises:
        RunError: if there is no such run or it is incomplete.
    """
    if run is None:
        run = newest_run(runs_dir).root
    return open_run(run, require=require)


def exported_model(run: str | Path | None, runs_dir: str | Path = "runs") -> Path:
    """The run's ``model.onnx`` (the ``--run`` rule as in :func:`resolve_run`).

    Raises:
      RunError: no such run, or it was never exported (the message says how to).
    """
    paths = resolve_run(run, runs_dir=runs_dir, require=("config",))
    if not paths.onnx.is_file():
        raise RunError(
            f"run '{paths.root}' has no model.onnx: export it with "
            f"`semalign export onnx --run {paths.root}` or use --backend jax"
        )
    return paths.onnx


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return obj.as_posix()
    if hasattr(obj, "tolist"):  # numpy / jax scalars and arrays
        return obj.tolist()
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serializable")


def write_json(path: str | Path, obj: Any) -> Path:
    """Writes ``obj`` as indented JSON, atomically.

    The text goes to a temporary file in the same folder, which then replaces
    ``path`` with :func:`os.replace`, so a reader never sees a half-written file.
    Keys keep their insertion order. Paths and numpy scalars/arrays are converted.

    Args:
        path: the destination file; its folder must exist.
        obj: a JSON-serializable object.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        RunError: if the destination folder does not exist.
        TypeError: if ``obj`` is not JSON-serializable (nothing is written).
    """
    path = Path(path)
    text = json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False, default=_json_default)
    folder = path.parent
    if not folder.is_dir():
        raise RunError(
            f"cannot write '{path}': folder '{folder}' does not exist; "
            "create the run first (semalign train) or pick another path"
        )
    tmp = folder / f".{path.name}.{secrets.token_hex(6)}.tmp"
    # os.open with mode 0o666 honours the umask, unlike tempfile's 0o600.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_json(path: str | Path) -> Any:
    """Reads one JSON file.

    Args:
        path: the file.

    Returns:
        The decoded object.

    Raises:
        RunError: if the file is missing, unreadable or not valid UTF-8 JSON; the
            message names the file (and the line and column of a syntax error).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunError(
            f"missing file '{path}': the run is incomplete; retrain it or pick another with --run"
        ) from None
    except IsADirectoryError:
        raise RunError(f"cannot read '{path}': it is a folder, expected a JSON file") from None
    except UnicodeDecodeError as e:
        raise RunError(
            f"corrupt JSON in '{path}' (not UTF-8 at byte {e.start}): "
            "fix or delete the file, or pick another run with --run"
        ) from None
    except OSError as e:
        raise RunError(f"cannot read '{path}' ({e.strerror}): check its permissions") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise RunError(
            f"corrupt JSON in '{path}' (line {e.lineno}, column {e.colno}: {e.msg}): "
            "fix or delete the file, or pick another run with --run"
        ) from None
