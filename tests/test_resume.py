"""Resume keeps its plan: the saved config wins, only typed options change it."""

import json

import pytest
from test_cli_train import one_line_error
from typer.testing import CliRunner

from semalign.cli import app
from semalign.config import TrainConfig
from semalign.errors import RunError
from semalign.testing import tiny_args, tiny_request, write_reviews_csv
from semalign.workflows.reporting import SilentReporter
from semalign.workflows.train import TrainRequest, train

runner = CliRunner()
TINY = tiny_args(more=("--no-tensorboard",))


class Messages(SilentReporter):
    def __init__(self):
        self.lines = []

    def message(self, text):
        self.lines.append(text)


def _cli(*args):
    result = runner.invoke(app, ["train", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output[result.output.index("{") :])


def test_cli_resume_keeps_the_saved_epochs_and_typed_options_change_them(tmp_path):
    data = write_reviews_csv(tmp_path / "d.csv", n=64)
    runs = ["--runs-dir", str(tmp_path / "runs")]
    part = _cli(
        "--data", str(data), *TINY, *runs, "--name", "part", "--epochs", "2", "--stop-after", "1"
    )
    assert part["epochs_done"] == 1 and not part["finished"]
    # The README's example: no options on resume -> the saved 2 epochs, not the CLI's 3.
    again = _cli("--resume", "--name", "part", *runs, "--patience", "0")
    assert again["epochs_done"] == 2 and again["finished"]
    config = json.loads((tmp_path / "runs" / "part" / "config.json").read_text())
    assert config["train"]["epochs"] == 2 and config["train"]["patience"] == 0
    more = _cli("--resume", "--name", "part", *runs, "--epochs", "3")
    assert more["epochs_done"] == 3
    config = json.loads((tmp_path / "runs" / "part" / "config.json").read_text())
    assert config["train"]["epochs"] == 3 and config["model"]["dim"] == 16
    fixed = runner.invoke(app, ["train", "--resume", "--name", "part", *runs, "--dim", "32"])
    one_line_error(fixed, "--dim cannot change on --resume")


def test_resume_trains_the_remaining_planned_epochs_and_says_what_changed(tmp_path):
    data = write_reviews_csv(tmp_path / "d.csv", n=64)
    runs = tmp_path / "runs"
    part = train(tiny_request(data, runs, name="six", train={"epochs": 6}, stop_after=4))
    assert part.epochs_done == 4
    said = Messages()
    again = train(TrainRequest(resume=str(part.run), tensorboard=False), said)
    assert again.epochs_done == 6 and again.finished
    assert "the saved plan, unchanged" in said.lines[0]
    lines = [json.loads(x) for x in (part.run / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines if x["split"] == "validation"] == [1, 2, 3, 4, 5, 6]
    with pytest.raises(ValueError, match="overrides="):
        train(TrainRequest(resume=str(part.run), train=TrainConfig(epochs=9)))


def test_early_stopping_counters_survive_a_resume(tmp_path):
    data = write_reviews_csv(tmp_path / "d.csv", n=64)
    part = train(
        tiny_request(
            data, tmp_path / "runs", name="es", train={"epochs": 5, "patience": 2}, stop_after=1
        )
    )
    state_path = part.run / "train_state.json"
    state = json.loads(state_path.read_text())
    assert state["bad_epochs"] == 0 and state["best_epoch"] == 1
    # One bad epoch already counted and an unbeatable best: the next epoch must stop.
    state |= {"bad_epochs": 1, "best_metric": 2.0}
    state_path.write_text(json.dumps(state))
    again = train(TrainRequest(resume=str(part.run), tensorboard=False))
    assert again.stopped_early and again.epochs_done == 2 and again.best_epoch == 1
    assert json.loads(state_path.read_text())["bad_epochs"] == 2
    with pytest.raises(RunError, match="stopped early after epoch 2"):
        train(TrainRequest(resume=str(part.run), tensorboard=False))
    said = Messages()
    more = train(
        TrainRequest(resume=str(part.run), overrides={"patience": 0}, tensorboard=False), said
    )
    assert more.epochs_done == 5 and not more.stopped_early
    assert "changed: patience 2 -> 0" in said.lines[0]
