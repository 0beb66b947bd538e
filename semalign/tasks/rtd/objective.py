"""ELECTRA's objective as pure functions: sample the fills, mark the replaced, sum the losses.

The generator's scores at the masked positions are sampled (categorical, temperature 1)
with one key per row made from the batch's ``seeds`` (drawn on the host from the seed and
epoch, or from ``mask_seed`` for evaluation), so a step's samples depend on its batch alone:
a resumed run, a micro-batched step and every mesh draw the same tokens. No gradient flows
through the sampling (the samples are integers, taken from stopped scores). A sampled token
equal to the original counts as original (ELECTRA §2). Special tokens are never sampled:
``[PAD]`` would read as padding and ``[MASK]`` is no word.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from semalign.data.tokenizer import SPECIAL_TOKENS

__all__ = ["FIRST", "corrupt", "detection_sums", "replaced_labels", "sample_replacements"]

#: The first ordinary token id; ids below it are special and never judged.
FIRST = len(SPECIAL_TOKENS)


def sample_replacements(logits: jax.Array, seeds: jax.Array) -> jax.Array:
    """One token per slot drawn from ``softmax(logits)`` over the ordinary ids.

    Args:
      logits: ``[B, P, vocab]`` generator scores (their gradient is stopped here).
      seeds: ``[B]`` uint32, one random key per row.

    Returns:
      ``[B, P]`` int32 sampled ids, each ``>= FIRST``.
    """
    logits = jax.lax.stop_gradient(logits.astype(jnp.float32))
    logits = jnp.where(jnp.arange(logits.shape[-1]) < FIRST, -jnp.inf, logits)
    keys = jax.vmap(jax.random.key)(seeds)
    draw = jax.vmap(lambda key, row: jax.random.categorical(key, row, axis=-1))
    return draw(keys, logits).astype(jnp.int32)


def corrupt(
    ids: jax.Array, positions: jax.Array, targets: jax.Array, sampled: jax.Array
) -> jax.Array:
    """The discriminator's input: ``ids`` with each predicted slot's sample written in.

    Args:
      ids: ``[B, L]`` the generator's (masked) input.
      positions: ``[B, P]`` predicted positions (0 in unused slots).
      targets: ``[B, P]`` original ids there; 0 marks an unused slot, left as it is.
      sampled: ``[B, P]`` the generator's samples.

    Returns:
      ``[B, L]`` ids: the samples at predicted positions, ``ids`` elsewhere (which hold the
      original tokens: only predicted positions are ever masked).
    """
    ids = jnp.asarray(ids)
    rows = jnp.arange(ids.shape[0])[:, None]
    fill = jnp.where(targets != 0, sampled, ids[rows, positions])
    return ids.at[rows, positions].set(fill.astype(ids.dtype))


def replaced_labels(
    corrupted: jax.Array, original: jax.Array, weights: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """``(replaced, judged)``, both ``[B, L]`` bool: what the discriminator learns, and where.

    ``judged``: real rows' tokens that are not special (padding, ``[CLS]``, ``[SEP]``,
    ``[UNK]`` are never judged); ``replaced``: judged tokens that differ from the original
    (a sample equal to the original is not replaced).
    """
    judged = (original >= FIRST) & (weights[:, None] > 0)
    return (corrupted != original) & judged, judged


def detection_sums(model, batch, weight: float) -> dict[str, jax.Array]:
    """The generator's and the discriminator's sums on one :class:`RTDBatch`.

    Returns a dict: ``loss_sum`` (``Σ_rows generator_scale · NLL + weight ·
    detector_scale · BCE``, so ``loss_sum / count`` is ELECTRA's ``mean NLL over masked
    slots + weight · mean BCE over real tokens`` of the whole batch), ``count`` (real rows),
    and, for reports, ``nll`` / ``hits`` / ``masked`` (generator) and ``bce`` /
    ``detected`` / ``tokens`` (discriminator), ``logits`` ``[B, L]``, ``replaced`` ``[B, L]``
    and ``judged`` ``[B, L]`` (real tokens that are not special).
    """
    w = batch.weights
    gen = model.generator(batch.ids, positions=batch.positions).logits  # [B, P, vocab]
    chosen = (batch.targets != 0).astype(jnp.float32) * w[:, None]
    nll = optax.softmax_cross_entropy_with_integer_labels(gen, batch.targets) * chosen
    hits = (jnp.argmax(gen, -1) == batch.targets).astype(jnp.float32) * chosen
    sampled = sample_replacements(gen, batch.seeds)
    corrupted = corrupt(batch.ids, batch.positions, batch.targets, sampled)
    replaced, judged = replaced_labels(corrupted, batch.original, w)
    judged = judged.astype(jnp.float32)
    logits = model(corrupted).logits  # [B, L]
    bce = optax.sigmoid_binary_cross_entropy(logits, replaced.astype(jnp.float32)) * judged
    detected = ((logits > 0) == replaced).astype(jnp.float32) * judged
    rows = batch.generator_scale * nll.sum(-1) + weight * batch.detector_scale * bce.sum(-1)
    return {
        "loss_sum": jnp.sum(rows),
        "count": jnp.sum(w),
        "nll": jnp.sum(nll),
        "hits": jnp.sum(hits),
        "masked": jnp.sum(chosen),
        "bce": jnp.sum(bce),
        "detected": jnp.sum(detected),
        "tokens": jnp.sum(judged),
        "logits": logits,
        "replaced": replaced,
        "judged": judged > 0,
    }
