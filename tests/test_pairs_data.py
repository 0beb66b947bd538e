"""Pair readers (STS-B, CSV / TSV / JSONL), split and batches, on files the tests write."""

import json

import numpy as np
import pytest
from pair_data import make_pairs, write_pairs, write_stsb

from semalign.data.pair_batches import make_pair_batches
from semalign.data.pair_readers import load_pair_splits, read_pairs, split_pairs
from semalign.data.pairs import PairDataConfig, PairExamples
from semalign.errors import DataError


def cfg(path, **kw):
    return PairDataConfig(data=str(path), **kw)


def one_line(err, *needles):
    msg = str(err.value)
    assert "\n" not in msg, msg
    for n in needles:
        assert n in msg, (n, msg)
    return msg


def test_stsb_reader_takes_extra_trailing_columns(tmp_path):
    path = write_stsb(tmp_path / "sts-train.csv", n=30, extra_every=7)
    ex = read_pairs(path, cfg(path))
    rows = make_pairs(30)
    assert len(ex) == 30 and ex.target == "score"
    assert ex.texts_a == tuple(r[0] for r in rows)
    assert ex.texts_b == tuple(r[1] for r in rows)
    np.testing.assert_allclose(ex.scores, [r[2] for r in rows], atol=1e-3)


@pytest.mark.parametrize(
    "line, needles",
    [
        ("g\tf\t2012\t1\t4.0\tonly six fields", ("line 2", "6 tab-separated fields", "at least 7")),
        ("g\tf\t2012\t1\tfive\ta cat\ta dog", ("line 2", "'five' is not a number")),
        ("g\tf\t2012\t1\tnan\ta cat\ta dog", ("line 2", "finite")),
        ("g\tf\t2012\t1\t4.0\t \ta dog", ("line 2", "sentence1 is empty")),
        ("g\tf\t2012\t1\t4.0\ta cat\t", ("line 2", "sentence2 is empty")),
    ],
)
def test_stsb_bad_rows_name_file_and_line(tmp_path, line, needles):
    path = tmp_path / "sts.csv"
    path.write_text("g\tf\t2012\t0\t1.0\ta b\tc d\n" + line + "\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_pairs(path, cfg(path, format="stsb"))
    one_line(err, str(path), *needles)


def test_header_tables_with_column_options(tmp_path):
    tsv = write_pairs(tmp_path / "p.tsv", n=20)
    csv_path = write_pairs(tmp_path / "p.csv", n=20, sep=",")
    a, b = read_pairs(tsv, cfg(tsv)), read_pairs(csv_path, cfg(csv_path))
    assert a == b and len(a) == 20
    labelled = read_pairs(tsv, cfg(tsv, target="label"))
    assert labelled.classes == ("different", "same")
    renamed = tmp_path / "r.tsv"
    renamed.write_text("q1\tq2\tsim\nthe cat\ta cat\t0.9\n", encoding="utf-8")
    ex = read_pairs(
        renamed, cfg(renamed, text_a_column="q1", text_b_column="q2", score_column="sim")
    )
    assert ex.texts_a == ("the cat",) and ex.scores == (0.9,)


@pytest.mark.parametrize(
    "body, kw, needles",
    [
        ("s1\ts2\tscore\na\tb\n", {}, ("no column 'sentence1'", "--text-a-column")),
        ("sentence1\tsentence2\tscore\na\tb\n", {}, ("line 2", "2 fields but the header has 3")),
        ("sentence1\tsentence2\tscore\na\tb\thigh\n", {}, ("line 2", "'high' is not a number")),
        ("sentence1\tsentence2\tscore\na\t  \t1\n", {}, ("line 2", "sentence2 is empty")),
        ("sentence1\tsentence2\tscore\n", {}, ("holds no pairs",)),
        ("sentence1\tsentence2\tx\na\tb\t1\n", {"score_column": "y"}, ("--score-column",)),
    ],
)
def test_table_bad_input_is_one_clear_line(tmp_path, body, kw, needles):
    path = tmp_path / "bad.tsv"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_pairs(path, cfg(path, **kw))
    one_line(err, str(path), *needles)


def test_jsonl_and_format_detection(tmp_path):
    path = tmp_path / "p.jsonl"
    rows = [{"sentence1": a, "sentence2": b, "score": s} for a, b, s, _ in make_pairs(5)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    assert len(read_pairs(path, cfg(path))) == 5
    path.write_text('{"sentence1": "a", "sentence2": "b", "score": "x"}\n', encoding="utf-8")
    with pytest.raises(DataError, match="line 1.*not a number"):
        read_pairs(path, cfg(path))
    # A headerless tab file with 7+ fields is STS-B whatever its suffix.
    stsb = write_stsb(tmp_path / "any.csv", n=4)
    assert len(read_pairs(stsb, cfg(stsb))) == 4
    with pytest.raises(DataError, match="unknown pair format"):
        odd = tmp_path / "p.txt"
        odd.write_text("a b\n", encoding="utf-8")
        read_pairs(odd, cfg(odd))


def test_folder_of_splits_and_missing_split(tmp_path):
    for name, n in (("train", 40), ("dev", 10), ("test", 12)):
        write_stsb(tmp_path / f"sts-{name}.csv", n=n, seed=len(name))
    splits = load_pair_splits(cfg(tmp_path))
    assert splits.sizes == (40, 10, 12) and splits.duplicates_removed == 0
    (tmp_path / "sts-dev.csv").unlink()
    with pytest.raises(DataError, match="lacks the validation split"):
        load_pair_splits(cfg(tmp_path))


def test_split_is_deterministic_and_drops_repeated_pairs():
    rows = make_pairs(100)
    a, b, s = [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]
    ex = PairExamples(a + a[:5], b + b[:5], scores=s + s[:5])
    one, two = split_pairs(ex, seed=3), split_pairs(ex, seed=3)
    assert one == two and one.duplicates_removed == 5 and one.sizes == (80, 10, 10)
    seen = [set(zip(p.texts_a, p.texts_b, strict=True)) for p in (one.train, one.test)]
    assert not seen[0] & seen[1]
    other = split_pairs(ex, seed=4)
    assert other.test.texts_a != one.test.texts_a


def test_pair_batches_keep_every_pair_with_one_length_per_batch():
    rng = np.random.default_rng(0)
    seqs_a = [rng.integers(5, 50, size=rng.integers(2, 30)).astype(np.int32) for _ in range(37)]
    seqs_b = [rng.integers(5, 50, size=rng.integers(2, 60)).astype(np.int32) for _ in range(37)]
    targets = np.arange(37, dtype=np.float32)
    batches = make_pair_batches(
        seqs_a, seqs_b, targets, batch_size=8, boundaries=(32, 64), shuffle=True, seed=1
    )
    assert {b.ids_a.shape for b in batches} <= {(8, 32), (8, 64)}
    assert all(b.ids_a.shape == b.ids_b.shape for b in batches)
    got = np.concatenate([b.targets[b.weights > 0] for b in batches])
    assert sorted(got.tolist()) == targets.tolist()
    for b in batches:
        for row, t in zip(b.ids_a[b.weights > 0], b.targets[b.weights > 0], strict=True):
            np.testing.assert_array_equal(row[: len(seqs_a[int(t)])], seqs_a[int(t)])
        assert not b.ids_a[b.weights == 0].any()


def test_config_and_container_validation():
    with pytest.raises(ValueError, match="format must be"):
        PairDataConfig(data="x", format="xml")
    with pytest.raises(ValueError, match="score_range"):
        PairDataConfig(data="x", score_range=(5.0, 5.0))
    with pytest.raises(DataError, match="exactly one"):
        PairExamples(("a",), ("b",))
    with pytest.raises(DataError, match="one target per pair"):
        PairExamples(("a", "b"), ("c",), scores=(1.0,))
