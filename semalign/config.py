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
      fused: use ``jax.nn.dot_product_attention`` where the scoring allows it.
      key_block: key block size for blockwise scorings (l1, additive).

    """

    scoring: str | tuple[str, ...] = "dot"
    heads: int = 4
    causal: bool = False
    window: tuple[int | None, int | None] | None = None
    dropout: float = 0.0
    tie_qk: bool = False
    fused: bool = True
    key_block: int = 128

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
        if self.key_block < 1:
            raise ValueError(f"key_block must be >= 1, got {self.key_block!r}")

    @property
    def head_scorings(self) -> tuple[str, ...]:
        """One scoring name per head."""
        names = parse_scorings(self.scoring)
        return names * self.heads if len(names) == 1 else names


@dataclass(frozen=True)
class ModelConfig:
    """A :class:`semalign.models.TextClassifier`.

    Attributes:
      vocab_size: token ids are in ``[0, vocab_size)``; 0 is padding.
      num_classes: output classes.
      dim: embedding width.
      layers: encoder blocks.
      mlp_ratio: MLP hidden width = ``mlp_ratio * dim`` (0 drops the MLP).
      max_len: longest sequence (learned positions have this many rows).
      positions: ``learned``, ``sinusoidal`` or ``none``.
      pooling: ``mean``, ``cls``, ``max`` or ``attention``.
      dropout: dropout on embeddings, residual branches and before the head.
      attention: the attention layers' config.
      dtype: computation dtype (parameters stay float32).

    """

    vocab_size: int
    num_classes: int
    dim: int = 64
    layers: int = 1
    mlp_ratio: int = 2
    max_len: int = 512
    positions: str = "learned"
    pooling: str = "mean"
    dropout: float = 0.1
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    dtype: str = "float32"

    def __post_init__(self):
        if isinstance(self.attention, Mapping):
            object.__setattr__(self, "attention", AttentionConfig(**_tuples(self.attention)))
        for name in ("vocab_size", "dim", "layers", "max_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.num_classes, int) or self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes!r}")
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
