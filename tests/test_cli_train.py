"""`semalign train` / `evaluate` from the command line: happy path and every bad input."""

import json

import pytest
from test_train import write_dataset
from typer.testing import CliRunner

from semalign.cli import app
from semalign.testing import tiny_args

runner = CliRunner()
SMALL = tiny_args(epochs=1, more=("--no-tensorboard",))


def one_line_error(result, *needles):
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    lines = result.output.rstrip("\n").splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error:"), lines[0]
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = write_dataset(root / "d.csv", n=64)
    r = runner.invoke(
        app,
        [
            "train",
            "--data",
            str(data),
            "--name",
            "r1",
            "--runs-dir",
            str(root / "runs"),
            "--json",
            *SMALL,
        ],
    )
    assert r.exit_code == 0, r.output
    return root, data, json.loads(r.output)


def test_train_json_and_evaluate_json(workdir):
    root, data, result = workdir
    assert result["finished"] and 0 <= result["test"]["accuracy"] <= 1
    r = runner.invoke(app, ["evaluate", "--runs-dir", str(root / "runs"), "--json"])
    assert r.exit_code == 0, r.output
    ev = json.loads(r.output)
    assert ev["report"]["accuracy"] == pytest.approx(result["test"]["accuracy"])
    r = runner.invoke(app, ["evaluate", "--run", result["run"]])
    assert r.exit_code == 0 and "macro F1" in r.output and "confusion" in r.output


def test_existing_run_refused_and_untouched(workdir):
    root, data, _ = workdir
    before = (root / "runs" / "r1" / "config.json").read_bytes()
    r = runner.invoke(
        app,
        ["train", "--data", str(data), "--name", "r1", "--runs-dir", str(root / "runs"), *SMALL],
    )
    one_line_error(r, "already exists", "--overwrite")
    assert (root / "runs" / "r1" / "config.json").read_bytes() == before


def test_bad_data_files(tmp_path):
    runs = ["--runs-dir", str(tmp_path / "runs")]
    one_line_error(
        runner.invoke(app, ["train", "--data", str(tmp_path / "nope.csv"), *runs, *SMALL]),
        "nope.csv",
    )
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    one_line_error(runner.invoke(app, ["train", "--data", str(empty), *runs, *SMALL]), "empty")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("text,label\ncaf\xe9 ok,pos\n".encode("latin-1"))
    one_line_error(runner.invoke(app, ["train", "--data", str(latin), *runs, *SMALL]), "UTF-8")
    cols = tmp_path / "cols.csv"
    cols.write_text("review,sentiment\ngood,pos\nbad,neg\n")
    one_line_error(
        runner.invoke(app, ["train", "--data", str(cols), *runs, *SMALL]), "review", "sentiment"
    )
    single = tmp_path / "single.csv"
    single.write_text("text,label\n" + "".join(f"text {i},pos\n" for i in range(20)))
    one_line_error(runner.invoke(app, ["train", "--data", str(single), *runs, *SMALL]), "pos")
    blank = tmp_path / "blank.csv"
    blank.write_text("text,label\ngood,pos\n   ,neg\n")
    one_line_error(runner.invoke(app, ["train", "--data", str(blank), *runs, *SMALL]), "row")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_unseen_label_at_evaluate(workdir, tmp_path):
    root, _, result = workdir
    other = tmp_path / "other.csv"
    other.write_text("text,label\ngreat film,pos\nso so,meh\n")
    one_line_error(
        runner.invoke(app, ["evaluate", "--run", result["run"], "--data", str(other)]), "'meh'"
    )


def test_resume_with_nothing_and_no_run(tmp_path):
    one_line_error(
        runner.invoke(app, ["train", "--resume", "--runs-dir", str(tmp_path), *SMALL]),
        "semalign train",
    )
    one_line_error(runner.invoke(app, ["evaluate", "--runs-dir", str(tmp_path)]), "semalign train")


def test_bad_options(tmp_path):
    data = write_dataset(tmp_path / "d.csv", n=32)
    runs = ["--runs-dir", str(tmp_path / "runs"), "--data", str(data)]
    one_line_error(
        runner.invoke(app, ["train", *runs, *SMALL, "--scoring", "cosin"]), "'cosin'", "cosine"
    )
    one_line_error(runner.invoke(app, ["train", *runs, *SMALL, "--heads", "3"]), "heads=3")
    one_line_error(runner.invoke(app, ["train", *runs, *SMALL, "--window", "x"]), "--window")
    one_line_error(
        runner.invoke(app, ["train", *runs, *SMALL, "--bigram-buckets", "-1"]), "bigram_buckets"
    )
    big = [*SMALL, "--bigram-buckets", "8", "--vocab-size", "50000"]
    one_line_error(runner.invoke(app, ["train", *runs, *big]), "vocab_size <= 46340")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
