"""Token ids of a streamed split: texts tokenized when their batch is read, never all held.

The ``sequences`` of a streamed corpus task's encoding. Only the token count of each text
is kept (``lengths``, 4 bytes a text, filled once per run by the task), which the
length-bucketed batch plan needs. Imports no JAX.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from semalign.data.stream import StreamedTexts
from semalign.data.tokenizer import SEP_ID, encode_texts

__all__ = ["StreamedSequences", "closed"]

_CHUNK = 256


def closed(ids: Iterable[np.ndarray], max_len: int) -> list[np.ndarray]:
    """Each id array with ``[SEP]`` appended when it is shorter than ``max_len``."""
    return [np.append(s, np.int32(SEP_ID)) if len(s) < max_len else s for s in ids]


class StreamedSequences:
    """``[CLS] … [SEP]`` ids of a streamed split, read and tokenized on demand.

    Attributes:
      texts: the split.
      tokenizer: the run's tokenizer.
      max_len: ids per text at most.
      lengths: ``[n]`` int32 ids of each text once counted (None before).
    """

    def __init__(self, texts: StreamedTexts, tokenizer, max_len: int):
        self.texts, self.tokenizer, self.max_len = texts, tokenizer, max_len
        self.lengths: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def read(self, ks) -> list[np.ndarray]:
        """The ids of the split's texts at positions ``ks`` (int32 ``[L_i]`` each)."""
        texts = self.texts.read(np.asarray(ks, np.int64))
        # Pieces of a corpus larger than memory: not worth the cache's disk (each is read
        # once an epoch, and together they would push the splits' entries out).
        ids = encode_texts(self.tokenizer, texts, max_len=self.max_len, cache=False)
        return closed(ids, self.max_len)

    def count(self, ks: np.ndarray) -> np.ndarray:
        """``[len(ks)]`` int32 ids of the texts at positions ``ks``, read in chunks."""
        out = np.zeros(len(ks), np.int32)
        for start in range(0, len(ks), _CHUNK):
            chunk = self.read(ks[start : start + _CHUNK])
            out[start : start + len(chunk)] = [len(s) for s in chunk]
        return out
