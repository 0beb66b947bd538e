"""The alphabet from distinct characters equals the one from normalising every text."""

import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models

from semalign.data.alphabet import _may_join, alphabet
from semalign.data.tokenizer import train_tokenizer


def _tokenizer(lowercase: bool) -> Tokenizer:
    """A tokenizer with exactly the normaliser semalign trains with."""
    probe = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    probe.normalizer = train_tokenizer(
        ["x"], vocab_size=10, kind="word", lowercase=lowercase
    ).normalizer
    return probe


def _by_every_text(tokenizer: Tokenizer, texts: list[str]) -> list[str]:
    """The reference: every text normalised whole, its characters collected."""
    seen = set()
    for t in texts:
        seen.update(tokenizer.normalizer.normalize_str(t))
    return sorted(seen - set(" \t\n\r\x0b\x0c"))


# Characters that change with their neighbours: tags (with ASCII and other spaces),
# combining marks, precomposed letters, Hangul jamo (conjoining and compatibility),
# Indic vowel signs that compose without being combining marks, ligatures, case pairs.
_POOL = list(
    "abcBRr<>/ \t\n\u00a0\u2003eE\u0301\u0308\u0345\u00b4éÉﬁİΣς"
    "ㄱㅏ가\u1100\u1161\u11a8\u0b47\u0b3e\u0dd9\u0dcf½x"
)


@pytest.mark.parametrize("lowercase", [True, False])
@pytest.mark.parametrize(
    "texts",
    [
        ["e\u0301 x"],  # e + acute composes to é, which no text holds precomposed
        ["ㄱㅏ"],  # compatibility jamo: NFKC makes conjoining ones, which compose to 가
        ["<BR/>only", "a<br \u00a0/>b"],  # a tag's letters and a tag with a no-break space
        ["x<br\t/>y", "<<br>>", "<br"],
        ["ＢＲ <bR>", "İstanbul ΣΑΣ", "ﬁ ½ ㎏"],
        ["\u0b47\u0b3e", "\U0001f600 \U000e0001"],
        [],
    ],
)
def test_alphabet_by_hand_cases(texts, lowercase):
    tok = _tokenizer(lowercase)
    assert alphabet(tok, texts) == _by_every_text(tok, texts)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text(st.sampled_from(_POOL), max_size=12), min_size=1, max_size=5),
    st.booleans(),
    st.integers(1, 3),
)
def test_alphabet_equals_normalising_every_text(texts, lowercase, chunk):
    tok = _tokenizer(lowercase)
    assert alphabet(tok, texts, chunk=chunk) == _by_every_text(tok, texts)


def test_every_second_half_of_a_composition_may_join():
    """The rule in ``_may_join`` covers every canonical pair of this Python's tables."""
    missed = []
    for code in range(sys.maxunicode + 1):
        parts = unicodedata.decomposition(chr(code)).split()
        if len(parts) == 2 and not parts[0].startswith("<"):
            second = chr(int(parts[1], 16))
            if not _may_join(second):
                missed.append(f"U+{ord(second):04X}")
    assert missed == []
