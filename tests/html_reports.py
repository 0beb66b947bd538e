"""Attention reports built by hand (numpy only, no model) for the HTML page's tests.

Weights are a softmax of random scores over the keys a query may see; a
``diff-transformer`` head gets ``softmax₁ − ½·softmax₂``, so its weights go below 0 as a
real one's can. The numbers mean nothing; the page must only show them faithfully.
"""

import numpy as np

from semalign.config import AttentionConfig
from semalign.workflows.attention_report import AttentionReport, TextAttention, rollout


def _softmax(x, mask):
    x = np.where(mask, x, -np.inf)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def text_attention(rng, text, tokens, scorings, layers, *, causal=False, labels=2, roll=True):
    n = len(tokens)
    mask = np.tril(np.ones((n, n), bool)) if causal else np.ones((n, n), bool)
    logits = rng.normal(0, 2, (layers, len(scorings), n, n)).astype(np.float32)
    weights = _softmax(logits, mask)
    for h, name in enumerate(scorings):
        if name == "diff-transformer":
            other = _softmax(rng.normal(0, 2, (layers, n, n)), mask)
            weights[:, h] = weights[:, h] - 0.5 * other
    weights = np.where(mask, weights, 0).astype(np.float32)
    p = rng.dirichlet(np.ones(labels)).astype(np.float32)
    return TextAttention(
        text=text,
        tokens=tuple(tokens),
        ids=np.arange(n, dtype=np.int32),
        dropped=0,
        probabilities=p,
        label=f"class {int(np.argmax(p))}",
        logits=logits,
        weights=weights,
        mask=mask,
        rollout=rollout(weights) if roll else None,
    )


def report(
    texts,
    *,
    scorings=("dot", "cosine", "diff-transformer"),
    layers=2,
    causal=False,
    labels=2,
    seed=0,
    roll=True,
):
    """A report of every layer and head over ``texts``: ``(text, tokens)`` pairs."""
    rng = np.random.default_rng(seed)
    return AttentionReport(
        run="synthetic",
        checkpoint="best",
        labels=tuple(f"class {i}" for i in range(labels)),
        head_scorings=tuple(scorings),
        attention_config=AttentionConfig(
            scoring=",".join(scorings), heads=len(scorings), causal=causal
        ),
        num_layers=layers,
        layers=tuple(range(layers)),
        heads=tuple(range(len(scorings))),
        texts=tuple(
            text_attention(
                rng, text, tokens, scorings, layers, causal=causal, labels=labels, roll=roll
            )
            for text, tokens in texts
        ),
    )


#: A text that must not break the page: markup, a closing script tag, quotes, a URL,
#: unicode beyond the BMP, a line separator.
NASTY = "a <script>alert(1)</script> \"q\" 's' </script><!-- & naïve 日本 😀 https://x.org/a \u2028"
NASTY_TOKENS = (
    "[CLS]",
    "a",
    "<script>",
    "alert(1)",
    "</script>",
    '"q"',
    "'s'",
    "<!--",
    "&",
    "naïve",
    "日本",
    "😀",
    "https://x.org/a",
    "\u2028",
)
