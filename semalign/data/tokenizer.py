"""Train, save, load and apply a HuggingFace ``tokenizers`` tokenizer.

Every tokenizer made here shares one pipeline: normalise (``<br />``, any case, to
a space, NFKC, optionally lower case), split on whitespace and punctuation
(BERT pre-tokenizer), map to ids with the chosen model, and put ``[CLS]`` first.
The special tokens have fixed ids (:data:`SPECIAL_TOKENS`), so ``[PAD]`` is
always id 0 and the model code may rely on it.

Train the tokenizer on the training split only: fitting it on validation or
test texts leaks their vocabulary into the model.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from tokenizers.processors import TemplateProcessing

from semalign.config import TRUNCATIONS
from semalign.data import token_cache
from semalign.data.alphabet import alphabet as character_set
from semalign.data.fingerprint import rows_sha256
from semalign.errors import DataError

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, UNK, CLS, SEP, MASK)
"""The special tokens; the id of each is its position here."""
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = range(len(SPECIAL_TOKENS))


#: Texts normalised or encoded per call. One call over IMDB's 19,924 training reviews
#: held +1.4 GiB resident while normalising them (offsets for every character: the peak
#: of ``semalign train``) and left +0.55 GiB after encoding them (every token's string and
#: offsets); 1,024 at a time keep each to tens of MiB and give the same result.
CHUNK = 1024


def _chunks(items: Sequence, size: int = CHUNK):
    """``items`` in consecutive slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _wordpiece(tokenizer: Tokenizer, texts: Sequence[str], vocab_size: int) -> Tokenizer:
    # HF's WordPiece trainer numbers the continuation pieces (##x) in hash-map order and
    # breaks merge ties by those numbers, so the same texts can give different vocabularies
    # (huggingface/tokenizers#1794). Reserving every ##x up front fixes their ids; the
    # model is then rebuilt from the vocabulary so that they are ordinary tokens.
    alphabet = character_set(tokenizer, texts)
    pieces = [f"##{c}" for c in alphabet]
    tokenizer.model = models.WordPiece(unk_token=UNK, max_input_chars_per_word=100)
    tokenizer.train_from_iterator(
        texts,
        trainer=trainers.WordPieceTrainer(
            vocab_size=vocab_size + len(pieces),
            special_tokens=[*SPECIAL_TOKENS, *pieces],
            initial_alphabet=alphabet,
            continuing_subword_prefix="##",
            show_progress=False,
        ),
    )
    vocab = tokenizer.get_vocab(with_added_tokens=True)
    keep = sorted(vocab.items(), key=lambda kv: kv[1])[:vocab_size]
    out = Tokenizer(
        models.WordPiece(
            vocab={t: i for i, (t, _) in enumerate(keep)},
            unk_token=UNK,
            max_input_chars_per_word=100,
        )
    )
    out.normalizer = tokenizer.normalizer
    out.pre_tokenizer = tokenizer.pre_tokenizer
    out.decoder = decoders.WordPiece(prefix="##")
    out.add_special_tokens(list(SPECIAL_TOKENS))
    return out


def _word(tokenizer: Tokenizer, texts: Sequence[str], vocab_size: int) -> Tokenizer:
    # WordLevelTrainer sorts ties by token (huggingface/tokenizers#717): deterministic.
    tokenizer.model = models.WordLevel(unk_token=UNK)
    tokenizer.train_from_iterator(
        texts,
        trainer=trainers.WordLevelTrainer(
            vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False
        ),
    )
    return tokenizer


TOKENIZER_KINDS: dict[str, Callable[[Tokenizer, Sequence[str], int], Tokenizer]] = {
    "wordpiece": _wordpiece,
    "word": _word,
}
"""Tokenizer kinds: a name maps to ``(base tokenizer, texts, vocab_size) -> trained``.

``wordpiece`` splits rare words into sub-words (``##ing``), so almost nothing
is ``[UNK]``; ``word`` keeps whole words and maps the rest to ``[UNK]``. Both
are deterministic: the same texts give the same vocabulary.
"""


def train_tokenizer(
    texts: Iterable[str],
    *,
    vocab_size: int,
    kind: str = "wordpiece",
    lowercase: bool = True,
) -> Tokenizer:
    """Train a tokenizer on ``texts`` (the training split only).

    Args:
        texts: The training texts.
        vocab_size: Vocabulary size, the special tokens included. A small
            corpus may give fewer.
        kind: A key of :data:`TOKENIZER_KINDS`.
        lowercase: Lower-case text before splitting it.

    Returns:
        A tokenizer with ``[CLS]`` prepended to every encoding and no padding
        or truncation set (:func:`encode_texts` truncates).

    Raises:
        ValueError: If ``kind`` is unknown or ``vocab_size`` smaller than the
            number of special tokens.

    >>> tok = train_tokenizer(["a cat sat", "a dog ran"], vocab_size=50, kind="word")
    >>> tokens_of(tok, "A cat flew", max_len=8)
    ['[CLS]', 'a', 'cat', '[UNK]']

    """
    build = TOKENIZER_KINDS.get(kind)
    if build is None:
        raise ValueError(
            f"unknown tokenizer kind {kind!r}; choose one of {', '.join(sorted(TOKENIZER_KINDS))}"
        )
    if vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must exceed {len(SPECIAL_TOKENS)}, got {vocab_size}")
    texts = list(texts)
    name = None
    if token_cache.folder() is not None:  # the same texts and settings trained before
        digest = rows_sha256(texts)
        name = token_cache.entry_name("tokenizer", kind, vocab_size, lowercase, digest)
        kept = token_cache.load_text(name)
        if kept is not None:
            try:
                tokenizer = Tokenizer.from_str(kept)
                _check_special_ids(tokenizer, "the cached tokenizer")
                return tokenizer
            except Exception:  # noqa: BLE001 - an unreadable entry: train it again
                pass
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
    steps = [normalizers.Replace(Regex(r"(?i)<br\s*/?>"), " "), normalizers.NFKC()]
    if lowercase:
        steps.append(normalizers.Lowercase())
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer = build(tokenizer, texts, vocab_size)
    tokenizer.post_processor = TemplateProcessing(
        single=f"{CLS} $A", special_tokens=[(CLS, CLS_ID)]
    )
    _check_special_ids(tokenizer, "the trained tokenizer")
    if name is not None:
        token_cache.store_text(name, tokenizer.to_str())
    return tokenizer


def save_tokenizer(tokenizer: Tokenizer, path: str | os.PathLike[str]) -> None:
    """Write ``tokenizer`` as one JSON file, without any padding or truncation setting.

    Args:
        tokenizer: A tokenizer from :func:`train_tokenizer` or :func:`load_tokenizer`.
        path: The file to write, usually ``runs/<name>/tokenizer.json``.

    """
    clean = Tokenizer.from_str(tokenizer.to_str())
    clean.no_padding()
    clean.no_truncation()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    clean.save(str(path))


def load_tokenizer(path: str | os.PathLike[str]) -> Tokenizer:
    """Read a tokenizer written by :func:`save_tokenizer`.

    Args:
        path: The JSON file.

    Returns:
        The tokenizer, without padding or truncation.

    Raises:
        DataError: If the file is missing, unreadable, or its special tokens
            do not have the fixed ids.

    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"tokenizer file {str(path)!r} does not exist; check the run folder")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as err:  # tokenizers raises a bare Exception on bad JSON.
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(
            f"{path} is not a valid tokenizer file ({reason}); retrain or restore it"
        ) from None
    tokenizer.no_padding()
    tokenizer.no_truncation()
    _check_special_ids(tokenizer, str(path))
    return tokenizer


# TRUNCATIONS: how a text longer than ``max_len`` tokens is cut: keep its beginning, its
# end, or a quarter from the beginning and the rest from the end (Sun et al. 2019, "How
# to fine-tune BERT for text classification": head + tail did best on IMDB).


def cut(ids: Sequence[int], max_len: int, truncation: str = "head") -> list[int]:
    """``ids`` (``[CLS]`` first) cut to at most ``max_len``, keeping ``[CLS]`` first.

    >>> cut([2, 10, 11, 12, 13, 14], 4, "head"), cut([2, 10, 11, 12, 13, 14], 4, "tail")
    ([2, 10, 11, 12], [2, 12, 13, 14])
    >>> cut([2, 10, 11, 12, 13, 14, 15, 16, 17], 5, "head-tail")
    [2, 10, 15, 16, 17]
    """
    ids = list(ids)
    if len(ids) <= max_len or truncation == "head" or max_len < 2:
        return ids[:max_len]
    body = max_len - 1  # room after [CLS]
    head = body // 4 if truncation == "head-tail" else 0
    if truncation not in TRUNCATIONS:
        raise ValueError(f"truncation must be one of {', '.join(TRUNCATIONS)}, got {truncation!r}")
    return ids[: 1 + head] + ids[len(ids) - (body - head) :]


def _ids(tokenizer: Tokenizer, texts: Sequence[str], chunk: int = CHUNK) -> Iterator[list[int]]:
    """Each text's uncut ids, encoded ``chunk`` at a time.

    One ``encode_batch`` over a long list holds every encoding (offsets, tokens, masks)
    at once; a chunk at a time holds one chunk's, and the fast form skips the offsets
    (only the ids are read: ~12 % less CPU on IMDB).
    """
    for part in _chunks(list(texts), chunk):
        for e in tokenizer.encode_batch_fast(part):
            yield e.ids


def token_ids(tokenizer: Tokenizer, texts: Sequence[str], chunk: int = CHUNK) -> list[list[int]]:
    """Every id of each text (``[CLS]`` first, nothing cut), encoded ``chunk`` at a time."""
    return list(_ids(tokenizer, texts, chunk))


def encode_counted(
    tokenizer: Tokenizer,
    texts: Sequence[str],
    *,
    max_len: int,
    truncation: str = "head",
    chunk: int = CHUNK,
    cache: bool = True,
) -> tuple[list[np.ndarray], int]:
    """:func:`encode_texts` and how many texts were longer than ``max_len`` (so cut).

    The texts are encoded ``chunk`` at a time (same ids, a bounded peak of memory). With
    ``cache`` and the data cache on (:mod:`semalign.data.token_cache`), ids of the same
    texts encoded before are read back instead (a split, not a streamed corpus's pieces).
    """
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len}")
    if truncation not in TRUNCATIONS:
        raise ValueError(f"truncation must be one of {', '.join(TRUNCATIONS)}, got {truncation!r}")
    name = None
    if cache and len(texts) >= token_cache.MIN_TEXTS and token_cache.folder() is not None:
        digest = rows_sha256(texts)
        pipeline = hashlib.sha256(tokenizer.to_str().encode()).hexdigest()
        name = token_cache.entry_name("ids", pipeline, max_len, truncation, digest)
        kept = token_cache.load_ids(name)
        if kept is not None:
            return kept
    seqs, cut_count = [], 0
    for ids in _ids(tokenizer, texts, chunk):  # cut as they come: one chunk's ids held
        cut_count += len(ids) > max_len
        seqs.append(np.asarray(cut(ids, max_len, truncation), dtype=np.int32))
    if name is not None:
        token_cache.store_ids(name, seqs, int(cut_count))
    return seqs, int(cut_count)


def encode_texts(
    tokenizer: Tokenizer,
    texts: Sequence[str],
    *,
    max_len: int,
    truncation: str = "head",
    cache: bool = True,
) -> list[np.ndarray]:
    """Token ids of each text, ``[CLS]`` first, cut to ``max_len``; no padding.

    Args:
        tokenizer: A tokenizer from this module.
        texts: ``N`` texts.
        max_len: Most ids per text, ``[CLS]`` included.
        truncation: which part of a longer text is kept (:data:`TRUNCATIONS`).
        cache: read and keep the ids in the data cache when it is on
            (:func:`encode_counted`).

    Returns:
        ``N`` int32 arrays ``[L_i]`` with ``1 <= L_i <= max_len``.

    Raises:
        ValueError: If ``max_len < 1`` or an unknown ``truncation``.

    """
    return encode_counted(tokenizer, texts, max_len=max_len, truncation=truncation, cache=cache)[0]


def tokens_of(tokenizer: Tokenizer, text: str, max_len: int) -> list[str]:
    """Return the token strings of one text, cut as :func:`encode_texts` cuts.

    Args:
        tokenizer: A tokenizer from this module.
        text: One text.
        max_len: Most tokens, ``[CLS]`` included.

    Returns:
        The tokens, ``[CLS]`` first; ``tokens_of(...)[i]`` is the token of id ``i``
        of ``encode_texts(...)``.

    """
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len}")
    return tokenizer.encode(text).tokens[:max_len]


def _check_special_ids(tokenizer: Tokenizer, where: str) -> None:
    for expected, token in enumerate(SPECIAL_TOKENS):
        found = tokenizer.token_to_id(token)
        if found != expected:
            raise DataError(
                f"{where}: special token {token} has id {found}, expected {expected}; "
                "use a tokenizer trained by semalign"
            )
