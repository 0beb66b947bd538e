"""``semalign train``: train a model for any task and write a run folder."""

from __future__ import annotations

import dataclasses
import json
from enum import StrEnum
from typing import Annotated

import typer

from semalign.cli._errors import user_errors
from semalign.workflows.options import inherit, model_options, new_plan, train_config

__all__ = ["model_options", "resume_overrides", "train", "train_config", "typed_options"]

#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130

#: Options of one call, not of the plan: they never conflict with a resumed run.
CALL_OPTIONS = frozenset(
    {
        "task",
        "loss",
        "name",
        "runs_dir",
        "overwrite",
        "resume",
        "stop_after",
        "tensorboard",
        "mesh",
        "distributed",
        "quiet",
        "as_json",
    }
)


class Schedule(StrEnum):
    """Learning-rate schedules."""

    constant = "constant"
    cosine = "cosine"
    exponential = "exponential"


class DType(StrEnum):
    """Computation dtypes."""

    float32 = "float32"
    bfloat16 = "bfloat16"


class Tokenizer(StrEnum):
    """Tokenizer kinds."""

    wordpiece = "wordpiece"
    word = "word"


class Truncation(StrEnum):
    """Which tokens of a text longer than --max-len are kept."""

    head = "head"
    tail = "tail"
    head_tail = "head-tail"


class Positions(StrEnum):
    """Position encodings."""

    learned = "learned"
    sinusoidal = "sinusoidal"
    none = "none"


class Pooling(StrEnum):
    """Pooling of token states."""

    mean = "mean"
    cls = "cls"
    max = "max"
    attention = "attention"


def typed_options(ctx: typer.Context, options: dict) -> set[str]:
    """Names of the options the user gave (command line or environment), not defaults."""
    # By name: typer may carry its own copy of click's ParameterSource enum.
    given = {"COMMANDLINE", "ENVIRONMENT"}
    return {n for n in options if getattr(ctx.get_parameter_source(n), "name", None) in given}


def resume_overrides(options: dict, typed: set[str]) -> dict:
    """The train fields typed on ``--resume`` (the only plan changes a resume accepts).

    Raises:
      ValueError: a typed model or data option (the run's are fixed).
    """
    from semalign.config import TrainConfig

    # --seed also seeds the data split (unless --split-seed), so it is part of the fixed data.
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"seed"}
    fixed = sorted(typed - fields - CALL_OPTIONS)
    if fixed:
        shown = ", ".join("--" + n.replace("_", "-") for n in fixed)
        raise ValueError(
            f"{shown} cannot change on --resume (the run's model and data are fixed): drop "
            "them, or train a new run with --name"
        )
    planned = dataclasses.asdict(train_config(options))
    return {n: planned[n] for n in sorted(typed & fields)}


def interrupted_message(stop: KeyboardInterrupt) -> str:
    """What Ctrl-C left: the checkpoint kept and the command that continues the run."""
    run, epoch = getattr(stop, "run", None), getattr(stop, "epoch", 0)
    if run is None or epoch == 0:
        where = f" ({run} has no finished epoch; train it again with --overwrite)" if run else ""
        return f"interrupted before the first epoch finished: nothing to resume{where}"
    if getattr(stop, "finished", False):
        return (
            f"interrupted after the last epoch ({epoch}), before the test evaluation: "
            f"semalign evaluate --run {run}"
        )
    return (
        f"interrupted: the checkpoint of epoch {epoch} is kept (checkpoints are written at "
        f"the end of each epoch); continue with: semalign train --resume --name {run.name} "
        f"--runs-dir {run.parent}"
    )


def train(
    ctx: typer.Context,
    task: Annotated[
        str | None,
        typer.Option(
            help="What to learn: classification (default; one text, a label), similarity "
            "(two texts, a score), pair-classification (two texts, a label). "
            "See `semalign tasks`. On --resume: the run's own."
        ),
    ] = None,
    scoring: Annotated[
        str,
        typer.Option(
            "--scoring",
            "--attention-type",
            help="Scoring name, or one per head: dot,cosine,l1,differential. "
            "See `semalign scorings`.",
        ),
    ] = "dot",
    dataset: Annotated[
        str, typer.Option(help="Built-in dataset: imdb or rotten-tomatoes.")
    ] = "imdb",
    data: Annotated[
        str | None,
        typer.Option(
            help="CSV / TSV / JSONL file or a folder of <label>/*.txt (overrides --dataset)."
        ),
    ] = None,
    text_column: Annotated[str, typer.Option(help="Text column of --data.")] = "text",
    label_column: Annotated[str, typer.Option(help="Label column of --data.")] = "label",
    text_a_column: Annotated[
        str, typer.Option(help="Pair tasks: column of the first text.")
    ] = "sentence1",
    text_b_column: Annotated[
        str, typer.Option(help="Pair tasks: column of the second text.")
    ] = "sentence2",
    score_column: Annotated[str, typer.Option(help="Similarity: column of the score.")] = "score",
    loss: Annotated[
        str | None,
        typer.Option(help="The task's loss (similarity: cosent (default) or cosine-mse)."),
    ] = None,
    epochs: Annotated[int, typer.Option(help="Maximum epochs.")] = 3,
    batch_size: Annotated[int, typer.Option(help="Examples per step.")] = 32,
    dim: Annotated[
        int | None,
        typer.Option(
            help="Embedding / model width. Default: 32 for classification, 64 for the other tasks.",
            show_default=False,
        ),
    ] = None,
    heads: Annotated[
        int | None,
        typer.Option(
            help="Attention heads. Default: 2 for classification, 4 for the other tasks.",
            show_default=False,
        ),
    ] = None,
    layers: Annotated[int, typer.Option(help="Encoder blocks.")] = 1,
    mlp_ratio: Annotated[
        int | None,
        typer.Option(
            help="MLP width over dim (0: no MLP). Default: 0 for classification, 2 for the "
            "other tasks.",
            show_default=False,
        ),
    ] = None,
    max_len: Annotated[
        int | None,
        typer.Option(
            help="Tokens per text (sequence length). Default: 256 for classification, 512 "
            "for the other tasks.",
            show_default=False,
        ),
    ] = None,
    vocab_size: Annotated[int, typer.Option(help="Tokenizer vocabulary (max features).")] = 20_000,
    truncation: Annotated[
        Truncation | None,
        typer.Option(
            help="Classification: the tokens of a text longer than --max-len that are kept: "
            "head (its beginning), tail (its end) or head-tail (a quarter from the "
            "beginning, the rest from the end). Saved with the run; evaluate and predict "
            "cut the same way. Default: head-tail.",
            show_default=False,
        ),
    ] = None,
    tokenizer: Annotated[Tokenizer, typer.Option(help="Tokenizer model.")] = Tokenizer.wordpiece,
    positions: Annotated[Positions, typer.Option(help="Position encoding.")] = Positions.learned,
    pooling: Annotated[Pooling, typer.Option(help="Pooling of token states.")] = Pooling.mean,
    bigram_buckets: Annotated[
        int | None,
        typer.Option(
            help="Hashed bigram embedding rows added to each token (0: none). Default: "
            "32768 for classification, 0 for the other tasks.",
            show_default=False,
        ),
    ] = None,
    causal: Annotated[bool, typer.Option(help="Causal attention mask.")] = False,
    window: Annotated[
        str | None, typer.Option(help="Local attention window: N or LEFT,RIGHT.")
    ] = None,
    tie_qk: Annotated[bool, typer.Option(help="Share the query and key projection.")] = False,
    dropout: Annotated[float, typer.Option(help="Dropout rate.")] = 0.3,
    attention_dropout: Annotated[float, typer.Option(help="Dropout on attention weights.")] = 0.0,
    l1: Annotated[float, typer.Option("--l1", help="L1 penalty on weight matrices.")] = 0.0,
    l2: Annotated[float, typer.Option("--l2", help="L2 penalty on weight matrices.")] = 0.0,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 1e-3,
    schedule: Annotated[Schedule, typer.Option(help="Learning-rate schedule.")] = Schedule.cosine,
    warmup_steps: Annotated[
        int | None, typer.Option(help="Linear warm-up steps (default 5 % of all steps).")
    ] = None,
    decay_rate: Annotated[float, typer.Option(help="Exponential schedule: decay factor.")] = 0.5,
    decay_steps: Annotated[
        int | None, typer.Option(help="Exponential schedule: steps per decay (default 1 epoch).")
    ] = None,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay.")] = 0.01,
    clip_norm: Annotated[float, typer.Option(help="Gradient-norm clip (0: off).")] = 1.0,
    patience: Annotated[int, typer.Option(help="Early-stopping patience in epochs (0: off).")] = 2,
    min_delta: Annotated[float, typer.Option(help="Smallest improvement that counts.")] = 0.0,
    restore_best: Annotated[
        bool, typer.Option(help="Keep the best epoch's weights, not the last.")
    ] = True,
    seed: Annotated[int, typer.Option(help="Seed of init, dropout, shuffling and split.")] = 0,
    split_seed: Annotated[
        int | None,
        typer.Option(
            help="Seed of the train / validation / test split alone (default: --seed; "
            "with --init-from: the source run's), so seeds can vary on one split."
        ),
    ] = None,
    stream: Annotated[
        bool | None,
        typer.Option(
            "--stream/--no-stream",
            help="causal-lm, mlm, rtd, contrastive: read the --data file or folder from disk "
            "as it is used, never whole (default: when it is over 256 MiB); the same splits "
            "either way. Other tasks refuse it, as they refuse --whole-word-masking and "
            "--temperature.",
        ),
    ] = None,
    whole_word_masking: Annotated[
        bool, typer.Option(help="mlm, rtd: mask every WordPiece piece of a chosen word together.")
    ] = False,
    temperature: Annotated[
        float | None,
        typer.Option(help="contrastive: τ of the InfoNCE loss (default 0.05, as SimCSE)."),
    ] = None,
    init_from: Annotated[
        str | None,
        typer.Option(
            help="Start from this run's trunk and tokenizer (a new head); options not "
            "typed take its values, typed ones must match it."
        ),
    ] = None,
    freeze_encoder: Annotated[
        bool, typer.Option(help="Train only the head: the trunk gets no updates.")
    ] = False,
    encoder_lr_scale: Annotated[
        float, typer.Option(help="The trunk's learning rate over the head's (e.g. 0.1).")
    ] = 1.0,
    dtype: Annotated[DType, typer.Option(help="Computation dtype.")] = DType.float32,
    micro_batch: Annotated[
        int | None,
        typer.Option(
            help="Rows per micro-batch the step accumulates the gradient over (same "
            "update; 0: off). Default: 2 on a CPU for losses that sum over rows, else off.",
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Run folder name.")] = None,
    runs_dir: Annotated[str, typer.Option(help="Parent folder of runs.")] = "runs",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run of that name.")] = False,
    resume: Annotated[
        bool,
        typer.Option(
            help="Continue the run named by --name (default: newest) with its saved plan; "
            "typed train options (--epochs, --patience, ...) change it."
        ),
    ] = False,
    stop_after: Annotated[
        int | None, typer.Option(help="Stop after N epochs in this call; continue with --resume.")
    ] = None,
    tensorboard: Annotated[bool, typer.Option(help="Write TensorBoard events.")] = True,
    mesh: Annotated[
        str | None,
        typer.Option(help="Device mesh: auto or data=N,model=M (default: auto with >1 device)."),
    ] = None,
    distributed: Annotated[
        bool,
        typer.Option(
            help="Several processes (hosts): call jax.distributed.initialize() first "
            "(JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID or a cluster "
            "manager); process 0 writes the run."
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Train a model for a task (default: a classifier on IMDB); write runs/<name>/.

    Example: semalign train --scoring differential --epochs 3
    """
    from rich.console import Console

    from semalign.cli._progress import RichReporter, print_report

    options = dict(locals())
    del options["ctx"]
    with user_errors():
        from semalign.runs import newest_run
        from semalign.workflows.reporting import SilentReporter
        from semalign.workflows.train import TrainRequest
        from semalign.workflows.train import train as run_training

        if resume:
            # The saved config is the plan; only what was typed changes it.
            where = str(newest_run(runs_dir).root) if name is None else f"{runs_dir}/{name}"
            plan = {
                "resume": where,
                "overrides": resume_overrides(options, typed_options(ctx, options)),
            }
        else:
            if init_from is not None:
                options = inherit(options, typed_options(ctx, options))
            plan = new_plan(options)
        req = TrainRequest(
            **{"task": task, **plan},
            loss=loss,
            runs_dir=runs_dir,
            name=name,
            overwrite=overwrite,
            stop_after=stop_after,
            tensorboard=tensorboard,
            mesh=mesh,
            distributed=distributed,
            init_from=None if resume else init_from,
        )
        reporter = SilentReporter() if (quiet or as_json) else RichReporter()
        try:
            result = run_training(req, reporter)
        except KeyboardInterrupt as stop:
            if isinstance(reporter, RichReporter):
                reporter.stop()
            typer.echo(interrupted_message(stop), err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        finally:
            if isinstance(reporter, RichReporter):
                reporter.stop()
    if not result.lead:  # process 0 of a --distributed training speaks for all
        return
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    if quiet:
        return
    console = Console()
    if result.test is None:
        console.print(
            f"stopped after epoch {result.epochs_done}; continue with "
            f"`semalign train --resume --name {result.run.name}`"
        )
        return
    print_report(
        console,
        f"test ({result.run}, {result.served} checkpoint: epoch {result.served_epoch}, "
        "the one evaluate / predict load)",
        result.test,
    )
    console.print(
        f"best epoch {result.best_epoch} of {result.epochs_done}"
        f"{' (early stop)' if result.stopped_early else ''} · "
        f"{result.seconds:.0f} s · {result.tokens_per_second:,.0f} train tokens/s · "
        f"{result.compiled_shapes} batch shapes"
    )
