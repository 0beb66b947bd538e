"""Tokenizer: fixed special ids, normalisation, truncation, save / load."""

import json

import numpy as np
import pytest

from semalign.data import (
    CLS_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    TOKENIZER_KINDS,
    UNK_ID,
    encode_texts,
    load_tokenizer,
    save_tokenizer,
    tokens_of,
    train_tokenizer,
)
from semalign.errors import DataError

CORPUS = [
    "The movie was great.<br /><br />Great acting, great story!",
    "The film was terrible.<br/>Terrible acting; I walked out.",
    "An okay movie: the acting was fine, the story was not.",
    "Café scenes were lovely — the acting was lovely too.",
    "Walking, talking, acting: the movie has it all.",
] * 4


@pytest.fixture(scope="module", params=sorted(TOKENIZER_KINDS))
def tok(request):
    return train_tokenizer(CORPUS, vocab_size=200, kind=request.param)


def test_special_tokens_have_fixed_ids(tok):
    assert SPECIAL_TOKENS == ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
    assert [tok.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert tok.padding is None and tok.truncation is None


def test_normalisation_and_cls(tok):
    tokens = tokens_of(tok, "GREAT<br />movie<BR/>Café", max_len=50)
    assert tokens[0] == "[CLS]"
    assert "br" not in tokens and "<" not in tokens
    assert tokens[1:4] == ["great", "movie", "café"]


def test_lowercase_off():
    tok = train_tokenizer(CORPUS, vocab_size=200, kind="word", lowercase=False)
    assert tokens_of(tok, "An an The the", max_len=9) == ["[CLS]", "An", "[UNK]", "The", "the"]


def test_wordpiece_splits_unseen_words_instead_of_unk():
    tok = train_tokenizer(CORPUS, vocab_size=300, kind="wordpiece")
    tokens = tokens_of(tok, "talked", max_len=10)
    assert UNK_ID not in encode_texts(tok, ["talked"], max_len=10)[0]
    assert len(tokens) > 2 and all(t.startswith("##") for t in tokens[2:])


def test_encode_truncates_and_matches_tokens(tok):
    texts = ["the movie was great", "acting " * 100, "zzz qqq"]
    ids = encode_texts(tok, texts, max_len=8)
    assert [len(x) for x in ids] == [5, 8, 3]
    assert all(x.dtype == np.int32 and x[0] == CLS_ID for x in ids)
    assert PAD_ID not in np.concatenate(ids)
    for text, row in zip(texts, ids, strict=True):
        assert [tok.token_to_id(t) for t in tokens_of(tok, text, max_len=8)] == row.tolist()
    assert encode_texts(tok, ["acting"] * 3, max_len=1)[0].tolist() == [CLS_ID]
    with pytest.raises(ValueError, match="max_len must be at least 1, got 0"):
        encode_texts(tok, texts, max_len=0)


def test_save_load_round_trip_drops_padding_and_truncation(tok, tmp_path):
    tok.enable_padding(length=64)
    tok.enable_truncation(max_length=3)
    try:
        save_tokenizer(tok, tmp_path / "run" / "tokenizer.json")
    finally:
        tok.no_padding()
        tok.no_truncation()
    saved = json.loads((tmp_path / "run" / "tokenizer.json").read_text())
    assert saved["padding"] is None and saved["truncation"] is None
    loaded = load_tokenizer(tmp_path / "run" / "tokenizer.json")
    texts = ["The movie was great, lovely acting!", "unseen words here"]
    expected = encode_texts(tok, texts, max_len=32)
    got = encode_texts(loaded, texts, max_len=32)
    assert [x.tolist() for x in got] == [x.tolist() for x in expected]
    assert loaded.decode(got[0].tolist()) == tok.decode(expected[0].tolist())


def test_load_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist; check the run folder"):
        load_tokenizer(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match=r"bad\.json is not a valid tokenizer file") as err:
        load_tokenizer(tmp_path / "bad.json")
    assert "\n" not in str(err.value)
    foreign = train_tokenizer(CORPUS, vocab_size=100, kind="word")
    data = json.loads(foreign.to_str())
    data["model"]["vocab"] = {"[UNK]": 0, "the": 1}
    data["added_tokens"] = []
    (tmp_path / "foreign.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"special token \[PAD\] has id None, expected 0"):
        load_tokenizer(tmp_path / "foreign.json")


def test_bad_arguments():
    with pytest.raises(ValueError, match="kind 'bpe'; choose one of word, wordpiece"):
        train_tokenizer(CORPUS, vocab_size=100, kind="bpe")
    with pytest.raises(ValueError, match="vocab_size must exceed 5, got 5"):
        train_tokenizer(CORPUS, vocab_size=5)


@pytest.mark.parametrize("kind", ["wordpiece", "word"])
def test_training_is_deterministic(kind):
    """Same texts, same vocabulary (HF's WordPiece trainer alone is not: tokenizers#1794)."""
    r = np.random.default_rng(0)
    words = ["".join(r.choice(list("abcdefgh"), size=r.integers(2, 7))) for _ in range(60)]
    texts = [" ".join(r.choice(words, size=12)) for _ in range(80)]
    vocabs = [train_tokenizer(texts, vocab_size=60, kind=kind).get_vocab() for _ in range(8)]
    assert all(v == vocabs[0] for v in vocabs)
    assert len(vocabs[0]) == 60


def _normalizer():
    from tokenizers import Tokenizer, models

    tok = train_tokenizer(["x"], vocab_size=10, kind="word")
    probe = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    probe.normalizer = tok.normalizer
    return probe


@pytest.mark.parametrize("chunk", [1, 2, 3, 100])
def test_alphabet_is_the_same_whatever_the_chunk(chunk):
    """The alphabet is normalised a chunk of texts at a time (bounded memory), same set."""
    from semalign.data.alphabet import alphabet

    texts = ["Ab<br />c", "ﬁ Ⅻ", "ÉcOLE\tz", "<BR/>q", "plain"]
    # By hand: <br /> goes, NFKC splits the ligature ﬁ and the numeral Ⅻ, then lower case.
    expected = sorted(set("abc" + "fixii" + "écolez" + "q" + "plain"))
    assert alphabet(_normalizer(), texts, chunk=chunk) == expected


@pytest.mark.parametrize("chunk", [1, 2, 1024])
def test_encoding_is_the_same_whatever_the_chunk(tok, chunk):
    from semalign.data import encode_counted

    texts = ["the movie was great", "acting " * 100, "zzz qqq", "great story"] * 3
    seqs, cut = encode_counted(tok, texts, max_len=8, chunk=chunk)
    full = [tok.encode(t).ids for t in texts]  # one text at a time: the reference
    assert [s.tolist() for s in seqs] == [ids[:8] for ids in full]
    assert cut == sum(len(ids) > 8 for ids in full) == 3
    from semalign.data.tokenizer import token_ids  # uncut ids, for predict and pair tasks

    assert token_ids(tok, texts, chunk=chunk) == full
