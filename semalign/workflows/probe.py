"""The attention image drawn into TensorBoard after each epoch of training."""

from __future__ import annotations

import numpy as np

from semalign.data import tokens_of

__all__ = ["attention_image", "probe_sentence"]


def probe_sentence(texts, tokenizer, max_len: int) -> tuple[np.ndarray, list[str]]:
    """A fixed, short validation text (ids, tokens) whose attention is drawn each epoch."""
    from semalign.data import encode_texts

    texts = sorted(texts, key=len)
    text = texts[len(texts) // 10] if texts else "a"
    length = min(max_len, 24)
    return encode_texts(tokenizer, [text], max_len=length)[0], tokens_of(tokenizer, text, length)


def attention_image(tracker, model, probe, step: int, title: str) -> None:
    """Layer 1, head 1 of ``model`` on the probe sentence, as a TensorBoard image."""
    from semalign.tracking.plotting import attention_figure, figure_to_rgb

    ids, tokens = probe
    model.eval()
    captures = model.encoder(ids[None], capture=True)[2]
    weights = np.asarray(captures[0].weights[0, 0])
    fig = attention_figure(weights, tokens, tokens, title=f"{title}: layer 1, head 1")
    tracker.image("attention/layer1_head1", step, figure_to_rgb(fig))
