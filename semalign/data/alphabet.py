"""The characters of normalised texts, without normalising every text.

A WordPiece trainer is given the alphabet up front (:mod:`semalign.data.tokenizer`
reserves a ``##x`` piece for each character to make its ids deterministic). Normalising
every training text to collect it took 2.8 s of IMDB's 7 s of tokenizer training on one
core; normalising each distinct character once gives the same set whenever no character
of a text changes with its neighbours. With semalign's normaliser (``<br>`` tags to a
space, NFKC, optionally lower case) two things do:

* a ``<br>`` tag: it is removed here first, by an ASCII-whitespace form of the tag
  pattern, which matches a subset of what the tokenizer's pattern matches; a text where
  ``<br`` is left after that (a tag the forms may read differently) is normalised whole;
* canonical composition: ``e`` + U+0301 becomes ``é``. It joins a character only to a
  following one that is the second half of some composition: a combining mark or a
  Hangul jamo (:func:`_may_join`); a text holding such a character (or one whose
  decomposition begins with one, or one this Python's Unicode tables do not know) is
  normalised whole.

Lower-casing works character by character in ``tokenizers``, so it needs no care.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from tokenizers import Tokenizer

__all__ = ["alphabet"]

_SPACES = frozenset(" \t\n\r\x0b\x0c")
_TAG = re.compile(r"<br[ \t\n\r\f\v]*/?>", re.IGNORECASE)
_TAG_START = re.compile(r"<br", re.IGNORECASE)
# Hangul syllables compose from jamo by formula: a vowel joins a leading consonant, a
# trailing consonant joins an LV syllable. Every other second half of a composition is a
# mark (tests/test_data_alphabet.py checks this against Python's whole table).
_JAMO = (range(0x1161, 0x1176), range(0x11A8, 0x11C3))


def _may_join(c: str) -> bool:
    """Whether canonical composition may join ``c`` to the character before it."""
    return (
        unicodedata.category(c) in ("Mn", "Mc", "Me", "Cn")
        or unicodedata.combining(c) != 0
        or any(ord(c) in r for r in _JAMO)
    )


def _joins(chars: set[str]) -> set[str]:
    """The characters of ``chars`` whose normal form may depend on the one before.

    Composition joins a character to the last starter before it, so only a character
    whose decomposition *begins* with a possible second half can reach back (é is e +
    U+0301 and composes within itself; the compatibility jamo ㅏ becomes U+1161, which
    joins a leading consonant), or one this Python's Unicode tables do not know.
    """
    # No ASCII character is a second half, nor decomposes into one. An unknown character
    # decomposes into itself, which `_may_join` takes for a possible second half.
    return {c for c in chars if not c.isascii() and _may_join(unicodedata.normalize("NFKD", c)[0])}


def _characters(texts: Sequence[str], chunk: int) -> set[str]:
    chars: set[str] = set()
    for start in range(0, len(texts), chunk):
        chars.update("".join(texts[start : start + chunk]))
    return chars


def alphabet(tokenizer: Tokenizer, texts: Sequence[str], chunk: int = 1024) -> list[str]:
    """Every non-space character of the texts after ``tokenizer``'s normaliser, sorted.

    Args:
      tokenizer: its normaliser is semalign's (``<br>`` tags, NFKC, optional lower case).
      texts: the raw texts.
      chunk: texts joined per call (the result does not depend on it).

    Returns:
      The same list as normalising every text and collecting its characters.
    """
    whole: list[str] = []  # texts normalised as they are
    rest: list[str] = []  # their tags removed: each character counts on its own
    for t in texts:
        if "<" in t:
            cut = _TAG.sub(" ", t)
            if _TAG_START.search(cut):
                whole.append(t)
                continue
            t = cut
        rest.append(t)
    chars = _characters(rest, chunk)
    joins = _joins(chars)
    if joins:  # rare: the texts with such a character go whole
        found = re.compile("[" + "".join(map(re.escape, sorted(joins))) + "]").search
        kept = []
        for t in rest:
            (whole if found(t) else kept).append(t)
        chars = _characters(kept, chunk)
    normalize = tokenizer.normalizer.normalize_str
    seen: set[str] = set()
    for c in chars:
        seen.update(normalize(c))
    for start in range(0, len(whole), chunk):
        seen.update(normalize("\n".join(whole[start : start + chunk])))
    return sorted(seen - _SPACES)
