"""Frozen, self-validating configs. No JAX here: the CLI builds these before JAX loads.

Scoring, position and pooling *names* are checked by their registries when a model is
built (a config cannot import the model layers); everything structural is checked here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DTYPES = ("float32", "bfloat16")


def parse_scorings(scoring: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``"dot"`` -> ``("dot",)``; ``"dot,cosine"`` -> ``("dot", "cosine")``."""
    parts = scoring.split(",") if isinstance(scoring, str) else list(scoring)
    names = tuple(p.strip() for p in parts)
    if not names or any(not n for n in names):
        raise ValueError(f"scoring must be a name or a comma-separated list, got {scoring!r}")
    return names


def split_seed_option(options: Mapping[str, Any]) -> int:
    """The split seed ``semalign train``'s options ask for: ``--split-seed``, else ``--seed``.

    One ``--seed`` seeds everything by default; ``--split-seed`` fixes the split while
    the seeds of init, dropout and shuffling vary (several seeds on one split).
    """
    given = options.get("split_seed")
    return options["seed"] if given is None else given


def check_tokenization(vocab_size: int, max_len: int, max_buckets: int) -> None:
    """Validate the tokenization fields shared by single-text and pair data configs.

    Raises:
      ValueError: naming the field and the value received.
    """
    if vocab_size < 16:
        raise ValueError(f"vocab_size must be >= 16, got {vocab_size!r}")
    if max_len < 2:
        raise ValueError(f"max_len must be >= 2 (room for [CLS] and a token), got {max_len!r}")
    if max_buckets < 1:
        raise ValueError(f"max_buckets must be >= 1, got {max_buckets!r}")


#: Largest vocabulary for bigram features: a pair id ``a * vocab + b`` must fit in int32.
BIGRAM_MAX_VOCAB = 46_340


@dataclass(frozen=True)
class AttentionConfig:
    """How one attention layer compares queries with keys.

    Attributes:
      scoring: one name for all heads, or one name per head (``"dot,cosine,l1,l2"``).
      heads: number of heads.
      causal: query ``i`` sees keys ``j <= i``.
      window: ``(left, right)`` local window, None sides unbounded; None for no window.
      dropout: dropout on attention weights (forces the explicit path in training).
      tie_qk: share one projection for queries and keys (the Lipschitz L2 attention of
        Kim et al. 2021 ties them).
      fused: use ``jax.nn.dot_product_attention`` where the scoring allows it; None
        chooses by backend: fused on GPU/TPU, explicit on CPU, where XLA's fused
        backward measured slower (``benchmarks/attention.py``).
      key_block: key block size for blockwise scorings (l1, additive).

    """

    scoring: str | tuple[str, ...] = "dot"
    heads: int = 4
    causal: bool = False
    window: tuple[int | None, int | None] | None = None
    dropout: float = 0.0
    tie_qk: bool = False
    fused: bool | None = None
    key_block: int = 128
    batch_chunk: int | None = None

    def __post_init__(self):
        names = parse_scorings(self.scoring)
        object.__setattr__(self, "scoring", names[0] if len(names) == 1 else names)
        if not isinstance(self.heads, int) or self.heads < 1:
            raise ValueError(f"heads must be a positive integer, got {self.heads!r}")
        if len(names) not in (1, self.heads):
            raise ValueError(
                f"a per-head scoring list needs one name per head: got {len(names)} names "
                f"({','.join(names)}) for {self.heads} heads"
            )
        if self.window is not None:
            window = tuple(self.window)
            if len(window) != 2 or any(
                s is not None and (not isinstance(s, int) or s < 0) for s in window
            ):
                raise ValueError(
                    f"window must be (left, right) with integers >= 0 or None, got {self.window!r}"
                )
            object.__setattr__(self, "window", window)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"attention dropout must be in [0, 1), got {self.dropout!r}")
        if self.batch_chunk is not None and self.batch_chunk < 0:
            raise ValueError(f"batch_chunk must be >= 0, got {self.batch_chunk!r}")
        if self.key_block < 1:
            raise ValueError(f"key_block must be >= 1, got {self.key_block!r}")

    @property
    def head_scorings(self) -> tuple[str, ...]:
        """One scoring name per head."""
        names = parse_scorings(self.scoring)
        return names * self.heads if len(names) == 1 else names


@dataclass(frozen=True)
class ModelConfig:
    """A task's model: the encoder trunk and what its head needs.

    Attributes:
      vocab_size: token ids are in ``[0, vocab_size)``; 0 is padding.
      num_classes: classes of a class head; 0 for tasks without one.
      dim: embedding width.
      layers: encoder blocks.
      mlp_ratio: MLP hidden width = ``mlp_ratio * dim`` (0 drops the MLP).
      max_len: longest sequence (learned positions have this many rows).
      positions: ``learned``, ``sinusoidal`` or ``none``.
      pooling: ``mean``, ``cls``, ``max`` or ``attention``.
      dropout: dropout on embeddings, residual branches and before the head.
      attention: the attention layers' config.
      dtype: computation dtype (parameters stay float32).
      bigram_buckets: rows of a hashed bigram embedding added to each token
        (:mod:`semalign.nn.ngrams`); 0 = none.

    """

    vocab_size: int
    num_classes: int = 0
    dim: int = 64
    layers: int = 1
    mlp_ratio: int = 2
    max_len: int = 512
    positions: str = "learned"
    pooling: str = "mean"
    dropout: float = 0.3
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    dtype: str = "float32"
    bigram_buckets: int = 0

    def __post_init__(self):
        if isinstance(self.attention, Mapping):
            object.__setattr__(self, "attention", AttentionConfig(**_tuples(self.attention)))
        for name in ("vocab_size", "dim", "layers", "max_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.num_classes, int) or self.num_classes < 0 or self.num_classes == 1:
            raise ValueError(
                f"num_classes must be 0 (no class head) or >= 2, got {self.num_classes!r}"
            )
        if self.mlp_ratio < 0:
            raise ValueError(f"mlp_ratio must be >= 0, got {self.mlp_ratio!r}")
        if self.dim % self.attention.heads:
            raise ValueError(
                f"heads must divide the width: dim={self.dim} is not divisible by "
                f"heads={self.attention.heads}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if not isinstance(self.bigram_buckets, int) or self.bigram_buckets < 0:
            raise ValueError(f"bigram_buckets must be >= 0, got {self.bigram_buckets!r}")
        if self.bigram_buckets and self.vocab_size > BIGRAM_MAX_VOCAB:
            raise ValueError(
                f"bigram features need vocab_size <= {BIGRAM_MAX_VOCAB}, got "
                f"{self.vocab_size}: lower --vocab-size or drop --bigram-buckets"
            )

    @property
    def head_dim(self) -> int:
        """Per-head width."""
        return self.dim // self.attention.heads

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (round-trips through :meth:`from_dict`)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Rebuild from :meth:`to_dict` output (JSON lists become tuples)."""
        return cls(**_tuples(data))

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _tuples(data: Mapping[str, Any]) -> dict[str, Any]:
    # JSON has no tuples; configs use them for scoring lists and windows.
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}


SCHEDULES = ("constant", "cosine", "exponential")
MONITORS = ("accuracy", "loss")
#: How a text longer than ``max_len`` tokens is cut (:func:`semalign.data.tokenizer.cut`).
TRUNCATIONS = ("head", "tail", "head-tail")


@dataclass(frozen=True)
class DataConfig:
    """Where the text comes from and how it becomes token ids.

    Attributes:
      dataset: built-in dataset name (``imdb``, ``rotten-tomatoes``); ignored when ``data``
        is set.
      data: a CSV / TSV / JSONL file or a folder-per-label directory.
      text_column: text column of a table file.
      label_column: label column of a table file.
      tokenizer: ``wordpiece`` or ``word``.
      vocab_size: tokenizer vocabulary size (special tokens included).
      max_len: tokens per text after truncation, ``[CLS]`` included.
      lowercase: lower-case before tokenizing.
      split_seed: seed of the stratified train/validation/test split.
      max_buckets: at most this many padded lengths (so compilations).
      truncation: which tokens of a text longer than ``max_len`` are kept: ``head`` (its
        beginning), ``tail`` (its end) or ``head-tail`` (a quarter from the beginning,
        the rest from the end); ``[CLS]`` stays first.
      buckets: the padded lengths of the batches, increasing, the last ``max_len``;
        None: geometric ones (:func:`semalign.data.bucket_boundaries`). ``semalign train``
        fits them to the training split's lengths
        (:func:`semalign.data.fitted_boundaries`).
    """

    dataset: str | None = "imdb"
    data: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    tokenizer: str = "wordpiece"
    vocab_size: int = 20_000
    max_len: int = 512
    lowercase: bool = True
    split_seed: int = 0
    max_buckets: int = 8
    truncation: str = "head"
    buckets: tuple[int, ...] | None = None

    def __post_init__(self):
        if self.dataset is None and self.data is None:
            raise ValueError("give a built-in dataset name or a data file")
        if self.buckets is not None:
            b = tuple(self.buckets)
            rising = all(x < y for x, y in zip(b, b[1:], strict=False))
            if not b or b[0] < 1 or b[-1] != self.max_len or not rising:
                raise ValueError(
                    f"buckets must be increasing positive lengths ending at max_len "
                    f"{self.max_len}, got {list(b)}"
                )
        if self.truncation not in TRUNCATIONS:
            raise ValueError(
                f"truncation must be one of {', '.join(TRUNCATIONS)}, got {self.truncation!r}"
            )
        check_tokenization(self.vocab_size, self.max_len, self.max_buckets)

    @property
    def source(self) -> str:
        """Human name of the data source."""
        return self.data if self.data is not None else str(self.dataset)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and early stopping.

    Attributes:
      epochs: maximum number of epochs.
      batch_size: examples per step.
      lr: peak learning rate.
      schedule: ``constant``, ``cosine`` (to 0 at the last step) or ``exponential``.
      warmup_steps: linear warm-up from 0; None = 5 % of all steps.
      decay_rate: ``exponential``: factor per ``decay_steps``.
      decay_steps: ``exponential``: steps per decay; None = one epoch.
      weight_decay: AdamW decoupled weight decay.
      l1: L1 penalty on weight matrices (added to the loss).
      l2: L2 penalty on weight matrices (added to the loss).
      clip_norm: global gradient-norm clip; 0 disables.
      patience: epochs without improvement before stopping; 0 disables early stopping.
      min_delta: smallest change of the monitored metric that counts as improvement.
      monitor: validation ``accuracy`` (higher is better) or ``loss`` (lower is better).
      restore_best: evaluate (and keep) the best epoch's weights, not the last.
      seed: parameter init, dropout and shuffling.
      freeze_encoder: the trunk (``encoder``) gets no updates; only the head trains.
      encoder_lr_scale: the trunk's learning rate over the head's (fine-tuning a
        pretrained encoder with a smaller one).
      micro_batch: rows per micro-batch the gradient is accumulated over in one step
        (same loss, same update); None: automatic (2 on a CPU for a loss that sums over
        rows, else off), 0: off. A run's config.json records the value used.
    """

    epochs: int = 3
    batch_size: int = 32
    lr: float = 1e-3
    schedule: str = "cosine"
    warmup_steps: int | None = None
    decay_rate: float = 0.5
    decay_steps: int | None = None
    weight_decay: float = 0.01
    l1: float = 0.0
    l2: float = 0.0
    clip_norm: float = 1.0
    patience: int = 2
    min_delta: float = 0.0
    monitor: str = "accuracy"
    restore_best: bool = True
    seed: int = 0
    freeze_encoder: bool = False
    encoder_lr_scale: float = 1.0
    micro_batch: int | None = None

    def __post_init__(self):
        if self.micro_batch is not None and (
            isinstance(self.micro_batch, bool)
            or not isinstance(self.micro_batch, int)
            or self.micro_batch < 0
        ):
            raise ValueError(
                f"micro_batch must be 0 (off) or a number of rows >= 1, got {self.micro_batch!r}"
            )
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}"
            )
        if self.monitor not in MONITORS:
            raise ValueError(f"monitor must be one of {', '.join(MONITORS)}, got {self.monitor!r}")
        for name in ("weight_decay", "l1", "l2", "clip_norm", "min_delta", "patience"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps!r}")
        if not 0 < self.decay_rate <= 1:
            raise ValueError(f"decay_rate must be in (0, 1], got {self.decay_rate!r}")
        if self.decay_steps is not None and self.decay_steps < 1:
            raise ValueError(f"decay_steps must be >= 1, got {self.decay_steps!r}")
        if self.encoder_lr_scale <= 0:
            raise ValueError(
                f"encoder_lr_scale must be > 0, got {self.encoder_lr_scale!r} "
                "(--freeze-encoder stops the trunk)"
            )
