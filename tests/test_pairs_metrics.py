"""Correlations against scipy, similarities and pair losses against closed forms."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from semalign.metrics.correlation import pearson, rankdata, similarity_report, spearman
from semalign.metrics.similarity import SIMILARITIES, cosine
from semalign.tasks.similarity.losses import LOSSES, cosent_loss, cosine_mse_loss

# Fixed arrays with ties on both sides and a negative trend in part.
X = np.array([0.5, 2.0, 2.0, 3.5, 1.0, 1.0, 1.0, 4.0, -2.0, 0.0, 3.5, 2.0])
Y = np.array([1.0, 1.5, 3.0, 3.0, 0.2, 0.2, 2.0, 5.0, 0.1, -1.0, 2.5, 4.0])


def test_rankdata_matches_scipy_with_ties():
    np.testing.assert_allclose(rankdata(X), stats.rankdata(X), rtol=0, atol=1e-12)
    np.testing.assert_allclose(rankdata([3, 3, 3]), [2, 2, 2])
    assert rankdata([]).size == 0


@pytest.mark.parametrize("x, y", [(X, Y), (Y, X), (X, -Y), (X[:5], Y[:5])])
def test_pearson_and_spearman_match_scipy(x, y):
    assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)


def test_degenerate_correlations_are_nan():
    assert math.isnan(pearson([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert math.isnan(spearman([1.0], [2.0]))
    with pytest.raises(ValueError, match="one length"):
        pearson([1, 2], [1, 2, 3])


def test_similarities_match_closed_forms_numpy_and_jax():
    r = np.random.default_rng(0)
    a, b = r.normal(size=(6, 5)), r.normal(size=(6, 5))
    expected = {
        "cosine": np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)),
        "l2": -np.linalg.norm(a - b, axis=1),
        "l1": -np.abs(a - b).sum(1),
        "dot": np.sum(a * b, 1),
    }
    assert set(SIMILARITIES) == set(expected)
    for name, fn in SIMILARITIES.items():
        np.testing.assert_allclose(fn(a, b), expected[name], rtol=1e-12)
        got = jax.jit(fn)(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32))
        np.testing.assert_allclose(got, expected[name], rtol=1e-5, atol=1e-5)


def test_similarity_report_uses_all_four_similarities():
    r = np.random.default_rng(1)
    a, b = r.normal(size=(30, 4)), r.normal(size=(30, 4))
    gold = np.sum(a * b, 1) + 0.1 * r.normal(size=30)
    rep = similarity_report(a, b, gold)
    assert rep.count == 30 and set(rep.correlations) == {"cosine", "l2", "l1", "dot"}
    assert rep.correlations["dot"].pearson == pytest.approx(
        stats.pearsonr(np.sum(a * b, 1), gold)[0]
    )
    assert rep.spearman == rep.correlations["cosine"].spearman


def cosent_reference(cos, scores, weights, lam=20.0):
    terms = [0.0]
    for i, j in itertools.product(range(len(cos)), repeat=2):
        if weights[i] and weights[j] and scores[i] > scores[j]:
            terms.append(lam * (cos[j] - cos[i]))
    return float(np.log(np.sum(np.exp(np.asarray(terms, np.float64)))))


def test_cosent_matches_the_formula_under_jit():
    r = np.random.default_rng(2)
    cos = r.uniform(-1, 1, 8).astype(np.float32)
    scores = np.array([0, 1, 1, 2, 3, 5, 5, 4], np.float32)
    weights = np.array([1, 1, 1, 1, 1, 1, 0, 0], np.float32)
    got = jax.jit(cosent_loss)(cos, scores, weights)
    assert float(got) == pytest.approx(cosent_reference(cos, scores, weights), rel=1e-5)
    # Only the order of the scores matters; nothing to rank gives log(1) = 0.
    again = cosent_loss(cos, jnp.exp(scores), weights)
    assert float(again) == pytest.approx(float(got), rel=1e-6)
    assert float(cosent_loss(cos, jnp.ones(8), weights)) == 0.0


def test_cosine_mse_is_the_weighted_mean_square():
    cos = jnp.array([0.5, 0.9, -0.2])
    target = jnp.array([1.0, 0.8, 0.0])
    w = jnp.array([1.0, 1.0, 0.0])
    assert float(cosine_mse_loss(cos, target, w)) == pytest.approx((0.25 + 0.01) / 2, rel=1e-6)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_gradients_stay_finite_with_zero_filler_rows(name):
    # Filler rows pool to exact zeros; the cosine's gradient there must not be NaN.
    a = jnp.array([[1.0, 2.0], [0.5, -1.0], [0.0, 0.0]])
    b = jnp.array([[1.0, 1.0], [0.2, 0.3], [0.0, 0.0]])
    t = jnp.array([0.9, 0.1, 0.0])
    w = jnp.array([1.0, 1.0, 0.0])
    g = jax.grad(lambda a, b: LOSSES[name](cosine(a, b), t, w), argnums=(0, 1))(a, b)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in g)
    assert float(jnp.abs(g[0][2]).sum()) == 0.0
