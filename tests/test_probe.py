"""The attention image's probe: layer 1, head 1 of one short text, from one compiled program."""

import numpy as np
from flax import nnx

from semalign.config import AttentionConfig, ModelConfig
from semalign.tasks.classification.model import Classifier
from semalign.workflows.probe import first_head_weights


def test_first_head_weights_are_the_eager_capture():
    cfg = ModelConfig(
        vocab_size=50,
        num_classes=2,
        dim=16,
        layers=2,
        max_len=32,
        attention=AttentionConfig(scoring="dot", heads=4),
    )
    model = Classifier(cfg, rngs=nnx.Rngs(0))
    model.eval()
    ids = np.array([2, 5, 9, 11, 7, 13], np.int32)
    got = first_head_weights(model, ids)
    eager = np.asarray(model.encoder(ids[None], capture=True)[2][0].weights[0, 0])
    assert got.shape == (6, 6)
    np.testing.assert_allclose(got, eager, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got.sum(-1), np.ones(6), rtol=1e-5)  # softmax rows
    other = first_head_weights(model, np.array([2, 7, 7], np.int32))  # a new length
    assert other.shape == (3, 3)
