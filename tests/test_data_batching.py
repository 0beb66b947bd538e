"""Bucketed batching: nothing dropped, few shapes, deterministic shuffles."""

import itertools
from collections import Counter
from dataclasses import asdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semalign.data import (
    PAD_ID,
    Batch,
    batch_stats,
    bucket_boundaries,
    fitted_boundaries,
    make_batches,
)


def random_sequences(n: int, max_len: int, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """Sequences of non-pad ids; label = first id mod 3, so alignment is checkable."""
    rng = np.random.default_rng(seed)
    seqs = [
        rng.integers(5, 1000, size=int(rng.integers(1, max_len + 1)), dtype=np.int32)
        for _ in range(n)
    ]
    return seqs, np.array([s[0] % 3 for s in seqs], dtype=np.int32)


def real_rows(batches: list[Batch]) -> Counter:
    """Multiset of (ids without padding, label) over rows of weight 1."""
    rows = Counter()
    for b in batches:
        for ids, label, weight in zip(b.ids, b.labels, b.weights, strict=True):
            if weight == 1:
                rows[(tuple(ids[ids != PAD_ID].tolist()), int(label))] += 1
    return rows


@pytest.mark.parametrize(
    ("max_len", "kwargs", "expected"),
    [
        (512, {}, (32, 64, 96, 128, 160, 256, 352, 512)),
        (250, {"max_buckets": 4}, (32, 64, 128, 250)),
        (256, {"max_buckets": 4}, (32, 64, 128, 256)),
        (20, {}, (20,)),
        (512, {"max_buckets": 1}, (512,)),
        (100, {"max_buckets": 8, "multiple": 8}, (8, 16, 24, 40, 56, 72, 100)),
    ],
)
def test_bucket_boundaries(max_len, kwargs, expected):
    assert bucket_boundaries(max_len, **kwargs) == expected


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 4096), st.integers(1, 12), st.integers(1, 128))
def test_bucket_boundaries_properties(max_len, max_buckets, multiple):
    bounds = bucket_boundaries(max_len, max_buckets=max_buckets, multiple=multiple)
    assert bounds[-1] == max_len
    assert 1 <= len(bounds) <= max_buckets
    assert all(a < b for a, b in zip(bounds, bounds[1:], strict=False))
    assert all(b % multiple == 0 for b in bounds[:-1])


def test_bucket_boundaries_rejects_non_positive():
    with pytest.raises(ValueError, match="must be positive, got 0, 8, 32"):
        bucket_boundaries(0)


@pytest.mark.parametrize("shuffle", [False, True])
def test_every_example_exactly_once_in_allowed_shapes(shuffle):
    seqs, labels = random_sequences(203, max_len=100)
    bounds = (16, 40, 100)
    batches = make_batches(seqs, labels, batch_size=8, boundaries=bounds, shuffle=shuffle, seed=1)
    expected = Counter((tuple(s.tolist()), int(y)) for s, y in zip(seqs, labels, strict=True))
    assert real_rows(batches) == expected
    for b in batches:
        assert b.ids.dtype == np.int32 and b.labels.dtype == np.int32
        assert b.weights.dtype == np.float32
        assert b.ids.shape[0] == 8 and b.ids.shape[1] in bounds
        lengths = (b.ids != PAD_ID).sum(axis=1)
        real = b.weights == 1
        # Each row sits in the smallest bucket that holds it; padding only on the right.
        smallest = np.array([min(x for x in bounds if x >= n) for n in lengths[real]])
        assert np.all(smallest == b.ids.shape[1])
        assert all(np.all(row[:n] != PAD_ID) for row, n in zip(b.ids, lengths, strict=True))
        # Filler rows are all padding, label 0, weight 0.
        assert np.all(b.ids[~real] == PAD_ID) and np.all(b.labels[~real] == 0)
        assert set(np.unique(b.weights)) <= {0.0, 1.0}
    per_bucket = Counter(min(x for x in bounds if x >= len(s)) for s in seqs)
    assert len(batches) == sum(-(-n // 8) for n in per_bucket.values())
    stats = batch_stats(batches)
    assert stats.examples == 203 and stats.batches == len(batches)
    assert stats.filler_rows == 8 * len(batches) - 203
    assert {shape[1] for shape in stats.shapes} <= set(bounds)


def test_unshuffled_order_is_stable():
    seqs, labels = random_sequences(50, max_len=60, seed=2)
    bounds = (32, 60)
    batches = make_batches(seqs, labels, batch_size=4, boundaries=bounds, shuffle=False)
    order = [tuple(s.tolist()) for s in seqs]
    expected = [o for L in bounds for o in order if min(x for x in bounds if x >= len(o)) == L]
    got = [
        tuple(row[row != PAD_ID].tolist())
        for b in batches
        for row, w in zip(b.ids, b.weights, strict=True)
        if w
    ]
    assert got == expected
    again = make_batches(seqs, labels, batch_size=4, boundaries=bounds, shuffle=False, epoch=5)
    assert all(np.array_equal(a.ids, b.ids) for a, b in zip(batches, again, strict=True))


def test_shuffle_is_deterministic_per_seed_and_epoch():
    seqs, labels = random_sequences(300, max_len=64, seed=3)

    def run(seed, epoch):
        batches = make_batches(
            seqs, labels, batch_size=16, boundaries=(32, 64), shuffle=True, seed=seed, epoch=epoch
        )
        return [b.ids.tobytes() + b.labels.tobytes() + b.weights.tobytes() for b in batches]

    assert run(0, 0) == run(0, 0)
    assert run(0, 1) == run(0, 1)
    assert run(0, 0) != run(0, 1)
    assert run(0, 0) != run(1, 0)
    assert sorted(run(0, 0)) != sorted(run(0, 1))  # Different rows per batch, not just order.


def test_batch_stats_by_hand():
    seqs = [np.array([5, 6, 7]), np.array([8]), np.array([9] * 10)]
    batches = make_batches(seqs, [0, 1, 0], batch_size=2, boundaries=(4, 12), shuffle=False)
    stats = batch_stats(batches)
    assert asdict(stats) == {
        "batches": 2,
        "examples": 3,
        "filler_rows": 1,
        "shapes": ((2, 4), (2, 12)),
        "real_tokens": 14,
        "padded_tokens": 2 * 4 + 2 * 12,
    }
    assert stats.padding_fraction == pytest.approx(1 - 14 / 32)
    assert batch_stats([]).padding_fraction == 0.0


def test_empty_input_and_errors():
    assert make_batches([], [], batch_size=4, boundaries=(8,), shuffle=True) == []
    seqs = [np.array([5, 6, 7])]
    with pytest.raises(ValueError, match="sequence 0 has 3 ids, more than the last boundary 2"):
        make_batches(seqs, [0], batch_size=4, boundaries=(2,), shuffle=False)
    with pytest.raises(ValueError, match=r"got 1 sequences but labels of shape \(2,\)"):
        make_batches(seqs, [0, 1], batch_size=4, boundaries=(8,), shuffle=False)
    with pytest.raises(ValueError, match="boundaries must be increasing"):
        make_batches(seqs, [0], batch_size=4, boundaries=(8, 8), shuffle=False)
    with pytest.raises(ValueError, match="batch_size must be positive, got 0"):
        make_batches(seqs, [0], batch_size=0, boundaries=(8,), shuffle=False)


def _cost(lengths, bounds, passes, compile_slots):
    """``passes * slots + compile_slots * used lengths``, row by row (no vectorised search)."""
    padded = [min(b for b in bounds if b >= min(n, bounds[-1])) for n in lengths]
    return passes * sum(padded) + compile_slots * len(set(padded))


def _brute_force(lengths, max_len, max_buckets, multiple, passes, compile_slots):
    """The least cost over every choice of boundaries."""
    inner = list(range(multiple, max_len, multiple))
    return min(
        _cost(lengths, (*chosen, max_len), passes, compile_slots)
        for k in range(max_buckets)
        for chosen in itertools.combinations(inner, k)
    )


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 300), min_size=1, max_size=60),
    max_len=st.integers(2, 256),
    max_buckets=st.integers(1, 4),
    passes=st.integers(1, 3),
    compile_slots=st.sampled_from([0, 50, 400, 5_000]),
)
def test_fitted_boundaries_are_the_cheapest(lengths, max_len, max_buckets, passes, compile_slots):
    bounds = fitted_boundaries(
        lengths,
        max_len,
        max_buckets=max_buckets,
        multiple=32,
        passes=passes,
        compile_slots=compile_slots,
    )
    assert bounds[-1] == max_len and len(bounds) <= max_buckets
    assert all(b % 32 == 0 for b in bounds[:-1]) and list(bounds) == sorted(set(bounds))
    cost = _cost(lengths, bounds, passes, compile_slots)
    assert cost == _brute_force(lengths, max_len, max_buckets, 32, passes, compile_slots)


def test_fitted_boundaries_follow_the_data():
    # Two clusters: free compilations give a bucket to each, costly ones a single bucket
    # (the last length, max_len, holds no training row, so it compiles nothing).
    lengths = [40] * 500 + [200] * 500
    assert fitted_boundaries(lengths, 256, compile_slots=0) == (64, 224, 256)
    assert fitted_boundaries(lengths, 256, compile_slots=10**9) == (224, 256)
    # One compilation (1,000 slots) saves 500 * (256 - 64) = 96,000 slots: worth it.
    assert fitted_boundaries(lengths, 256, compile_slots=1_000)[0] == 64
    # Each pass pads again: a bucket that does not pay for one epoch pays for three.
    few = [40] * 10 + [256] * 100
    assert fitted_boundaries(few, 256, compile_slots=5_000, passes=1) == (256,)
    assert fitted_boundaries(few, 256, compile_slots=5_000, passes=3) == (64, 256)
    # A length no row needs costs nothing: short rows alone keep their own bucket.
    assert fitted_boundaries([10] * 50, 512) == (32, 512)


def test_fitted_boundaries_reject_bad_arguments():
    with pytest.raises(ValueError, match="must be positive"):
        fitted_boundaries([3], 0)
    with pytest.raises(ValueError, match="must be positive"):
        fitted_boundaries([3], 64, passes=0)
