"""``semalign generate``: continue a prompt with a language-model run, streamed."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from semalign.cli._errors import user_errors


def generate(
    prompt: Annotated[str, typer.Argument(help="The start of the text.")],
    run: Annotated[str | None, typer.Option(help="Run folder (default: newest in ./runs).")] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Most new tokens.")] = 64,
    temperature: Annotated[float, typer.Option(help="Divide the logits by this (> 0).")] = 1.0,
    top_k: Annotated[int | None, typer.Option(help="Sample among the k most likely.")] = None,
    top_p: Annotated[
        float | None, typer.Option(help="Sample among the most likely tokens reaching p.")
    ] = None,
    greedy: Annotated[bool, typer.Option(help="Always the most likely token.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the sampling.")] = 0,
    cache: Annotated[
        bool, typer.Option(help="Decode with the KV cache (--no-cache: a full pass a token).")
    ] = True,
    checkpoint: Annotated[
        str, typer.Option(help="served (default: what training reported), best or last.")
    ] = "served",
    runs_dir: Annotated[str, typer.Option(help="Where runs live.")] = "runs",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, no streaming.")] = False,
) -> None:
    """Continue PROMPT with a causal-lm run; tokens appear as they are chosen.

    Example: semalign generate "The movie" --max-new-tokens 40 --top-p 0.9 --seed 1
    """
    from rich.console import Console

    console = Console(highlight=False)
    shown = []

    def show(token: str) -> None:
        if not shown:  # the prompt once generation has started (errors stay one line)
            console.print(prompt, end="", style="bold", soft_wrap=True)
        shown.append(token)
        # WordPiece continuation pieces ("##ing") join the previous piece.
        console.print(token[2:] if token.startswith("##") else f" {token}", end="", soft_wrap=True)

    with user_errors():
        from semalign.workflows.generate import SamplingConfig
        from semalign.workflows.generate import generate as run_generate

        sampling = SamplingConfig(
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            greedy=greedy,
            seed=seed,
        )
        result = run_generate(
            prompt,
            run=run,
            runs_dir=runs_dir,
            sampling=sampling,
            use_cache=cache,
            checkpoint=checkpoint,
            on_token=None if as_json else show,
        )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    if not shown:
        console.print(prompt, end="", style="bold", soft_wrap=True)
    console.print()
    console.print(
        f"[dim]{len(result.ids)} tokens · stopped: {result.stopped} · "
        f"{result.tokens_per_second:,.1f} tokens/s{' (KV cache)' if result.cache else ''}[/]"
    )
