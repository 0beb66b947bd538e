import json

import numpy as np
import pytest

from semalign.errors import RunError
from semalign.tracking import (
    MetricsLog,
    NoopTracker,
    TensorBoardTracker,
    Tracker,
    make_tracker,
    read_metrics,
)


def _load_events(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_tensorboard_tracker_round_trip(tmp_path):
    log_dir = tmp_path / "events"
    image = np.zeros((12, 20, 3), dtype=np.uint8)
    image[..., 0] = 255
    vocab = ["[PAD]", "the", "a\tb", "line\nbreak", ""]
    matrix = np.arange(15, dtype=np.float64).reshape(5, 3)
    with TensorBoardTracker(log_dir) as tracker:
        assert isinstance(tracker, Tracker)
        tracker.scalars(1, {"train/loss": 0.5, "train/accuracy": np.float32(0.25)})
        tracker.scalars(2, {"train/loss": 0.25})
        tracker.image("attention/layer0", 2, image)
        tracker.embedding("token_embeddings", 2, matrix, vocab)
        tracker.text("config", 0, "scoring: **dot**")
        tracker.flush()

    acc = _load_events(log_dir)
    loss = acc.Scalars("train/loss")
    assert [(e.step, e.value) for e in loss] == [(1, 0.5), (2, 0.25)]
    assert [(e.step, e.value) for e in acc.Scalars("train/accuracy")] == [(1, 0.25)]
    assert "attention/layer0" in acc.Tags()["images"]
    (img,) = acc.Images("attention/layer0")
    assert (img.step, img.width, img.height) == (2, 20, 12)

    pbtxt = (log_dir / "projector_config.pbtxt").read_text()
    assert 'tensor_name: "token_embeddings:00002"' in pbtxt
    emb_dir = log_dir / "00002" / "token_embeddings"
    assert 'metadata_path: "00002/token_embeddings/metadata.tsv"' in pbtxt
    metadata = (emb_dir / "metadata.tsv").read_text(encoding="utf-8").splitlines()
    assert metadata == ["[PAD]", "the", "a\\tb", "line\\nbreak", "''"]
    rows = [
        [float(x) for x in line.split("\t")]
        for line in (emb_dir / "tensors.tsv").read_text().splitlines()
    ]
    np.testing.assert_array_equal(np.array(rows), matrix)


def test_tensorboard_tracker_validates(tmp_path):
    tracker = TensorBoardTracker(tmp_path)
    try:
        with pytest.raises(ValueError, match=r"must be \[height, width, 3\] uint8, got shape"):
            tracker.image("x", 0, np.zeros((4, 4, 3), dtype=np.float32))
        with pytest.raises(ValueError, match=r"got shape \(4, 4\)"):
            tracker.image("x", 0, np.zeros((4, 4), dtype=np.uint8))
        with pytest.raises(ValueError, match=r"must be \[n, dim\], got shape \(3,\)"):
            tracker.embedding("e", 0, np.zeros(3), ["a", "b", "c"])
        with pytest.raises(ValueError, match="has 3 rows but 2 metadata labels"):
            tracker.embedding("e", 0, np.zeros((3, 2)), ["a", "b"])
    finally:
        tracker.close()
    assert not (tmp_path / "projector_config.pbtxt").exists()


def test_noop_tracker_writes_nothing(tmp_path):
    tracker = make_tracker(tmp_path / "events", enabled=False)
    assert isinstance(tracker, NoopTracker)
    assert isinstance(tracker, Tracker)
    tracker.scalars(0, {"a": 1.0})
    tracker.image("i", 0, np.zeros((2, 2, 3), np.uint8))
    tracker.embedding("e", 0, np.zeros((1, 2)), ["x"])
    tracker.text("t", 0, "x")
    tracker.flush()
    tracker.close()
    assert list(tmp_path.iterdir()) == []


def test_make_tracker_enabled(tmp_path):
    tracker = make_tracker(tmp_path / "events", enabled=True)
    try:
        assert isinstance(tracker, TensorBoardTracker)
        assert (tmp_path / "events").is_dir()
    finally:
        tracker.close()


def test_metrics_log_round_trip(tmp_path):
    path = tmp_path / "metrics.jsonl"
    log = MetricsLog(str(path))
    assert log.path == path
    log.append({"step": 1, "eval/accuracy": np.float32(0.5), "split": "valid"})
    assert read_metrics(path) == [{"step": 1, "eval/accuracy": 0.5, "split": "valid"}]
    log.append({"step": 2, "eval/loss": float("nan"), "per_class": np.array([1, 2])})
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0])["step"] == 1
    records = read_metrics(path)
    assert records[1]["step"] == 2 and records[1]["per_class"] == [1, 2]
    assert np.isnan(records[1]["eval/loss"])


def test_metrics_log_bad_value_writes_nothing(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    with pytest.raises(TypeError):
        log.append({"x": object()})
    assert not log.path.exists()


def test_metrics_log_missing_folder(tmp_path):
    with pytest.raises(RunError, match="folder '.*nope' does not exist"):
        MetricsLog(tmp_path / "nope" / "metrics.jsonl").append({"step": 0})


def test_read_metrics_errors(tmp_path):
    path = tmp_path / "metrics.jsonl"
    with pytest.raises(RunError, match=r"^missing metrics file '.*metrics\.jsonl'"):
        read_metrics(path)
    path.write_text('{"step": 1}\n\n{"step": 2\n')
    with pytest.raises(RunError, match=r"corrupt metrics file '.*' \(line 3, column"):
        read_metrics(path)
    path.write_text('{"step": 1}\n[1, 2]\n')
    with pytest.raises(RunError, match=r"line 2 is a list, expected a JSON object"):
        read_metrics(path)
    path.write_text('{"step": 1}\n\n  \n{"step": 2}\n')
    assert read_metrics(path) == [{"step": 1}, {"step": 2}]
