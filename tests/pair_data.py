"""Tiny sentence-pair datasets written by the tests: pairs sharing words score high."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

WORDS = (
    "cat dog bird fish horse cow sheep goat lion tiger bear wolf fox deer mouse frog "
    "red blue green black white small big old young fast slow happy sad loud quiet"
).split()


def make_pairs(n: int = 120, seed: int = 0) -> list[tuple[str, str, float, str]]:
    """``(text_a, text_b, score 0-5, label)`` rows; the score is the share of A's words in B."""
    r = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        a = [str(w) for w in r.choice(WORDS, size=6, replace=False)]
        keep = int(r.integers(0, 7))
        others = [w for w in WORDS if w not in a]
        b = a[:keep] + [str(w) for w in r.choice(others, size=6 - keep, replace=False)]
        r.shuffle(b)
        score = round(5.0 * keep / 6, 3)
        rows.append((" ".join(a), " ".join(b), score, "same" if keep >= 3 else "different"))
    return rows


def write_pairs(path: str | Path, n: int = 120, seed: int = 0, *, sep: str = "\t") -> Path:
    """A header table ``sentence1, sentence2, score, label`` (TSV or CSV by ``sep``)."""
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=sep, lineterminator="\n")
        w.writerow(["sentence1", "sentence2", "score", "label"])
        w.writerows(make_pairs(n, seed))
    return path


def write_stsb(path: str | Path, n: int = 60, seed: int = 0, *, extra_every: int = 7) -> Path:
    """An STS-B layout file: 7 tab-separated fields, some rows with 2 extra trailing ones."""
    path = Path(path)
    lines = []
    for i, (a, b, score, _) in enumerate(make_pairs(n, seed)):
        fields = ["main-captions", "MSRvid", "2012test", f"{i:04d}", f"{score:.3f}", a, b]
        if extra_every and i % extra_every == 0:
            fields += ["tag-a", "tag-b"]
        lines.append("\t".join(fields))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
