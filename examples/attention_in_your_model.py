"""semalign's attention layer inside your own Flax NNX model and optax training loop.

A tiny classifier on synthetic token sequences: label 1 when the sequence holds the cue
token. The model is yours (embedding, one ``semalign.nn.layers.MultiHeadAttention`` with
any registered scoring, mean pooling, a linear head); semalign only provides the layer.
Padding is masked with ``valid``; ``capture=True`` returns the attention weights.

Run:
    python examples/attention_in_your_model.py --scoring l2 --steps 300
    python examples/attention_in_your_model.py --quick      # seconds
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from semalign.config import AttentionConfig
from semalign.nn.layers import MultiHeadAttention

VOCAB, CUE, PAD = 32, 3, 0


def synthetic(n: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` padded sequences ``[n, length]`` of tokens 1..VOCAB-1 and labels ``[n]``."""
    r = np.random.default_rng(seed)
    ids = r.integers(4, VOCAB, size=(n, length)).astype(np.int32)  # no cue, no padding
    labels = (np.arange(n) % 2).astype(np.int32)
    lengths = r.integers(length // 2, length + 1, size=n)
    for i in range(n):
        if labels[i]:
            ids[i, r.integers(0, lengths[i])] = CUE
        ids[i, lengths[i] :] = PAD
    return ids, labels


class TinyClassifier(nnx.Module):
    """Embedding -> semalign attention (+ residual) -> masked mean -> logits."""

    def __init__(self, dim: int, scoring: str, *, rngs: nnx.Rngs):
        self.embed = nnx.Embed(VOCAB, dim, rngs=rngs)
        self.attn = MultiHeadAttention(dim, AttentionConfig(scoring=scoring, heads=2), rngs=rngs)
        self.head = nnx.Linear(dim, 2, rngs=rngs)

    def __call__(self, ids: jax.Array, capture: bool = False):
        """``ids [b, L]`` -> ``(logits [b, 2], attention capture or None)``."""
        valid = ids != PAD  # [b, L]
        x = self.embed(ids)
        h, cap = self.attn(x, valid, capture=capture)
        x = x + h
        pooled = jnp.sum(x * valid[..., None], 1) / jnp.maximum(valid.sum(1, keepdims=True), 1)
        return self.head(pooled), cap


@nnx.jit
def train_step(model, optimizer, ids, labels):
    """One AdamW step; returns the batch loss."""

    def loss_fn(m):
        logits, _ = m(ids)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss


@nnx.jit
def accuracy(model, ids, labels):
    """Share of correct predictions."""
    logits, _ = model(ids)
    return jnp.mean(jnp.argmax(logits, -1) == labels)


def main() -> None:
    """Train the tiny classifier and report loss, held-out accuracy and attention shape."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scoring", default="l2", help="any registered scoring, or one per head")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="fewer steps (seconds)")
    args = parser.parse_args()
    steps = 120 if args.quick else args.steps
    length, batch = 16, 32
    train_ids, train_labels = synthetic(2048, length, seed=0)
    test_ids, test_labels = synthetic(512, length, seed=1)

    model = TinyClassifier(32, args.scoring, rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.adamw(1e-2), wrt=nnx.Param)
    first = last = None
    for step in range(steps):
        i = (step * batch) % len(train_ids)
        loss = float(
            train_step(model, optimizer, train_ids[i : i + batch], train_labels[i : i + batch])
        )
        first = loss if first is None else first
        last = loss
    model.eval()
    acc = float(accuracy(model, test_ids, test_labels))
    _, cap = model(test_ids[:4], capture=True)
    print(f"scoring: {args.scoring}")
    print(f"loss: first {first:.4f} last {last:.4f} after {steps} steps")
    print(f"held-out accuracy: {acc:.4f}")
    print(f"attention weights [batch, heads, q, k]: {tuple(cap.weights.shape)}")
    sums = np.asarray(cap.weights[0, :, 0].sum(-1))  # text 0, query 0, per head
    print(f"attention row sums: {[round(float(s), 5) for s in sums]}")


if __name__ == "__main__":
    main()
