"""The tokenizer and encoding cache: the same results as making them, and only when asked."""

import json
import os

import numpy as np
import pytest

from semalign.data import encode_counted, token_cache, train_tokenizer
from semalign.data import tokenizer as tokenizer_module

WORDS = "the a cat dog sat ran on under mat rug quickly slowly big small red blue".split()


def texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(3, 30))) for _ in range(n)]


@pytest.fixture
def cache_dir(monkeypatch, tmp_path):
    folder = tmp_path / "data-cache"
    folder.mkdir()
    monkeypatch.delenv("SEMALIGN_DATA_CACHE", raising=False)
    monkeypatch.setenv(token_cache.ENV, str(folder))
    return folder


def entries(folder, suffix):
    return sorted(p.name for p in folder.iterdir() if p.suffix == suffix)


@pytest.mark.parametrize("kind", ["wordpiece", "word"])
def test_a_cached_tokenizer_is_the_trained_one(cache_dir, monkeypatch, kind):
    corpus = texts(300)
    fresh = train_tokenizer(corpus, vocab_size=40, kind=kind)
    assert len(entries(cache_dir, ".json")) == 1

    def no_training(*a, **k):
        raise AssertionError("trained again although the cache holds it")

    monkeypatch.setitem(tokenizer_module.TOKENIZER_KINDS, kind, no_training)
    kept = train_tokenizer(corpus, vocab_size=40, kind=kind)
    assert kept.to_str() == fresh.to_str()
    assert kept.encode("the cat sat").ids == fresh.encode("the cat sat").ids


def test_other_texts_or_settings_miss(cache_dir):
    corpus = texts(300)
    train_tokenizer(corpus, vocab_size=40)
    train_tokenizer(corpus, vocab_size=41)
    train_tokenizer(corpus, vocab_size=40, lowercase=False)
    train_tokenizer(corpus[:-1] + ["a different last text"], vocab_size=40)
    train_tokenizer(corpus[::-1], vocab_size=40)  # order is part of the key
    assert len(entries(cache_dir, ".json")) == 5


@pytest.mark.parametrize("truncation", ["head", "tail", "head-tail"])
def test_cached_ids_are_the_encoded_ones(cache_dir, monkeypatch, truncation):
    tok = train_tokenizer(texts(300), vocab_size=40)
    corpus = texts(400, seed=1)
    monkeypatch.setenv("SEMALIGN_DATA_CACHE", "0")
    want, want_cut = encode_counted(tok, corpus, max_len=12, truncation=truncation)
    assert entries(cache_dir, ".npz") == []  # off: nothing written
    monkeypatch.delenv("SEMALIGN_DATA_CACHE")
    first = encode_counted(tok, corpus, max_len=12, truncation=truncation)
    assert len(entries(cache_dir, ".npz")) == 1
    monkeypatch.setattr(
        tokenizer_module, "_ids", lambda *a, **k: pytest.fail("encoded again on a hit")
    )
    for seqs, cut in (first, encode_counted(tok, corpus, max_len=12, truncation=truncation)):
        assert cut == want_cut > 0
        assert len(seqs) == len(want)
        for a, b in zip(seqs, want, strict=True):
            assert a.dtype == np.int32 and np.array_equal(a, b)


def test_ids_depend_on_length_and_tokenizer(cache_dir):
    corpus = texts(300, seed=2)
    tok = train_tokenizer(corpus, vocab_size=40)
    other = train_tokenizer(corpus, vocab_size=30)
    encode_counted(tok, corpus, max_len=12)
    encode_counted(tok, corpus, max_len=8)
    encode_counted(other, corpus, max_len=12)
    assert len(entries(cache_dir, ".npz")) == 3
    short, _ = encode_counted(tok, corpus, max_len=8)
    assert max(len(s) for s in short) == 8


def test_few_texts_are_not_kept(cache_dir):
    tok = train_tokenizer(texts(300), vocab_size=40)
    encode_counted(tok, texts(token_cache.MIN_TEXTS - 1), max_len=12)
    assert entries(cache_dir, ".npz") == []


def test_a_damaged_entry_is_made_again(cache_dir):
    corpus = texts(300)
    tok = train_tokenizer(corpus, vocab_size=40)
    want, _ = encode_counted(tok, corpus, max_len=12)
    for p in cache_dir.iterdir():
        p.write_bytes(b"not what was written")
    again = train_tokenizer(corpus, vocab_size=40)
    assert again.to_str() == tok.to_str()
    seqs, _ = encode_counted(tok, corpus, max_len=12)
    assert all(np.array_equal(a, b) for a, b in zip(seqs, want, strict=True))
    json.loads((cache_dir / entries(cache_dir, ".json")[0]).read_text())  # rewritten whole
    assert token_cache.load_ids(entries(cache_dir, ".npz")[0][:-4]) is not None


def test_the_least_recently_used_go_first(cache_dir):
    for i, age in enumerate((300, 100, 200)):
        path = cache_dir / f"e{i}.npz"
        path.write_bytes(b"x" * 1000)
        os.utime(path, (1e9 + age, 1e9 + age))
    token_cache._evict(cache_dir, limit=2000)
    assert entries(cache_dir, ".npz") == ["e0.npz", "e2.npz"]  # e1, used longest ago, went


def test_the_command_line_s_folder(monkeypatch, tmp_path):
    for name in (token_cache.ENV, "SEMALIGN_DATA_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SEMALIGN_CACHE_DIR", str(tmp_path / "mine"))
    assert token_cache.cli_data_cache() == str(tmp_path / "mine" / "data")
    assert token_cache.folder() == tmp_path / "mine" / "data"
    assert "0 tokenizers, 0 encodings" in token_cache.describe()
    monkeypatch.setenv(token_cache.ENV, str(tmp_path / "theirs"))
    assert token_cache.cli_data_cache() == str(tmp_path / "theirs")  # the user's own kept
    monkeypatch.setenv("SEMALIGN_DATA_CACHE", "off")
    assert token_cache.cli_data_cache() is None and token_cache.folder() is None
    assert token_cache.describe().startswith("data cache: off")


def test_a_folder_that_cannot_be_made_leaves_it_off(monkeypatch, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.delenv(token_cache.ENV, raising=False)
    monkeypatch.delenv("SEMALIGN_DATA_CACHE", raising=False)
    monkeypatch.setenv("SEMALIGN_CACHE_DIR", str(tmp_path / "file"))
    assert token_cache.cli_data_cache() is None
    assert token_cache.folder() is None
    assert (tmp_path / "file").read_text() == "not a folder"
    train_tokenizer(texts(50), vocab_size=30)  # still trains, writes nothing


def test_devices_says_where_tokenizers_are_kept(cache_dir):
    from typer.testing import CliRunner

    from semalign.cli import app

    train_tokenizer(texts(300), vocab_size=40)
    out = CliRunner().invoke(app, ["devices"], env={"COLUMNS": "300"})
    assert out.exit_code == 0, out.output
    assert f"data cache: {cache_dir} (1 tokenizer, 0 encodings" in out.output


def test_a_second_run_on_the_same_data_is_the_same_run(cache_dir, tmp_path):
    from semalign.testing import tiny_request, write_reviews_csv
    from semalign.workflows.train import train

    data = write_reviews_csv(tmp_path / "reviews.csv", n=400, seed=3)
    runs = [
        train(tiny_request(data, tmp_path / "runs", name=name, train={"epochs": 1}))
        for name in ("cold", "warm")
    ]
    assert len(entries(cache_dir, ".json")) == 1 and len(entries(cache_dir, ".npz")) == 1
    cold, warm = ((r.run / "tokenizer.json").read_bytes() for r in runs)
    assert cold == warm
    assert runs[0].test.accuracy == runs[1].test.accuracy
    metrics = [(r.run / "metrics.jsonl").read_text().splitlines() for r in runs]
    losses = [[json.loads(x).get("train_loss") for x in m] for m in metrics]
    assert losses[0] == losses[1]


def test_a_streamed_corpus_s_pieces_are_not_kept(cache_dir, tmp_path):
    from semalign.data.stream_tokens import StreamedSequences

    tok = train_tokenizer(texts(300), vocab_size=40)
    lines = texts(600, seed=4)

    class Split:  # what StreamedSequences reads: texts by position
        def __len__(self):
            return len(lines)

        def read(self, ks):
            return [lines[k] for k in ks]

    seqs = StreamedSequences(Split(), tok, max_len=12)
    assert len(seqs.read(np.arange(600))) == 600
    assert entries(cache_dir, ".npz") == []
