"""The attention of one short validation text, drawn into TensorBoard after each epoch."""

from __future__ import annotations

import functools

import numpy as np

from semalign.data import tokens_of

__all__ = ["attention_image", "first_head_weights", "probe_sentence"]


def probe_sentence(texts, tokenizer, max_len: int) -> tuple[np.ndarray, list[str]]:
    """A fixed, short text of ``texts``: its ids ``[L]`` and tokens (``L <= 24``)."""
    from semalign.data import encode_texts

    texts = sorted(texts, key=len)
    text = texts[len(texts) // 10] if texts else "a"
    length = min(max_len, 24)
    return encode_texts(tokenizer, [text], max_len=length)[0], tokens_of(tokenizer, text, length)


def attention_image(tracker, model, probe, step: int, title: str) -> None:
    """Layer 1, head 1 of ``model`` on ``probe`` as an image in ``tracker``.

    Called on every process: with several, the parameters are gathered first (every
    process takes part), then only the lead process (the one whose tracker records)
    draws.
    """
    import jax
    from flax import nnx

    from semalign.tracking.plotting import attention_figure, figure_to_rgb
    from semalign.workflows import hosts

    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        def gather(x):
            if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
                raw = multihost_utils.process_allgather(jax.random.key_data(x), tiled=True)
                return jax.random.wrap_key_data(raw, impl=jax.random.key_impl(x))
            return multihost_utils.process_allgather(x, tiled=True)

        graph, state = nnx.split(model)
        # A host copy: a forward pass on arrays spread over processes would need them all.
        model = nnx.merge(graph, jax.tree.map(gather, state))
        if not hosts.is_lead():
            return
    ids, tokens = probe
    model.eval()
    weights = first_head_weights(model, ids)
    fig = attention_figure(weights, tokens, tokens, title=f"{title}: layer 1, head 1")
    tracker.image("attention/layer1_head1", step, figure_to_rgb(fig))


@functools.cache
def _first_head():
    from flax import nnx

    # One compiled program. Eagerly, a forward over parameters spread on the host devices
    # dispatches op by op: 4.8 CPU s the first epoch, 1.1 s each later one (jitted: 1.1 s
    # to compile, then 0.03 s).
    return nnx.jit(lambda model, ids: model.encoder(ids, capture=True)[2][0].weights[0, 0])


def first_head_weights(model, ids: np.ndarray) -> np.ndarray:
    """Layer 1, head 1 attention weights ``[L, L]`` of ``model`` (eval mode) on ``ids [L]``."""
    return np.asarray(_first_head()(model, ids[None]))
