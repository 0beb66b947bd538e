"""``Steps``: a train step compiles once, whatever types a plugin's parameters start with."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from semalign.config import AttentionConfig, ModelConfig
from semalign.data import Batch
from semalign.tasks.classification.model import Classifier
from semalign.tasks.classification.task import TASK
from semalign.workflows.steps import Steps


def _types(tree):
    return [(x.shape, str(x.dtype), getattr(x, "weak_type", False)) for x in jax.tree.leaves(tree)]


def test_a_weakly_typed_parameter_compiles_the_train_step_once():
    cfg = ModelConfig(
        vocab_size=64, num_classes=3, dim=16, max_len=12, attention=AttentionConfig(heads=2)
    )
    model = Classifier(cfg, rngs=nnx.Rngs(0))
    # As a plugin would write it: a parameter made from a Python float is weakly typed.
    vector = next(p for _, p in nnx.iter_graph(model) if isinstance(p, nnx.Param) and p.ndim == 1)
    vector.value = jnp.full(vector.shape, 0.5)
    assert vector.value.weak_type
    opt = nnx.Optimizer(model, optax.sgd(0.1, momentum=0.9), wrt=nnx.Param)
    steps = Steps.for_task(TASK, model, opt)
    r = np.random.default_rng(0)
    batches = [
        Batch(
            r.integers(1, 64, (4, 12)).astype(np.int32),
            r.integers(0, 3, 4).astype(np.int32),
            np.ones(4, np.float32),
        )
        for _ in range(3)
    ]
    before = _types(steps.state)
    assert not any(weak for *_, weak in before)
    for b in batches:
        steps.train(b)
        assert _types(steps.state) == before
    assert steps._train._cache_size() == 1  # one trace, one compile for the three steps
    steps.sync(model, opt)
    np.testing.assert_array_equal(np.isfinite(np.asarray(vector.value)), True)
