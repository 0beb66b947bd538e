"""Hashed bigram features: ids against a hand loop, pad invariance, config checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from semalign.config import ModelConfig
from semalign.nn.ngrams import bigram_ids
from semalign.tasks.classification.model import Classifier


def reference(ids: np.ndarray, vocab: int, buckets: int) -> np.ndarray:
    out = np.zeros_like(ids)
    for b in range(ids.shape[0]):
        for t in range(1, ids.shape[1]):
            if ids[b, t] and ids[b, t - 1]:
                out[b, t] = 1 + (int(ids[b, t - 1]) * vocab + int(ids[b, t])) % buckets
    return out


def test_bigram_ids_match_a_hand_loop_under_jit():
    rng = np.random.default_rng(0)
    vocab, buckets = 46_340, 1_009  # the largest vocab: pairs near 2**31 must not overflow
    ids = rng.integers(1, vocab, (5, 12))
    ids[:, 0] = 2
    for b, n in enumerate([12, 7, 1, 3, 12]):
        ids[b, n:] = 0
    ids[4, 1], ids[4, 2] = vocab - 1, vocab - 1
    got = jax.jit(bigram_ids, static_argnames=("vocab_size", "buckets"))(
        jnp.asarray(ids, jnp.int32), jnp.asarray(ids != 0), vocab_size=vocab, buckets=buckets
    )
    want = reference(ids, vocab, buckets)
    np.testing.assert_array_equal(np.asarray(got), want)
    assert want.min() >= 0 and want.max() <= buckets and want[:, 0].max() == 0


def test_bigram_model_is_pad_invariant_and_uses_the_bigrams():
    cfg = ModelConfig(vocab_size=50, num_classes=2, dim=16, dropout=0.0, bigram_buckets=31)
    model = Classifier(cfg, rngs=nnx.Rngs(0))
    model.eval()
    ids = jnp.array([[2, 7, 9, 11]])
    padded = jnp.array([[2, 7, 9, 11, 0, 0, 0]])
    np.testing.assert_allclose(model(ids).logits, model(padded).logits, atol=1e-5)
    swapped = jnp.array([[2, 9, 7, 11]])  # same bag of tokens, other bigrams
    plain = Classifier(cfg.replace(bigram_buckets=0, positions="none"), rngs=nnx.Rngs(0))
    plain.eval()
    np.testing.assert_allclose(plain(ids).logits, plain(swapped).logits, atol=1e-5)
    with_bigrams = Classifier(cfg.replace(positions="none"), rngs=nnx.Rngs(0))
    with_bigrams.eval()
    assert not np.allclose(with_bigrams(ids).logits, with_bigrams(swapped).logits, atol=1e-5)


@pytest.mark.parametrize(("kw", "needle"), [
    ({"bigram_buckets": -1}, "bigram_buckets must be >= 0"),
    ({"bigram_buckets": 8, "vocab_size": 50_000}, "vocab_size <= 46340"),
])  # fmt: skip
def test_bad_bigram_config_is_refused(kw, needle):
    with pytest.raises(ValueError, match=needle):
        ModelConfig(**{"vocab_size": 50, "num_classes": 2, **kw})
