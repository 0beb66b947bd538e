"""Evaluation knows its data: data.json, refused changed splits, notes for older runs."""

import json

import pytest
from pair_data import write_pairs
from test_cli_train import one_line_error
from typer.testing import CliRunner

from semalign.cli import app
from semalign.config import TrainConfig
from semalign.data.fingerprint import check_fingerprint, example_rows, fingerprint
from semalign.data.pairs import PairDataConfig
from semalign.errors import DataError
from semalign.testing import tiny_request, write_reviews_csv
from semalign.workflows.evaluate import EvaluationRequest, evaluate
from semalign.workflows.train import TrainRequest, train


def test_fingerprint_changes_with_any_row_and_names_the_split():
    from semalign.data import Examples

    ex = Examples(texts=("a b", "c"), labels=("x", "y"))
    assert example_rows(ex) == ['["a b", "x"]', '["c", "y"]']
    base = fingerprint("f.csv", None, {"test": example_rows(ex)})
    swapped = fingerprint("f.csv", None, {"test": example_rows(ex)[::-1]})
    assert base["splits"]["test"]["rows"] == 2
    assert base["splits"]["test"]["sha256"] != swapped["splits"]["test"]["sha256"]
    with pytest.raises(DataError, match=r"test split is not the run's \(2 rows, not the same"):
        check_fingerprint(base, swapped, splits=("test",), run="r", action="retrain")
    assert check_fingerprint(base, base, splits=("test",), run="r", action="x") == []
    assert "no data.json" in check_fingerprint(None, base, splits=("test",), run="r", action="")[0]


@pytest.fixture(scope="module")
def classification(tmp_path_factory):
    root = tmp_path_factory.mktemp("prov")
    data = write_reviews_csv(root / "d.csv", n=120)
    part = train(tiny_request(data, root / "runs", name="c", stop_after=1, tensorboard=False))
    return part.run, data


def test_appended_rows_are_refused_for_the_runs_split_and_resume(classification):
    run, data = classification
    saved = json.loads((run / "data.json").read_text())
    assert saved["source"] == str(data) and len(saved["sha256"]) == 64
    assert {k: v["rows"] for k, v in saved["splits"].items()} == {
        "train": 96,
        "validation": 12,
        "test": 12,
    }
    before = evaluate(EvaluationRequest(run=str(run)))
    assert before.notes == () and before.report.count == 12
    text = data.read_text()
    extra = write_reviews_csv(data.with_name("extra.csv"), n=60, seed=5).read_text()
    try:
        data.write_text(text + extra.split("\n", 1)[1])
        with pytest.raises(DataError, match=r"d.csv' changed \(sha256 .*test split is not"):
            evaluate(EvaluationRequest(run=str(run)))
        cli = CliRunner().invoke(app, ["evaluate", "--run", str(run)])
        one_line_error(cli, "d.csv' changed", "test split is not the run's", "--data")
        # Explicit --data FILE: all rows of a file, as before.
        whole = evaluate(EvaluationRequest(run=str(run), data=str(data)))
        assert whole.split == "all" and whole.report.count == 180
        with pytest.raises(DataError, match="train split is not the run's"):
            train(TrainRequest(resume=str(run), tensorboard=False))
    finally:
        data.write_text(text)
    (run / "data.json").unlink()
    try:
        older = evaluate(EvaluationRequest(run=str(run)))
        assert older.report.count == 12 and "no data.json" in older.notes[0]
    finally:
        (run / "data.json").write_text(json.dumps(saved))


def test_pair_folder_checks_only_the_evaluated_split(tmp_path):
    folder = tmp_path / "pairs"
    folder.mkdir()
    for i, name in enumerate(("train", "dev", "test")):
        write_pairs(folder / f"{name}.tsv", n=40 if name == "train" else 16, seed=i)
    req = TrainRequest(
        task="similarity",
        data=PairDataConfig(data=str(folder), vocab_size=64, max_len=16, max_buckets=1),
        train=TrainConfig(epochs=1, batch_size=16),
        model={"dim": 16, "mlp_ratio": 1, "attention": {"heads": 2}},
        runs_dir=str(tmp_path / "runs"),
        name="sim",
        tensorboard=False,
    )
    run = train(req).run
    assert json.loads((run / "data.json").read_text())["splits"]["test"]["rows"] == 16
    write_pairs(folder / "train.tsv", n=41, seed=0)  # a changed training file ...
    ok = evaluate(EvaluationRequest(run=str(run)))  # ... leaves the test split the run's
    assert "but its test split is the run's" in ok.notes[0]
    write_pairs(folder / "test.tsv", n=16, seed=9)
    with pytest.raises(DataError, match=r"test split is not the run's \(16 rows, not the same"):
        evaluate(EvaluationRequest(run=str(run)))
