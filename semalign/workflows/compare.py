"""Compare scorings: one run per scoring × seed in a study folder, and a table of them.

``runs/<study>/<scoring>-s<seed>/`` are ordinary run folders, trained one after the other
by :func:`semalign.workflows.train.train` with the same data, model and plan; only the
scoring and the seed differ. The seed is the init / dropout / shuffling seed: the data
split is the request's own, so every run is validated and tested on the same examples.
A study is resumable: a finished run is skipped, a run with a finished epoch continues
through the train workflow's resume path, a run without one is trained again.
``study.json`` holds the settings, every run's numbers and the table; the scoring is
chosen on validation only (the task's metric and direction), never on test.
"""

from __future__ import annotations

import dataclasses
import json
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semalign import __version__, tasks
from semalign.config import TrainConfig
from semalign.errors import DataError, RunError
from semalign.runs import RunPaths, read_json, write_json
from semalign.runs.listing import read_run
from semalign.workflows.listing import row_of
from semalign.workflows.reporting import Reporter, SilentReporter
from semalign.workflows.train import TrainRequest, train

__all__ = [
    "DEFAULT_SCORINGS",
    "STUDY_FILE",
    "CompareRequest",
    "ScoringRow",
    "Study",
    "StudyRun",
    "compare",
]

DEFAULT_SCORINGS = ("dot", "cosine", "l1", "l2", "differential")
STUDY_FILE = "study.json"


@dataclass(frozen=True)
class CompareRequest:
    """A study: the runs of every scoring × seed of one training request.

    Attributes:
      base: the training of every run (task, loss, data, model, plan, runs_dir, mesh,
        tensorboard, stop_after); its scoring, seed, name and overwrite are set per run.
      scorings: one run each (single scoring names).
      seeds: runs per scoring, seeded ``base.train.seed``, ``+1``, ...
      study: the study folder's name under ``base.runs_dir``; None:
        ``compare-<task>-<data>``.
    """

    base: TrainRequest
    scorings: tuple[str, ...] = DEFAULT_SCORINGS
    seeds: int = 3
    study: str | None = None


@dataclass(frozen=True)
class StudyRun:
    """One run of a study.

    Attributes:
      scoring, seed: what differs between runs.
      run: its folder.
      action: what this call did: ``trained``, ``resumed``, ``retrained`` or ``skipped``.
      finished: it has a test evaluation (unfinished runs stay out of the table).
      validation: the task's metric on validation, served checkpoint.
      test: the same metric on test, served checkpoint.
      tokens_per_second: real training tokens per second of step time, all epochs.
      wall_seconds: wall time of the training calls this study made for it (None: not
        recorded).
      parameters: trainable scalars.
      epochs_done, epochs_planned: progress.
      curve: ``(epoch, validation metric)`` of every epoch.
    """

    scoring: str
    seed: int
    run: Path
    action: str
    finished: bool
    validation: float | None
    test: float | None
    tokens_per_second: float | None
    wall_seconds: float | None
    parameters: int | None
    epochs_done: int
    epochs_planned: int | None
    curve: tuple[tuple[int, float], ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        out = dataclasses.asdict(self)
        out["run"] = str(self.run)
        out["curve"] = [list(p) for p in self.curve]
        return out


@dataclass(frozen=True)
class ScoringRow:
    """A scoring's line of the table: means ± sample standard deviations over seeds.

    ``*_std`` is None with one finished seed; ``best`` marks the best validation mean.
    """

    scoring: str
    seeds: int
    validation_mean: float | None
    validation_std: float | None
    test_mean: float | None
    test_std: float | None
    tokens_per_second: float | None
    wall_seconds: float | None
    parameters: int | None
    best: bool = False


@dataclass(frozen=True)
class Study:
    """What :func:`compare` produced (also ``study.json``)."""

    folder: Path
    task: str
    metric: str
    higher_is_better: bool
    settings: dict[str, Any]
    scorings: tuple[str, ...]
    seeds: tuple[int, ...]
    runs: tuple[StudyRun, ...]
    table: tuple[ScoringRow, ...]
    best: str | None
    wall_seconds: float

    @property
    def name(self) -> str:
        """The study folder's name."""
        return self.folder.name

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "version": __version__,
            "study": self.name,
            "folder": str(self.folder),
            "task": self.task,
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "selected_on": "validation",
            "best": self.best,
            "wall_seconds": self.wall_seconds,
            "scorings": list(self.scorings),
            "seeds": list(self.seeds),
            "table": [dataclasses.asdict(r) for r in self.table],
            "runs": [r.to_dict() for r in self.runs],
            "settings": self.settings,
        }


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def _settings(spec, base: TrainRequest, data, loss: str) -> dict[str, Any]:
    """What every run of the study shares (all but the scoring and the seed)."""
    model = dict(base.model)
    model["attention"] = {k: v for k, v in model.get("attention", {}).items() if k != "scoring"}
    plan = dataclasses.asdict(base.train or TrainConfig())
    plan.update(base.overrides)
    plan.pop("seed")
    return _jsonable(
        {
            "task": spec.name,
            "loss": loss,
            "data": dataclasses.asdict(data),
            "train": plan,
            "model": model,
        }
    )


def _first_difference(old: Any, new: Any, where: str = "") -> str | None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            found = _first_difference(old.get(key), new.get(key), f"{where}.{key}".strip("."))
            if found:
                return found
        return None
    return None if old == new else f"{where}={old!r}, this call asks {new!r}"


def _check_folder(folder: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """The saved study (``{}`` if none) after checking its runs share these settings."""
    if not folder.exists():
        return {}
    if not folder.is_dir():
        raise RunError(f"study folder '{folder}' is a file: pass --study with another name")
    has_runs = any((c / "config.json").is_file() for c in folder.iterdir() if c.is_dir())
    saved = read_json(folder / STUDY_FILE) if (folder / STUDY_FILE).is_file() else None
    if saved is None:
        if has_runs:
            raise RunError(
                f"'{folder}' holds runs but no {STUDY_FILE}: it is not a study; pass --study "
                "with another name"
            )
        return {}
    diff = _first_difference(saved.get("settings"), settings)
    if has_runs and diff:
        raise RunError(
            f"study '{folder}' holds runs with other settings ({diff}): pass the same options, "
            "or --study NAME for a new study"
        )
    return saved


def _study_name(spec, data) -> str:
    stem = Path(str(data.source)).stem or str(data.source)
    slug = re.sub(r"[^a-z0-9_.-]+", "-", stem.lower()).strip("-.")[:40] or "data"
    return f"compare-{spec.name}-{slug}"


def _state_of(run: RunPaths) -> tuple[str, str]:
    """``(action, why)`` for a run folder that may hold an earlier attempt."""
    if not run.root.is_dir() or not any(run.root.iterdir()):
        return "trained", ""
    if run.config.is_file() and read_run(run.root).finished:
        return "skipped", "finished"
    state = read_json(run.state) if run.state.is_file() else None
    if state is not None and not state.get("finished"):
        return "resumed", f"after epoch {state['epoch']} (the --resume path)"
    why = "its test evaluation is missing" if state else "it never finished an epoch"
    return "retrained", f"{why}; training it again"


def _parameters(run: RunPaths) -> int | None:
    # Shapes only (nnx.eval_shape): no weights are made or read.
    from flax import nnx

    from semalign.workflows.fit import parameter_count
    from semalign.workflows.loading import read_configs, run_spec

    try:
        model_cfg, _, _ = read_configs(run)
        task = run_spec(run).load()
        return parameter_count(nnx.eval_shape(lambda: task.build(model_cfg, rngs=nnx.Rngs(0))))
    except (RunError, ValueError):
        return None


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def _table(runs: list[StudyRun], scorings, higher_is_better: bool) -> tuple[ScoringRow, ...]:
    rows = []
    for scoring in scorings:
        done = [r for r in runs if r.scoring == scoring and r.finished]
        val = _mean_std([r.validation for r in done if r.validation is not None])
        test = _mean_std([r.test for r in done if r.test is not None])
        speed = [r.tokens_per_second for r in done if r.tokens_per_second is not None]
        walls = [r.wall_seconds for r in done if r.wall_seconds is not None]
        rows.append(
            ScoringRow(
                scoring=scoring,
                seeds=len(done),
                validation_mean=val[0],
                validation_std=val[1],
                test_mean=test[0],
                test_std=test[1],
                tokens_per_second=statistics.fmean(speed) if speed else None,
                wall_seconds=statistics.fmean(walls) if walls else None,
                parameters=next((r.parameters for r in done), None),
            )
        )
    ranked = [r for r in rows if r.validation_mean is not None]
    if not ranked:
        return tuple(rows)
    sign = 1.0 if higher_is_better else -1.0
    best = max(ranked, key=lambda r: sign * r.validation_mean).scoring
    return tuple(dataclasses.replace(r, best=r.scoring == best) for r in rows)


def compare(req: CompareRequest, reporter: Reporter | None = None, run_reporter=None) -> Study:
    """Train (or pick up) every scoring × seed run of a study and tabulate them.

    Args:
      req: the study.
      reporter: receives one message per run (what is done with it) and the summary.
      run_reporter: ``() -> Reporter`` giving each training its own progress sink
        (default: silent).

    Returns:
      The :class:`Study`; ``study.json`` in its folder holds the same.

    Raises:
      ValueError: no scoring, an unknown or repeated one, ``seeds`` < 1, a bad task or
        loss.
      RunError: the study folder holds runs with other settings, or runs but no
        ``study.json``.
      DataError: from training (bad data), before the first run folder is made.
    """
    from semalign.attention import scoring as scoring_registry

    reporter = reporter or SilentReporter()
    t0 = time.perf_counter()
    if req.seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {req.seeds}")
    if not req.scorings:
        raise ValueError("--scoring names no scoring: pass e.g. --scoring dot,cosine")
    for name in req.scorings:
        scoring_registry.get(name)  # unknown: one line with a close match and the choices
    if len(set(req.scorings)) < len(req.scorings):
        raise ValueError(f"--scoring repeats a name: {','.join(req.scorings)}")
    base = req.base
    spec = tasks.get(base.task or tasks.DEFAULT_TASK)
    loss = spec.check_loss(base.loss)
    data = base.data
    if data is None:
        try:
            data = spec.data_config()
        except (TypeError, ValueError):
            raise DataError(f"task {spec.name!r} has no built-in data: pass --data") from None
    plan = dataclasses.replace(base.train or TrainConfig(), **base.overrides)
    settings = _settings(spec, base, data, loss)
    folder = Path(base.runs_dir) / (req.study or _study_name(spec, data))
    saved = _check_folder(folder, settings)
    # Wall seconds per run (folder name), kept across calls: a skipped run keeps its time.
    walls: dict[str, float] = dict(saved.get("wall_seconds_by_run", {}))
    seeds = tuple(range(plan.seed, plan.seed + req.seeds))
    pairs = [(s, seed) for s in req.scorings for seed in seeds]
    runs: list[StudyRun] = []

    def write(table=()) -> Study:
        folder.mkdir(parents=True, exist_ok=True)
        row = next((r for r in table if r.best), None)
        study = Study(
            folder=folder,
            task=spec.name,
            metric=spec.metric,
            higher_is_better=spec.higher_is_better,
            settings=settings,
            scorings=tuple(req.scorings),
            seeds=seeds,
            runs=tuple(runs),
            table=tuple(table),
            best=None if row is None else row.scoring,
            wall_seconds=time.perf_counter() - t0,
        )
        write_json(folder / STUDY_FILE, {**study.to_dict(), "wall_seconds_by_run": walls})
        return study

    write()
    for i, (name, seed) in enumerate(pairs, 1):
        run = RunPaths(folder / f"{name}-s{seed}")
        action, why = _state_of(run)
        key = run.name
        note = f" ({why})" if why else ""
        reporter.message(f"[{i}/{len(pairs)}] {name} seed {seed}: {action} {run.root}{note}")
        if action != "skipped":
            attention = {**base.model.get("attention", {}), "scoring": name}
            if action == "resumed":
                one = TrainRequest(
                    task=spec.name,
                    loss=loss,
                    resume=str(run.root),
                    runs_dir=str(folder),
                    stop_after=base.stop_after,
                    tensorboard=base.tensorboard,
                    mesh=base.mesh,
                    distributed=base.distributed,
                )
            else:
                one = dataclasses.replace(
                    base,
                    task=spec.name,
                    loss=loss,
                    data=data,
                    train=dataclasses.replace(plan, seed=seed),
                    overrides={},
                    model={**base.model, "attention": attention},
                    runs_dir=str(folder),
                    name=run.name,
                    overwrite=action == "retrained",
                    resume=None,
                )
            result = train(one, run_reporter() if run_reporter else SilentReporter())
            before = walls.get(key, 0.0) if action == "resumed" else 0.0
            walls[key] = before + result.seconds
        row = row_of(read_run(run.root))
        record = row.record
        runs.append(
            StudyRun(
                scoring=name,
                seed=seed,
                run=run.root,
                action=action,
                finished=record.finished,
                validation=row.validation,
                test=row.test,
                tokens_per_second=record.tokens_per_second,
                wall_seconds=walls.get(key),
                parameters=_parameters(run),
                epochs_done=record.epochs_done,
                epochs_planned=record.epochs_planned,
                curve=record.validation,
            )
        )
        write()
    return write(_table(runs, req.scorings, spec.higher_is_better))
