"""The ``semalign`` command line. One file per command; JAX is imported only inside commands."""

from __future__ import annotations

from typing import Annotated

import typer

from semalign import __version__
from semalign.cli import compare as _compare
from semalign.cli import devices as _devices
from semalign.cli import embed as _embed
from semalign.cli import evaluate as _evaluate
from semalign.cli import generate as _generate
from semalign.cli import inspect as _inspect
from semalign.cli import predict as _predict
from semalign.cli import pretrain as _pretrain
from semalign.cli import runs as _runs
from semalign.cli import scorings as _scorings
from semalign.cli import tasks as _tasks
from semalign.cli import train as _train
from semalign.cli._errors import user_errors
from semalign.cli.export import export_app
from semalign.plugins import ENV_VAR, load_plugins

app = typer.Typer(
    name="semalign",
    help="Text classification and semantic alignment with pluggable attention scoring.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"semalign {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
    plugin: Annotated[
        list[str] | None,
        typer.Option(
            "--plugin",
            envvar=ENV_VAR,
            help="Import a module or .py file first (it may register scorings); repeatable. "
            f"Also ${ENV_VAR} (space-separated).",
        ),
    ] = None,
) -> None:
    """Text classification and semantic alignment with pluggable attention scoring."""
    if plugin:
        with user_errors():
            load_plugins(plugin)


app.command("train")(_train.train)
app.command("pretrain")(_pretrain.pretrain)
app.command("evaluate")(_evaluate.evaluate)
app.command("predict")(_predict.predict)
app.command("inspect")(_inspect.inspect)
app.command("embed")(_embed.embed)
app.command("generate")(_generate.generate)
app.command("scorings")(_scorings.scorings)
app.command("tasks")(_tasks.tasks)
app.command("devices")(_devices.devices)
app.command("compare")(_compare.compare)
app.command("runs")(_runs.runs)
app.add_typer(export_app, name="export")


def main() -> None:
    """Console-script entry point: host devices and compilation cache set, then the command."""
    from semalign.compile_cache import cli_compile_cache
    from semalign.data.token_cache import cli_data_cache
    from semalign.sharding import cli_host_devices

    cli_host_devices()  # before any command imports JAX (the micro-batched CPU step)
    cli_compile_cache()  # likewise: JAX reads it when it starts
    cli_data_cache()  # tokenizers and encodings a run on the same data made before
    app()
