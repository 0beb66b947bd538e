"""Every reader under a property-based fuzz: success, or one line naming the file."""

import json
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semalign.data import read_examples
from semalign.data.pair_readers import load_pair_splits, read_pairs
from semalign.data.pairs import PairDataConfig
from semalign.errors import DataError

FUZZ = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252")
# Fields that break naive parsers: quotes, delimiters, newlines, NULs, BOMs, huge ones.
NASTY = st.sampled_from(['"', "'", ",", "\t", "\n", "\r\n", "\x00", "\ufeff", "{", "}", "\\"])
FIELD = st.one_of(
    st.text(max_size=12),
    st.lists(st.one_of(NASTY, st.text(max_size=3)), max_size=6).map("".join),
    st.just(""),
    st.integers(1, 3).map(lambda k: "x" * (70_000 * k)),
)
COLUMNS = st.lists(
    st.sampled_from(["text", "label", "sentence1", "sentence2", "score", "extra", ""]),
    min_size=0,
    max_size=5,
)


@st.composite
def table_bytes(draw) -> bytes:
    """A header table with random columns, delimiters, quoting and encodings, or junk."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200))
    sep = draw(st.sampled_from([",", "\t", ";", "|"]))
    header = draw(COLUMNS)
    rows = draw(st.lists(st.lists(FIELD, max_size=6), max_size=6))
    quote = draw(st.booleans())

    def line(fields):
        return sep.join(f'"{f}"' if quote else f for f in fields)

    text = "\n".join([line(header), *(line(r) for r in rows)])
    if draw(st.booleans()):  # a JSONL rendering of the same rows instead
        text = "\n".join(
            json.dumps(dict(zip(header, r, strict=False))) if draw(st.booleans()) else line(r)
            for r in rows
        )
    encoding = draw(st.sampled_from(ENCODINGS))
    return text.encode(encoding, errors="replace")


def _one_line(err: DataError, path: Path) -> None:
    message = str(err)
    assert "\n" not in message and "\r" not in message, message
    assert path.name in message or str(path) in message, message


def _write(content: bytes, suffix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="fuzz"))
    path = folder / f"data{suffix}"
    path.write_bytes(content)
    return path


def _clean(path: Path) -> None:
    shutil.rmtree(path if path.is_dir() else path.parent, ignore_errors=True)


@FUZZ
@given(table_bytes(), st.sampled_from([".csv", ".tsv", ".jsonl", ".CSV"]))
def test_label_readers_fail_in_one_line(content, suffix):
    path = _write(content, suffix)
    try:
        examples = read_examples(path)
    except DataError as err:
        _one_line(err, path)
    else:
        assert len(examples.texts) == len(examples.labels)
    finally:
        _clean(path)


@FUZZ
@given(
    table_bytes(),
    st.sampled_from([".csv", ".tsv", ".jsonl", ".txt"]),
    st.sampled_from(["score", "label"]),
)
def test_pair_readers_fail_in_one_line(content, suffix, target):
    path = _write(content, suffix)
    try:
        pairs = read_pairs(path, PairDataConfig(data=str(path), target=target))
    except DataError as err:
        _one_line(err, path)
    else:
        assert len(pairs.texts_a) == len(pairs.texts_b)
    finally:
        _clean(path)


@st.composite
def label_folder(draw) -> dict[str, list[bytes]]:
    names = st.sampled_from(["pos", "neg", ".hidden", "a b", "é"])
    files = st.lists(st.one_of(st.binary(max_size=40), FIELD.map(str.encode)), max_size=3)
    return draw(st.dictionaries(names, files, max_size=3))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(label_folder())
def test_folder_reader_fails_in_one_line(classes):
    root = Path(tempfile.mkdtemp(prefix="fuzzdir"))
    for label, files in classes.items():
        (root / label).mkdir()
        for i, data in enumerate(files):
            (root / label / f"{i}.txt").write_bytes(data)
    try:
        read_examples(root)
    except DataError as err:
        message = str(err)
        assert "\n" not in message, message
        assert root.name in message, message
    finally:
        _clean(root)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["train", "dev", "test"]), table_bytes(), min_size=1))
def test_pair_split_folders_fail_in_one_line(splits):
    root = Path(tempfile.mkdtemp(prefix="fuzzsplits"))
    for name, content in splits.items():
        (root / f"{name}.tsv").write_bytes(content)
    try:
        load_pair_splits(PairDataConfig(data=str(root)))
    except DataError as err:
        message = str(err)
        assert "\n" not in message, message
        assert root.name in message, message
    finally:
        _clean(root)
