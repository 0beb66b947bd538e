"""Trained tokenizers and encoded texts kept on disk, so a repeated run skips making them.

Training the default WordPiece tokenizer on IMDB's 19,924 training reviews took 5.4 s on
a 2-core CPU and encoding the three splits 3.8 s, paid again by every run on the same data
(another scoring, another seed, each run of ``semalign compare``). The command line keeps
both under ``<cache root>/data`` (:func:`cli_data_cache`; ``SEMALIGN_DATA_CACHE=0`` turns
it off); library code keeps them only where ``SEMALIGN_DATA_CACHE_DIR`` names a folder.

An entry is named by a sha256 of everything its content depends on: the texts in order,
the settings, the ``tokenizers`` version and the source of :mod:`semalign.data.tokenizer`,
so a changed pipeline misses instead of reading a stale entry. Entries are written to a
temporary file and renamed (a reader never sees half of one), an unreadable entry counts as
a miss and is written again, and the folder is bounded (:data:`MAX_BYTES`, the least
recently used go first). numpy and the standard library only.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Sequence
from functools import cache
from importlib import metadata
from pathlib import Path

import numpy as np

from semalign.caches import cache_root, turned_off

__all__ = [
    "ENV",
    "MAX_BYTES",
    "MIN_TEXTS",
    "cli_data_cache",
    "describe",
    "entry_name",
    "folder",
    "load_ids",
    "load_text",
    "store_ids",
    "store_text",
]

#: The folder of the cache; unset: nothing is kept.
ENV = "SEMALIGN_DATA_CACHE_DIR"
#: Upper bound of the folder on disk (the default IMDB run's entries take ~32 MiB).
MAX_BYTES = 2 << 30
#: Fewer texts than this are encoded, not cached (a prediction's few texts: no file).
MIN_TEXTS = 256

_FORMAT = "1"  # bump when an entry's layout changes


def cli_data_cache() -> str | None:
    """The command line's start: the cache on in ``<cache root>/data`` unless turned off.

    A folder the user set in ``SEMALIGN_DATA_CACHE_DIR`` is kept as it is.

    Returns:
      The folder, or None when off (``SEMALIGN_DATA_CACHE=0``, or it cannot be made).
    """
    if turned_off("SEMALIGN_DATA_CACHE"):
        os.environ.pop(ENV, None)
        return None
    chosen = os.environ.get(ENV, "").strip() or str(cache_root() / "data")
    try:
        Path(chosen).mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(chosen, os.W_OK):
        return None
    os.environ[ENV] = chosen
    return chosen


def folder() -> Path | None:
    """The cache folder, or None when caching is off (unset, or not a writable folder)."""
    chosen = os.environ.get(ENV, "").strip()
    if not chosen or turned_off("SEMALIGN_DATA_CACHE"):
        return None
    path = Path(chosen)
    return path if path.is_dir() and os.access(path, os.W_OK) else None


@cache
def _code_digest() -> str:
    # The pipeline's own code and the library it drives: either changing misses.
    source = Path(__file__).with_name("tokenizer.py").read_bytes()
    version = metadata.version("tokenizers")
    return hashlib.sha256(source + b"\0" + version.encode() + b"\0" + _FORMAT.encode()).hexdigest()


def entry_name(kind: str, *parts: object) -> str:
    """The file name of an entry: ``kind`` and a sha256 of ``parts`` and the pipeline.

    Texts go in as their digest (:func:`semalign.data.fingerprint.rows_sha256`).
    """
    digest = hashlib.sha256(_code_digest().encode())
    for part in parts:
        digest.update(repr(part).encode() + b"\0")
    return f"{kind}-{digest.hexdigest()[:32]}"


def _path(name: str, suffix: str) -> Path | None:
    root = folder()
    return None if root is None else root / f"{name}{suffix}"


def _write(path: Path, data: bytes) -> None:
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:  # a full or read-only disk: the run goes on without the entry
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        return
    _evict(path.parent)


def _touch(path: Path) -> None:
    try:
        os.utime(path)  # least recently *used* goes first
    except OSError:
        pass


def _evict(root: Path, limit: int = MAX_BYTES) -> None:
    entries = []
    for p in _entries(root):
        try:
            st = p.stat()
        except OSError:  # another process removed it meanwhile
            continue
        entries.append((st.st_mtime, st.st_size, p))
    total = sum(size for _, size, _ in entries)
    for _, size, p in sorted(entries):
        if total <= limit:
            break
        p.unlink(missing_ok=True)
        total -= size


def _entries(root: Path) -> list[Path]:
    try:
        return [p for p in root.iterdir() if p.is_file() and not p.name.startswith(".tmp-")]
    except OSError:
        return []


def load_text(name: str) -> str | None:
    """The text entry ``name`` (a tokenizer's JSON), or None when absent or unreadable."""
    path = _path(name, ".json")
    if path is None or not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    _touch(path)
    return text


def store_text(name: str, text: str) -> None:
    """Keep ``text`` as entry ``name`` (nothing when caching is off)."""
    path = _path(name, ".json")
    if path is not None:
        _write(path, text.encode("utf-8"))


def load_ids(name: str) -> tuple[list[np.ndarray], int] | None:
    """The id sequences of entry ``name`` and its count of cut texts, or None when absent."""
    path = _path(name, ".npz")
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            flat, lengths, cut = z["flat"], z["lengths"], int(z["cut"])
    except (OSError, ValueError, KeyError, EOFError):
        return None
    if lengths.sum() != flat.size:
        return None
    _touch(path)
    return np.split(flat, np.cumsum(lengths)[:-1]), cut


def store_ids(name: str, seqs: Sequence[np.ndarray], cut: int) -> None:
    """Keep the int32 sequences ``seqs`` ``[L_i]`` and ``cut`` as entry ``name``."""
    path = _path(name, ".npz")
    if path is None:
        return
    lengths = np.fromiter((len(s) for s in seqs), np.int64, len(seqs))
    flat = np.concatenate(seqs).astype(np.int32) if seqs else np.zeros(0, np.int32)
    buf = io.BytesIO()
    np.savez(buf, flat=flat, lengths=lengths, cut=np.int64(cut))
    _write(path, buf.getvalue())


def describe() -> str:
    """One line: where tokenizers and encodings are kept (and how many), or that they are not."""
    root = folder()
    if root is None:
        return "data cache: off (each run trains its tokenizer and encodes its texts)"
    files = _entries(root)
    tokenizers = sum(p.suffix == ".json" for p in files)
    encodings = sum(p.suffix == ".npz" for p in files)
    size = sum(p.stat().st_size for p in files if p.exists()) / 2**20
    return (
        f"data cache: {root} ({tokenizers} tokenizer{'' if tokenizers == 1 else 's'}, "
        f"{encodings} encoding{'' if encodings == 1 else 's'}, {size:.1f} MiB)"
    )
