"""Text generation from a language-model run, with a KV cache for every scoring.

Incremental decoding: the prompt goes through the model one token at a time filling each
layer's key / value cache (:meth:`semalign.nn.layers.MultiHeadAttention.decode`), then
each new token costs one query against the cached keys instead of a full forward pass.
Greedy decoding with the cache gives the tokens of the full forward pass (tested for every
scoring); ``use_cache=False`` runs the full pass at every step (the reference, and the
benchmark's baseline). Sampling (temperature, top-k, top-p) runs in numpy from ``seed``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semalign.data.tokenizer import CLS_ID, MASK_ID, PAD_ID, SEP_ID, UNK_ID
from semalign.errors import SemalignError

__all__ = ["Generation", "SamplingConfig", "generate", "sample"]


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


@functools.cache
def _cached_step():
    from flax import nnx

    @nnx.jit
    def step(model, ids, cache, t):
        return model.decode(ids, cache, t)

    return step


@functools.cache
def _full_step():
    from flax import nnx

    @nnx.jit
    def step(model, ids, t):
        return model(ids).logits[0, t]

    return step


def _decoder(model, *, use_cache: bool) -> Callable[[np.ndarray, int], np.ndarray]:
    """``(all ids so far [n], position t) -> next-token logits [vocab]`` after token ``t``."""
    import jax.numpy as jnp

    length = model.config.max_len
    if not use_cache:
        step = _full_step()

        def full(ids: np.ndarray, t: int) -> np.ndarray:
            buffer = np.zeros((1, length), np.int32)  # one shape: one compilation
            buffer[0, : t + 1] = ids[: t + 1]
            return np.asarray(step(model, jnp.asarray(buffer), jnp.int32(t)))

        return full
    step = _cached_step()
    state = {"cache": model.init_cache(1)}

    def cached(ids: np.ndarray, t: int) -> np.ndarray:
        window = np.array([[ids[t - 1] if t > 0 else PAD_ID, ids[t]]], np.int32)
        logits, state["cache"] = step(model, jnp.asarray(window), state["cache"], jnp.int32(t))
        return np.asarray(logits[0])

    return cached


def generate(
    prompt: str,
    *,
    run: str | Path | Any | None = None,
    runs_dir: str | Path = "runs",
    sampling: SamplingConfig | None = None,
    use_cache: bool = True,
    checkpoint: str = "best",
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
      checkpoint: ``best`` or ``last``.
      on_token: called with each new token's text as it is chosen (streaming).

    Returns:
      The :class:`Generation`.

    Raises:
      SemalignError: an empty prompt, one as long as the model's context, bad sampling
        settings, or a run whose task does not generate.
      RunError: no run, or an incomplete one.
    """
    from semalign.data import encode_texts
    from semalign.workflows.loading import LoadedRun, load_run

    sampling = sampling or SamplingConfig()
    if not isinstance(prompt, str) or not prompt.strip():
        raise SemalignError('the prompt is empty: give the start of a text, e.g. "The movie"')
    loaded = (
        run if isinstance(run, LoadedRun) else load_run(run, runs_dir=runs_dir, which=checkpoint)
    )
    if not loaded.spec.supports("generate"):
        raise SemalignError(
            f"run {loaded.paths.name} is a {loaded.task} run: generate needs a causal-lm run "
            "(semalign train --task causal-lm)"
        )
    context = loaded.max_len
    ids = encode_texts(loaded.tokenizer, [prompt], max_len=10**9)[0]
    if len(ids) < 2:
        raise SemalignError("the prompt has no tokens after normalisation: give some words")
    if len(ids) >= context:
        raise SemalignError(
            f"the prompt is {len(ids)} tokens ([CLS] included) and the model reads at most "
            f"{context}: shorten it to leave room for new tokens"
        )
    model = loaded.model
    step = _decoder(model, use_cache=use_cache)
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
