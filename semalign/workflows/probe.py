"""The attention of one short validation text, drawn into TensorBoard after each epoch."""

from __future__ import annotations

import numpy as np

from semalign.data import tokens_of

__all__ = ["attention_image", "probe_sentence"]


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
    captures = model.encoder(ids[None], capture=True)[2]
    weights = np.asarray(captures[0].weights[0, 0])
    fig = attention_figure(weights, tokens, tokens, title=f"{title}: layer 1, head 1")
    tracker.image("attention/layer1_head1", step, figure_to_rgb(fig))
