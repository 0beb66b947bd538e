"""Scorings by name, in the one generic :class:`~semalign.registry.Registry`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flax import nnx

from semalign.attention.scoring._base import Scoring
from semalign.registry import Registry


@dataclass(frozen=True)
class BuildContext:
    """What a factory may use to build a scoring for one attention layer.

    Attributes:
      heads: number of heads served by this scoring.
      head_dim: per-head width ``d``.
      rngs: NNX random streams for parameter init.
      layer_index: 0-based depth of the layer (DIFF-Transformer's λ_init uses it).
      num_layers: total depth.
      key_block: key block size for scorings computed blockwise (l1, additive).

    """

    heads: int
    head_dim: int
    rngs: nnx.Rngs
    layer_index: int = 0
    num_layers: int = 1
    key_block: int = 128


@dataclass(frozen=True)
class ScoringSpec:
    """A registered scoring.

    Attributes:
      name: registry key (``dot``, ``cosine``, ...).
      formula: the score ``s(i, j)`` in plain text.
      fused: whether it runs through ``jax.nn.dot_product_attention``.
      parametric: whether it owns learnable parameters.
      factory: builds the module from a :class:`BuildContext`.
      note: one line for tables.
      signed: whether its attention weights can be negative (not a plain softmax);
        renderers then use a diverging palette.

    """

    name: str
    formula: str
    fused: bool
    parametric: bool
    factory: Callable[[BuildContext], Scoring]
    note: str = ""
    signed: bool = False


_REGISTRY: Registry[ScoringSpec] = Registry("scoring")


def register(spec: ScoringSpec) -> ScoringSpec:
    """Add a scoring to the registry.

    Raises:
      ValueError: if the name is taken.

    """
    return _REGISTRY.register(spec.name, spec)


def available() -> tuple[str, ...]:
    """Registered names in registration order."""
    return _REGISTRY.names()


def get(name: str) -> ScoringSpec:
    """Look a scoring up by name.

    Raises:
      ValueError: naming the received value, a close match if any, and the choices.

    """
    return _REGISTRY.get(name)


def build(name: str, ctx: BuildContext) -> Scoring:
    """Build the scoring ``name`` for one attention layer."""
    return get(name).factory(ctx)
