"""``nnx.Dropout`` with the masks of :mod:`semalign.attention.dropout` (16 bits a draw).

Same state, streams and train / eval switch as ``nnx.Dropout`` (checkpoints of either
load into the other); only the mask is drawn from half as many random words.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from semalign.attention.dropout import inverted_dropout

__all__ = ["Dropout"]


class Dropout(nnx.Dropout):
    """Inverted dropout: ``[...] -> [...]``, the identity in eval mode or at rate 0.

    Args:
      rate: drop probability in ``[0, 1]``.
      rngs: NNX random streams; masks come from the ``dropout`` stream.
    """

    def __call__(self, inputs: jax.Array, *, deterministic: bool | None = None) -> jax.Array:
        """Drop ``inputs`` (``[...]``) unless deterministic (eval mode) or the rate is 0."""
        deterministic = self.deterministic if deterministic is None else deterministic
        if deterministic or self.rate == 0.0:
            return inputs
        if self.rate == 1.0:  # no draws: all dropped (and no 1/0 scale)
            return jnp.zeros_like(inputs)
        if self.rngs is None:
            raise ValueError("Dropout in train mode needs random streams: build it with rngs")
        shape = tuple(1 if i in self.broadcast_dims else n for i, n in enumerate(inputs.shape))
        return inverted_dropout(inputs, self.rate, self.rngs(), shape)
