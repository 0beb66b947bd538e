"""Text generation from a language-model run, with a KV cache for every scoring.

Incremental decoding: the prompt goes through the model one token at a time filling each
layer's key / value cache (:meth:`semalign.nn.layers.MultiHeadAttention.decode`), then
each new token costs one query against the cached keys instead of a full forward pass.
Greedy decoding with the cache gives the tokens of the full forward pass (tested for every
scoring); ``use_cache=False`` runs the full pass at every step (the reference, and the
benchmark's baseline). Sampling (temperature, top-k, top-p) runs in numpy from ``seed``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semalign.data.tokenizer import CLS_ID, MASK_ID, PAD_ID, SEP_ID, UNK_ID
from semalign.errors import SemalignError

__all__ = ["Decoder", "Generation", "SamplingConfig", "generate", "sample"]


@dataclass(frozen=True)
class SamplingConfig:
    """How the next token is chosen.

    Attributes:
      max_new_tokens: stop after this many new tokens (or at ``[SEP]``, or at the
        model's context length).
      temperature: logits are divided by it (> 0).
      top_k: keep the k most probable tokens (None: all).
      top_p: keep the smallest set of tokens whose probability reaches p (None: all).
      greedy: always the most probable token (ignores the three above).
      seed: of the sampling.
    """

    max_new_tokens: int = 64
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    greedy: bool = False
    seed: int = 0

    def __post_init__(self):
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise SemalignError(f"--max-new-tokens must be >= 1, got {self.max_new_tokens!r}")
        if not self.temperature > 0:
            raise SemalignError(
                f"--temperature must be > 0, got {self.temperature!r} (use --greedy for the "
                "most probable token)"
            )
        if self.top_k is not None and self.top_k < 1:
            raise SemalignError(f"--top-k must be >= 1, got {self.top_k!r}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise SemalignError(f"--top-p must be in (0, 1], got {self.top_p!r}")


@dataclass(frozen=True)
class Generation:
    """What :func:`generate` produced.

    Attributes:
      run: the run's name.
      checkpoint: which checkpoint was loaded.
      prompt: the prompt as given.
      text: the generated continuation, detokenized.
      tokens: the new tokens' strings.
      ids: the new tokens' ids.
      stopped: ``eos`` ([SEP] was generated), ``max_new_tokens`` or ``context`` (the
        model's longest sequence was reached).
      seconds: decoding time (prompt and new tokens; compilation included).
      cache: whether the KV cache was used.
    """

    run: str
    checkpoint: str
    prompt: str
    text: str
    tokens: tuple[str, ...]
    ids: tuple[int, ...]
    stopped: str
    seconds: float
    cache: bool

    @property
    def tokens_per_second(self) -> float:
        """New tokens per second of decoding."""
        return len(self.ids) / max(self.seconds, 1e-9)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {**asdict(self), "tokens_per_second": self.tokens_per_second}


#: Ids never sampled: padding, [CLS], [UNK], [MASK] ([SEP] ends the text).
BANNED = (PAD_ID, CLS_ID, UNK_ID, MASK_ID)


def sample(logits: np.ndarray, cfg: SamplingConfig, rng: np.random.Generator) -> int:
    """The next token id from ``[vocab]`` logits (special tokens other than [SEP] banned)."""
    z = np.asarray(logits, np.float64).copy()
    z[list(BANNED)] = -np.inf
    if cfg.greedy:
        return int(np.argmax(z))
    z = z / cfg.temperature
    if cfg.top_k is not None and cfg.top_k < z.size:
        kth = np.partition(z, -cfg.top_k)[-cfg.top_k]
        z[z < kth] = -np.inf
    p = np.exp(z - np.max(z))
    p /= p.sum()
    if cfg.top_p is not None and cfg.top_p < 1:
        order = np.argsort(-p, kind="stable")
        keep = np.cumsum(p[order]) - p[order] < cfg.top_p  # the smallest set reaching p
        mask = np.zeros_like(p, bool)
        mask[order[keep]] = True
        p = np.where(mask, p, 0.0)
        p /= p.sum()
    return int(rng.choice(p.size, p=p))


class Decoder:
    """``decoder(ids so far [n], t) -> next-token logits [vocab]`` after the token at ``t``.

    With the cache, call it for ``t = 0, 1, ...`` in order (the prompt, then each new
    token); without, any ``t`` runs a full pass over ``ids[: t + 1]``. The model is split
    once and merged inside the compiled step (a step then costs its computation, not a
    walk over the model's Python objects), and the cache is donated, so it is updated in
    place. :meth:`reset` empties the cache and keeps the compiled step.

    Args:
      model: a language model with ``decode`` and ``init_cache``.
      use_cache: decode incrementally.
    """

    def __init__(self, model, *, use_cache: bool):
        import jax
        from flax import nnx

        graphdef, self.state = nnx.split(model)
        self.model, self.use_cache = model, use_cache
        self.length = model.config.max_len
        if use_cache:

            def step(state, window, cache, t):
                logits, cache = nnx.merge(graphdef, state).decode(window, cache, t)
                return logits[0], cache

            self._step = jax.jit(step, donate_argnums=2)
        else:

            def full(state, ids, t):
                return nnx.merge(graphdef, state)(ids).logits[0, t]

            self._step = jax.jit(full)
        self.reset()

    def reset(self) -> None:
        """Forget the cached tokens."""
        self.cache = self.model.init_cache(1) if self.use_cache else None

    def __call__(self, ids: np.ndarray, t: int) -> np.ndarray:  # noqa: D102
        import jax.numpy as jnp

        if not self.use_cache:
            buffer = np.zeros((1, self.length), np.int32)  # one shape: one compilation
            buffer[0, : t + 1] = ids[: t + 1]
            return np.asarray(self._step(self.state, jnp.asarray(buffer), jnp.int32(t)))
        window = np.array([[ids[t - 1] if t > 0 else PAD_ID, ids[t]]], np.int32)
        logits, self.cache = self._step(self.state, jnp.asarray(window), self.cache, jnp.int32(t))
        return np.asarray(logits)


def generate(
    prompt: str,
    *,
    run: str | Path | Any | None = None,
    runs_dir: str | Path = "runs",
    sampling: SamplingConfig | None = None,
    use_cache: bool = True,
    checkpoint: str = "served",
    on_token: Callable[[str], None] | None = None,
) -> Generation:
    """Continue ``prompt`` with a language-model run.

    Args:
      prompt: the start of the text.
      run: a run folder, None for the newest under ``runs_dir``, or a
        :class:`~semalign.workflows.loading.LoadedRun`.
      runs_dir: where runs live.
      sampling: how tokens are chosen (default: sampling at temperature 1, 64 tokens).
      use_cache: decode incrementally with the KV cache (False: a full pass per token).
      checkpoint: ``served`` (what training reported), ``best`` or ``last``.
      on_token: called with each new token's text as it is chosen (streaming).

    Returns:
      The :class:`Generation`.

    Raises:
      SemalignError: an empty prompt, one as long as the model's context, bad sampling
        settings, or a run whose task does not generate.
      RunError: no run, or an incomplete one.
    """
    from semalign.workflows.loading import LoadedRun, load_run

    sampling = sampling or SamplingConfig()
    if not isinstance(prompt, str) or not prompt.strip():
        raise SemalignError('the prompt is empty: give the start of a text, e.g. "The movie"')
    loaded = (
        run if isinstance(run, LoadedRun) else load_run(run, runs_dir=runs_dir, which=checkpoint)
    )
    if not loaded.spec.supports("generate"):
        raise SemalignError(
            loaded.spec.refusal(
                loaded.paths.name,
                "generate",
                "generate needs a causal-lm run (semalign train --task causal-lm)",
            )
        )
    context = loaded.max_len
    ids = np.asarray(loaded.tokenizer.encode(prompt).ids, np.int32)  # uncut: measured below
    if len(ids) < 2:
        raise SemalignError("the prompt has no tokens after normalisation: give some words")
    if len(ids) >= context:
        raise SemalignError(
            f"the prompt is {len(ids)} tokens ([CLS] included) and the model reads at most "
            f"{context}: shorten it to leave room for new tokens"
        )
    model = loaded.model
    step = Decoder(model, use_cache=use_cache)
    rng = np.random.default_rng(sampling.seed)
    tokens = list(int(i) for i in ids)
    start = time.perf_counter()
    logits = None
    for t in range(len(tokens) if use_cache else 0):  # prefill the cache
        logits = step(np.asarray(tokens), t)
    new: list[int] = []
    stopped = "max_new_tokens"
    while len(new) < sampling.max_new_tokens:
        if not use_cache:
            logits = step(np.asarray(tokens), len(tokens) - 1)
        token = sample(logits, sampling, rng)
        if token == SEP_ID:
            stopped = "eos"
            break
        new.append(token)
        tokens.append(token)
        if on_token is not None:
            on_token(loaded.tokenizer.id_to_token(token))
        if len(tokens) >= context:
            stopped = "context" if len(new) < sampling.max_new_tokens else stopped
            break
        if use_cache:
            logits = step(np.asarray(tokens), len(tokens) - 1)
    seconds = time.perf_counter() - start
    return Generation(
        run=loaded.paths.name,
        checkpoint=loaded.checkpoint,
        prompt=prompt,
        text=loaded.tokenizer.decode(new, skip_special_tokens=True),
        tokens=tuple(loaded.tokenizer.id_to_token(i) for i in new),
        ids=tuple(new),
        stopped=stopped,
        seconds=seconds,
        cache=use_cache,
    )
