"""`semalign compare` and `semalign runs`: a tiny study, checked against its run folders."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_cli_train import SMALL, one_line_error
from typer.testing import CliRunner

from semalign.cli import app
from semalign.testing import write_reviews_csv

runner = CliRunner()
SCORINGS = ("dot", "cosine")
SEEDS = (0, 1)
FIXTURES = Path(__file__).parent / "fixtures" / "runs-v0.1.0"


def lines_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def served_numbers(run: Path, test_key: str) -> dict:
    """Read straight from metrics.jsonl: the served epoch's val_score, the test metric."""
    lines = lines_of(run / "metrics.jsonl")
    test = [r for r in lines if r["split"] == "test"][-1]
    val = [r for r in lines if r["split"] == "validation" and r["epoch"] == test["epoch"]][-1]
    timed = [r for r in lines if r["split"] == "validation"]
    secs = np.array([r["epoch_seconds"] for r in timed])
    speed = np.array([r["tokens_per_second"] for r in timed])
    return {
        "validation": val["val_score"],
        "test": test[test_key],
        "tokens_per_second": float((secs * speed).sum() / secs.sum()),
    }


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    data = write_reviews_csv(root / "d.csv", n=64)
    args = [
        "compare",
        "--data",
        str(data),
        "--scoring",
        ",".join(SCORINGS),
        "--seeds",
        str(len(SEEDS)),
        "--study",
        "s",
        "--runs-dir",
        str(root / "runs"),
        *SMALL,
    ]
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    return root, args, json.loads(r.stdout)


def test_table_equals_an_independent_computation(study):
    root, _, out = study
    folder = root / "runs" / "s"
    assert out["metric"] == "accuracy" and out["higher_is_better"] is True
    assert [row["scoring"] for row in out["table"]] == list(SCORINGS)
    means = {}
    for row in out["table"]:
        runs = [served_numbers(folder / f"{row['scoring']}-s{s}", "accuracy") for s in SEEDS]
        for key in ("validation", "test"):
            values = np.array([r[key] for r in runs])
            assert row[f"{key}_mean"] == pytest.approx(values.mean(), abs=1e-12)
            assert row[f"{key}_std"] == pytest.approx(values.std(ddof=1), abs=1e-12)
        speed = np.mean([r["tokens_per_second"] for r in runs])
        assert row["tokens_per_second"] == pytest.approx(speed, rel=1e-9)
        assert row["seeds"] == len(SEEDS) and row["wall_seconds"] > 0
        means[row["scoring"]] = np.mean([r["validation"] for r in runs])
    # Chosen on validation (first of equals), never on test.
    best = max(SCORINGS, key=lambda s: (means[s], -SCORINGS.index(s)))
    assert out["best"] == best
    assert [row["scoring"] for row in out["table"] if row["best"]] == [best]
    assert json.loads((folder / "study.json").read_text())["table"] == out["table"]


def test_parameter_count_matches_the_loaded_weights(study):
    import jax
    from flax import nnx

    from semalign.workflows.loading import load_run

    root, _, out = study
    for row in out["table"]:
        model = load_run(root / "runs" / "s" / f"{row['scoring']}-s0").model
        weights = jax.tree.leaves(nnx.state(model, nnx.Param))
        assert row["parameters"] == sum(np.asarray(w).size for w in weights)


def test_png_and_offline_html(study):
    _, _, out = study
    png, page = Path(out["files"]["png"]), Path(out["files"]["html"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = page.read_text(encoding="utf-8")
    for scoring in SCORINGS:
        assert f"<td>{scoring}" in html
    assert "data:image/png;base64," in html
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html and "<link" not in html


def test_rerun_skips_finished_runs(study):
    root, args, out = study
    folder = root / "runs" / "s"
    runs = [folder / f"{s}-s{seed}" for s in SCORINGS for seed in SEEDS]
    before = {r: (r / "metrics.jsonl").stat().st_mtime_ns for r in runs}
    pointers = {r: (r / "checkpoints" / "pointers.json").read_bytes() for r in runs}
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert r.output.count("skipped") >= len(runs) and "trained" not in r.output
    for run in runs:
        assert (run / "metrics.jsonl").stat().st_mtime_ns == before[run]
        assert (run / "checkpoints" / "pointers.json").read_bytes() == pointers[run]
    again = json.loads((folder / "study.json").read_text())
    assert again["table"] == out["table"]  # wall times are kept for skipped runs
    assert {run["action"] for run in again["runs"]} == {"skipped"}


def test_runs_lists_the_study(study):
    root, _, _ = study
    r = runner.invoke(app, ["runs", str(root / "runs"), "--json"])
    assert r.exit_code == 0, r.output
    listed = {row["name"]: row for row in json.loads(r.stdout)["runs"]}
    assert set(listed) == {f"s/{s}-s{seed}" for s in SCORINGS for seed in SEEDS}
    for name, row in listed.items():
        want = served_numbers(root / "runs" / name, "accuracy")
        assert row["validation"] == pytest.approx(want["validation"], abs=1e-12)
        assert row["test"] == pytest.approx(want["test"], abs=1e-12)
        assert (row["task"], row["metric"], row["scoring"]) == (
            "classification",
            "accuracy",
            name.split("/")[1].split("-s")[0],
        )
        assert (row["epochs_done"], row["epochs_planned"], row["finished"]) == (1, 1, True)
    r = runner.invoke(app, ["runs", str(root / "runs")])
    assert r.exit_code == 0 and "dot-s0" in r.output and "accuracy" in r.output


def test_runs_lists_old_run_folders():
    from semalign import tasks

    r = runner.invoke(app, ["runs", str(FIXTURES), "--json"])
    assert r.exit_code == 0, r.output
    listed = {row["name"]: row for row in json.loads(r.stdout)["runs"]}
    assert set(listed) == {"classification", "similarity", "pair-classification"}
    for name, row in listed.items():
        config = json.loads((FIXTURES / name / "config.json").read_text())
        spec = tasks.get(config["task"])
        want = served_numbers(FIXTURES / name, spec.test_key or spec.metric)
        assert row["version"] == "0.1.0" and row["metric"] == spec.metric
        assert row["validation"] == pytest.approx(want["validation"], abs=1e-12)
        assert row["test"] == pytest.approx(want["test"], abs=1e-12)
        assert (row["epochs_done"], row["epochs_planned"]) == (1, config["train"]["epochs"])


def test_runs_does_not_import_jax():
    code = (
        "import sys\nfrom semalign.cli import app\n"
        f"try:\n    app(['runs', {str(FIXTURES)!r}])\nexcept SystemExit:\n    pass\n"
        "assert 'jax' not in sys.modules and 'flax' not in sys.modules\nprint('OK')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr


def test_compare_takes_every_train_option():
    import typer.main

    from semalign.cli.compare import NOT_PASSED

    def params(name):
        command = typer.main.get_command(app).commands[name]
        return {p.name: p for p in command.params}

    train, compare = params("train"), params("compare")
    for name, p in train.items():
        if name in NOT_PASSED:
            continue
        assert name in compare, name
        assert (compare[name].opts, compare[name].default, compare[name].help) == (
            p.opts,
            p.default,
            p.help,
        )


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--scoring", "dot,cosin"], ["cosin", "Did you mean 'cosine'"]),
        (["--scoring", "dot,dot"], ["repeats"]),
        (["--seeds", "0"], ["--seeds", "at least 1"]),
    ],
)
def test_bad_input_is_one_line(tmp_path, extra, needles):
    data = write_reviews_csv(tmp_path / "d.csv", n=16)
    r = runner.invoke(
        app, ["compare", "--data", str(data), "--runs-dir", str(tmp_path), *SMALL, *extra]
    )
    one_line_error(r, *needles)
    assert not any(tmp_path.glob("*/*/config.json"))


def test_a_study_with_other_settings_is_refused(study):
    root, args, _ = study
    r = runner.invoke(app, [*args[: args.index("--epochs")], "--epochs", "2"])
    one_line_error(r, "other settings", "epochs=1", "--study")


def test_a_folder_of_runs_that_is_no_study_is_refused(tmp_path):
    (tmp_path / "mine" / "r1").mkdir(parents=True)
    (tmp_path / "mine" / "r1" / "config.json").write_text("{}")
    data = write_reviews_csv(tmp_path / "d.csv", n=16)
    r = runner.invoke(
        app,
        ["compare", "--data", str(data), "--runs-dir", str(tmp_path), "--study", "mine", *SMALL],
    )
    one_line_error(r, "not a study", "--study")


def test_runs_of_a_missing_folder_is_one_line(tmp_path):
    one_line_error(runner.invoke(app, ["runs", str(tmp_path / "nope")]), "no such folder")


def test_unfinished_runs_resume_and_empty_ones_retrain(tmp_path):
    from semalign.runs import RunPaths
    from semalign.workflows.compare import _state_of

    data = write_reviews_csv(tmp_path / "d.csv", n=48)
    args = ["compare", "--data", str(data), "--runs-dir", str(tmp_path), "--study", "s"]
    args += ["--scoring", "dot", "--seeds", "1", *SMALL[:-3], "--epochs", "2", "--no-tensorboard"]
    r = runner.invoke(app, [*args, "--stop-after", "1", "--json"])
    assert r.exit_code == 0, r.output
    first = json.loads(r.stdout)
    assert first["runs"][0]["finished"] is False and first["table"][0]["seeds"] == 0
    run = tmp_path / "s" / "dot-s0"
    assert _state_of(RunPaths(run))[0] == "resumed"
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "resumed" in r.output and "after epoch 1" in r.output
    done = json.loads((tmp_path / "s" / "study.json").read_text())
    assert done["runs"][0]["epochs_done"] == 2 and done["runs"][0]["finished"]
    assert [e for e, _ in done["runs"][0]["curve"]] == [1, 2]
    # A folder left before any epoch finished is trained again, not resumed.
    empty = RunPaths(tmp_path / "s" / "dot-s9")
    empty.checkpoints.mkdir(parents=True)
    assert _state_of(empty)[0] == "retrained"
    assert _state_of(RunPaths(tmp_path / "s" / "dot-s8"))[0] == "trained"
    assert _state_of(RunPaths(run))[0] == "skipped"
