import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from semalign.errors import RunError, SemalignError
from semalign.runs import (
    DEFAULT_REQUIRE,
    RunPaths,
    create_run,
    default_run_name,
    newest_run,
    open_run,
    read_json,
    resolve_run,
    write_json,
)


def _complete_run(runs_dir: Path, name: str, mtime: float | None = None) -> RunPaths:
    run = create_run(runs_dir, name)
    write_json(run.config, {"name": name})
    write_json(run.tokenizer, {})
    write_json(run.labels, ["neg", "pos"])
    (run.checkpoints / "0").mkdir()
    if mtime is not None:
        os.utime(run.config, (mtime, mtime))
    return run


def test_run_paths_layout():
    run = RunPaths("runs/x")
    assert run.root == Path("runs/x")
    assert run.name == "x"
    assert run.config == Path("runs/x/config.json")
    assert run.tokenizer == Path("runs/x/tokenizer.json")
    assert run.labels == Path("runs/x/labels.json")
    assert run.checkpoints == Path("runs/x/checkpoints")
    assert run.events == Path("runs/x/events")
    assert run.metrics == Path("runs/x/metrics.jsonl")
    assert run.onnx == Path("runs/x/model.onnx")
    assert run.export_report == Path("runs/x/export.json")
    assert run.state == Path("runs/x/train_state.json")
    with pytest.raises(AttributeError):
        run.root = Path("y")  # frozen


def test_missing_rejects_unknown_piece(tmp_path):
    with pytest.raises(ValueError, match="unknown run piece 'weights'"):
        RunPaths(tmp_path).missing(["weights"])


def test_create_run_makes_folders(tmp_path):
    run = create_run(tmp_path / "runs", "a")
    assert run.root == tmp_path / "runs" / "a"
    assert run.checkpoints.is_dir() and run.events.is_dir()


def test_create_run_reuses_empty_folder(tmp_path):
    (tmp_path / "a").mkdir()
    run = create_run(tmp_path, "a")
    assert run.checkpoints.is_dir()


def test_create_run_refuses_existing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = create_run("runs", "x")
    write_json(run.config, {})
    with pytest.raises(RunError) as info:
        create_run("runs", "x")
    assert str(info.value) == (
        "run 'runs/x' already exists: pass --overwrite to replace it or --name to pick another"
    )
    assert run.config.is_file()  # untouched


def test_create_run_overwrite_replaces(tmp_path):
    run = create_run(tmp_path, "x")
    write_json(run.config, {})
    (run.checkpoints / "old").mkdir()
    again = create_run(tmp_path, "x", overwrite=True)
    assert again == run
    assert not run.config.exists()
    assert list(run.checkpoints.iterdir()) == []
    assert run.events.is_dir()


def test_create_run_refuses_file(tmp_path):
    (tmp_path / "x").write_text("not a folder")
    with pytest.raises(RunError, match="exists and is not a folder"):
        create_run(tmp_path, "x", overwrite=True)


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("", "run name is empty"),
        ("  ", "run name is empty"),
        ("a/b", "contains a path separator"),
        ("a\\b", "contains a path separator"),
        (".hidden", "starts with a dot"),
        ("..", "starts with a dot"),
    ],
)
def test_create_run_validates_name(tmp_path, name, match):
    with pytest.raises(RunError, match=match):
        create_run(tmp_path, name)
    assert list(tmp_path.iterdir()) == []


def test_default_run_name():
    now = datetime(2026, 11, 22, 0, 15, 30)
    assert default_run_name("imdb", "dot", now=now) == "imdb-dot-20261122-001530"
    assert default_run_name("My Data!", "diff-transformer", now=now) == (
        "my-data-diff-transformer-20261122-001530"
    )
    assert default_run_name("data/reviews.csv", "l2", now=now) == (
        "data-reviews.csv-l2-20261122-001530"
    )
    assert default_run_name("///", ".", now=now) == "data-scoring-20261122-001530"
    long = default_run_name("x" * 100, "dot", now=now)
    assert long == "x" * 40 + "-dot-20261122-001530"


def test_default_run_name_is_a_valid_run_name(tmp_path):
    name = default_run_name("../weird\\path/ name", "Cosine", now=datetime(2026, 1, 2, 3, 4, 5))
    assert create_run(tmp_path, name).root.parent == tmp_path


def test_default_run_name_uses_now():
    name = default_run_name("imdb", "dot")
    stamp = datetime.strptime(name.removeprefix("imdb-dot-"), "%Y%m%d-%H%M%S")
    assert abs((datetime.now() - stamp).total_seconds()) < 60


def test_open_run_complete(tmp_path):
    run = _complete_run(tmp_path, "a")
    assert open_run(run.root) == run
    assert open_run(str(run.root)) == run


def test_open_run_missing_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RunError, match=r"^no run at 'runs/nope' \(no such folder\): pass --run"):
        open_run("runs/nope")
    (tmp_path / "f").write_text("")
    with pytest.raises(RunError, match=r"no run at 'f' \(it is a file"):
        open_run("f")


def test_open_run_incomplete_names_missing_pieces(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = create_run("runs", "x")
    write_json(run.config, {})
    with pytest.raises(RunError) as info:
        open_run(run.root)
    assert str(info.value) == (
        "run 'runs/x' is incomplete (missing tokenizer.json, labels.json, checkpoints/ (empty)): "
        "retrain it or pick another with --run"
    )


def test_open_run_checkpoints_must_be_non_empty(tmp_path):
    run = _complete_run(tmp_path, "x")
    (run.checkpoints / "0").rmdir()
    assert run.missing() == ["checkpoints/ (empty)"]
    (run.checkpoints / "0").mkdir()
    assert run.missing() == []
    (run.checkpoints / "0").rmdir()
    run.checkpoints.rmdir()
    assert run.missing() == ["checkpoints/"]


def test_open_run_custom_require(tmp_path):
    run = create_run(tmp_path, "x")
    write_json(run.config, {})
    assert open_run(run.root, require=("config",)) == run
    with pytest.raises(RunError, match=r"missing model.onnx\)"):
        open_run(run.root, require=("config", "onnx"))
    assert DEFAULT_REQUIRE == ("config", "tokenizer", "labels", "checkpoints")


def test_newest_run_by_config_mtime(tmp_path):
    _complete_run(tmp_path, "b-older", mtime=1_000_000)
    newest = _complete_run(tmp_path, "a-newer", mtime=2_000_000)
    _complete_run(tmp_path, "c-middle", mtime=1_500_000)
    (tmp_path / "no-config").mkdir()
    (tmp_path / "stray.txt").write_text("")
    assert newest_run(tmp_path) == newest


def test_newest_run_none(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    msg = "no run found under 'runs': train one with `semalign train`"
    with pytest.raises(RunError, match=f"^{msg}"):
        newest_run()  # runs/ does not exist
    (tmp_path / "runs" / "empty").mkdir(parents=True)
    with pytest.raises(RunError, match=f"^{msg}"):
        newest_run("runs")


def test_resolve_run_explicit_and_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    old = _complete_run(Path("runs"), "old", mtime=1_000_000)
    new = _complete_run(Path("runs"), "new", mtime=2_000_000)
    assert resolve_run(None) == new
    assert resolve_run(old.root) == old
    assert resolve_run(str(old.root)) == old
    other = _complete_run(tmp_path / "elsewhere", "r")
    assert resolve_run(None, runs_dir=tmp_path / "elsewhere") == other


def test_resolve_run_newest_incomplete(tmp_path):
    _complete_run(tmp_path, "ok", mtime=1_000_000)
    broken = create_run(tmp_path, "broken")
    write_json(broken.config, {})
    os.utime(broken.config, (2_000_000, 2_000_000))
    with pytest.raises(RunError, match="is incomplete"):
        resolve_run(None, runs_dir=tmp_path)
    assert resolve_run(None, runs_dir=tmp_path, require=("config",)) == broken


def test_write_json_round_trip_and_format(tmp_path):
    obj = {"z": 1, "a": [1.5, "é"], "path": Path("x/y"), "n": np.float32(0.5), "v": np.arange(2)}
    path = write_json(tmp_path / "c.json", obj)
    assert path == tmp_path / "c.json"
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n")
    assert text.index('"z"') < text.index('"a"')  # insertion order kept
    assert '\n  "z": 1,' in text  # indent=2
    assert "é" in text
    assert read_json(path) == {"z": 1, "a": [1.5, "é"], "path": "x/y", "n": 0.5, "v": [0, 1]}
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]  # no temp file left


def test_write_json_replaces_and_keeps_old_on_error(tmp_path):
    path = tmp_path / "c.json"
    write_json(path, {"v": 1})
    write_json(path, {"v": 2})
    assert read_json(path) == {"v": 2}
    with pytest.raises(TypeError, match="not JSON serializable"):
        write_json(path, {"v": object()})
    assert read_json(path) == {"v": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]


def test_write_json_honours_umask(tmp_path):
    path = write_json(tmp_path / "c.json", {})
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_write_json_missing_folder(tmp_path):
    with pytest.raises(RunError, match=r"cannot write '.*c\.json': folder '.*nope' does not exist"):
        write_json(tmp_path / "nope" / "c.json", {})


def test_read_json_missing(tmp_path):
    path = tmp_path / "config.json"
    with pytest.raises(RunError, match=r"^missing file '.*config\.json': the run is incomplete"):
        read_json(path)


def test_read_json_corrupt(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{\n  "a": 1,\n  oops\n}')
    with pytest.raises(RunError) as info:
        read_json(path)
    msg = str(info.value)
    assert msg.startswith(f"corrupt JSON in '{path}' (line 3, column 3:")
    assert "\n" not in msg
    path.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(RunError, match="not UTF-8 at byte 7"):
        read_json(path)
    with pytest.raises(RunError, match="it is a folder"):
        read_json(tmp_path)


def test_errors_are_value_errors():
    assert issubclass(RunError, SemalignError) and issubclass(RunError, ValueError)


def test_ground_modules_import_nothing_heavy():
    code = (
        "import sys, json; import semalign.runs, semalign.tracking, semalign.tracking.plotting; "
        "print(json.dumps([m for m in ('jax', 'flax', 'matplotlib', 'tensorboardX', "
        "'tensorboard', 'orbax') if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == []
