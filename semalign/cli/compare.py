"""``semalign compare``: one run per scoring × seed in a study folder, and a table of them.

Every ``semalign train`` option passes through: the command's parameters are train's own
(same names, types, defaults and help), less the few that name one run (``--name``,
``--overwrite``, ``--resume``) and with ``--scoring`` taking a list; the request is built
by the same code as train's (:func:`semalign.workflows.options.new_plan`).
"""

from __future__ import annotations

import inspect
import json
from typing import Annotated, Any

import typer

from semalign.cli import train as _train
from semalign.cli._errors import user_errors

#: Train options a study does not take: it names, resumes and never overwrites its runs.
NOT_PASSED = frozenset({"ctx", "scoring", "name", "overwrite", "resume"})

_OWN = [
    inspect.Parameter(
        "scoring",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option(
                "--scoring",
                help="Scorings to compare, comma-separated, one run each per seed "
                "(default: dot,cosine,l1,l2,differential). See `semalign scorings`.",
            ),
        ],
    ),
    inspect.Parameter(
        "seeds",
        inspect.Parameter.KEYWORD_ONLY,
        default=3,
        annotation=Annotated[
            int,
            typer.Option(
                help="Runs per scoring, seeded --seed, --seed+1, ... (init, dropout, "
                "shuffling; the data split stays the one of --seed)."
            ),
        ],
    ),
    inspect.Parameter(
        "study",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option(
                help="Study folder under --runs-dir (default: compare-<task>-<data>). "
                "Rerunning continues it: finished runs are skipped."
            ),
        ],
    ),
]


class _Messages:
    """Study lines on stderr; each training gets a fresh progress display."""

    def __init__(self, console):
        self.console = console
        self.current = None

    def start(self, info):  # noqa: D102
        pass

    def epoch_start(self, epoch, epochs, steps):  # noqa: D102
        pass

    def step(self, step, metrics):  # noqa: D102
        pass

    def epoch_end(self, epoch, metrics):  # noqa: D102
        pass

    def message(self, text: str) -> None:  # noqa: D102
        self.stop()
        self.console.print(text, highlight=False)

    def run_reporter(self):
        """A fresh :class:`RichReporter` for the next training."""
        from semalign.cli._progress import RichReporter

        self.stop()
        self.current = RichReporter(self.console)
        return self.current

    def stop(self) -> None:
        """Close the last training's progress display."""
        if self.current is not None:
            self.current.stop()
            self.current = None


def compare(ctx: typer.Context, **options: Any) -> None:
    """Compare scorings: one run per scoring × seed, validation and test side by side.

    Writes <runs-dir>/<study>/<scoring>-s<seed>/, study.json, curves.png, report.html.

    Example: semalign compare --scoring dot,cosine,differential --seeds 2 --epochs 3
    """
    from rich.console import Console

    scoring, seeds, study_name = options.pop("scoring"), options.pop("seeds"), options.pop("study")
    quiet, as_json = options["quiet"], options["as_json"]
    messages = _Messages(Console(stderr=True))
    with user_errors():
        from semalign.render import study as render
        from semalign.workflows.compare import DEFAULT_SCORINGS, CompareRequest
        from semalign.workflows.compare import compare as run_study
        from semalign.workflows.options import new_plan
        from semalign.workflows.train import TrainRequest

        if options.get("init_from"):
            raise ValueError(
                "compare trains every scoring from scratch, and a trunk from --init-from "
                "fixes the scoring to its own: fine-tune it with `semalign train --init-from`"
            )
        # The plan of a run of the first scoring; the study sets each run's scoring.
        plan = new_plan({**options, "scoring": "dot"})
        base = TrainRequest(
            loss=options["loss"],
            **plan,
            runs_dir=options["runs_dir"],
            stop_after=options["stop_after"],
            tensorboard=options["tensorboard"],
            mesh=options["mesh"],
            distributed=options["distributed"],
        )
        names = (
            DEFAULT_SCORINGS if scoring is None else tuple(s.strip() for s in scoring.split(","))
        )
        req = CompareRequest(base, scorings=names, seeds=seeds, study=study_name)
        loud = not (quiet or as_json)
        try:
            result = run_study(
                req,
                messages if loud else None,
                run_reporter=messages.run_reporter if loud else None,
            )
        finally:
            messages.stop()
        files = render.write_files(result)
    if as_json:
        out = {**result.to_dict(), "files": {k: str(v) for k, v in files.items()}}
        typer.echo(json.dumps(out, indent=2))
        return
    if quiet:
        return
    console = Console()
    console.print(render.table(result))
    console.print(
        f"curves {files['png']} · report {files['html']} · {result.folder / 'study.json'}",
        highlight=False,
    )


def _signature() -> inspect.Signature:
    train = inspect.signature(_train.train, eval_str=True)
    ctx = train.parameters["ctx"]
    passed = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for name, p in train.parameters.items()
        if name not in NOT_PASSED
    ]
    return inspect.Signature([ctx, *_OWN, *passed])


# Typer reads the options from the signature: train's own definitions, not copies.
compare.__signature__ = _signature()  # type: ignore[attr-defined]
compare.__annotations__ = {p.name: p.annotation for p in compare.__signature__.parameters.values()}
