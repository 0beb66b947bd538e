"""Training end to end on a small synthetic dataset the test writes itself."""

import json

import jax
import numpy as np
import pytest
from flax import nnx

from semalign.testing import tiny_request, write_reviews_csv
from semalign.workflows.evaluate import EvaluationRequest, evaluate
from semalign.workflows.train import train


def write_dataset(path, n=160, seed=0):
    return write_reviews_csv(path, n=n, seed=seed)


def request(data, runs, **kw):
    return tiny_request(data, runs, **kw)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    data = write_dataset(root / "reviews.csv", n=240)
    result = train(request(data, root / "runs", name="base", train={"epochs": 5, "lr": 1e-2}))
    return result, data, root


def test_run_folder_is_complete(trained):
    result, _, _ = trained
    run = result.run
    for name in (
        "config.json",
        "tokenizer.json",
        "labels.json",
        "metrics.jsonl",
        "train_state.json",
    ):
        assert (run / name).is_file(), name
    pointers = json.loads((run / "checkpoints" / "pointers.json").read_text())
    assert set(pointers) == {"best", "last", "served"}
    assert pointers["served"] == pointers["best"] and result.served == "best"
    assert (run / "checkpoints" / pointers["best"] / "model").is_dir()
    assert json.loads((run / "labels.json").read_text()) == ["neg", "pos"]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["vocab_size"] <= 64 and cfg["data"]["max_len"] == 16


def test_learns_the_easy_task(trained):
    result, _, _ = trained
    lines = [json.loads(x) for x in (result.run / "metrics.jsonl").read_text().splitlines()]
    val = [x for x in lines if x["split"] == "validation"]
    assert len(val) == 5
    assert val[-1]["train_loss"] < val[0]["train_loss"]
    assert result.test is not None and result.test.accuracy >= 0.8
    assert result.test.count == 24  # 10 % of 240, nothing dropped by batching
    assert lines[-1]["split"] == "test"


def test_evaluate_reproduces_the_test_report(trained):
    result, data, root = trained
    ev = evaluate(EvaluationRequest(run=str(result.run)))
    assert ev.split == "test"
    assert ev.report.accuracy == pytest.approx(result.test.accuracy, abs=1e-12)
    assert ev.report.confusion == result.test.confusion
    whole = evaluate(EvaluationRequest(run=str(result.run), data=str(data)))
    assert whole.split == "all" and whole.report.count == 240


def test_tensorboard_events_read_back(trained):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result, _, _ = trained
    acc = EventAccumulator(str(result.run / "events"), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    tags = acc.Tags()
    for tag in (
        "val/accuracy",
        "val/loss",
        "train/lr",
        "train/grad_norm",
        "train/epoch_tokens_per_second",
        "train/loss",
    ):
        assert tag in tags["scalars"], tag
    assert [e.step for e in acc.Scalars("val/accuracy")] == sorted(
        e.step for e in acc.Scalars("val/accuracy")
    )
    assert len(acc.Scalars("val/accuracy")) == 5
    assert "attention/layer1_head1" in tags["images"]
    assert len(acc.Images("attention/layer1_head1")) == 5
    projector = list((result.run / "events").rglob("projector_config.pbtxt"))
    assert projector, "no embedding projector written"
    metadata = next((result.run / "events").rglob("metadata.tsv")).read_text().splitlines()
    from semalign.data import load_tokenizer

    vocab = load_tokenizer(result.run / "tokenizer.json").get_vocab()
    assert metadata == [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]


def _params(run):
    from semalign.workflows.loading import load_run

    loaded = load_run(run, which="last")
    return jax.tree.leaves(nnx.to_pure_dict(nnx.state(loaded.model, nnx.Param)))


def test_resume_continues_exactly(tmp_path):
    data = write_dataset(tmp_path / "d.csv", n=96, seed=1)
    full = train(request(data, tmp_path / "runs", name="full"))
    part = train(request(data, tmp_path / "runs", name="part", stop_after=1))
    assert not part.finished and part.epochs_done == 1
    again = train(request(data, tmp_path / "runs", resume=str(part.run)))
    assert again.finished and again.epochs_done == 2
    for a, b in zip(_params(full.run), _params(part.run), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)


def test_mixed_scorings_train(tmp_path):
    data = write_dataset(tmp_path / "d.csv", n=64)
    r = train(
        request(
            data, tmp_path / "runs", name="mix", scoring="l1,diff-transformer", train={"epochs": 1}
        )
    )
    assert r.finished
    # The reported test loss and accuracy, recomputed one text at a time (no padding, no
    # batching) from the served weights, with a float64 log-softmax written out here.
    from semalign import tasks
    from semalign.data import encode_texts
    from semalign.workflows.loading import load_run

    loaded = load_run(str(r.run))
    data = loaded.data_config
    test = tasks.get("classification").load().load_splits(data).test
    losses, correct = [], 0
    for text, label in zip(test.texts, test.labels, strict=True):
        ids = encode_texts(loaded.tokenizer, [text], max_len=data.max_len)[0]
        logits = np.asarray(loaded.model(ids[None]).logits[0], np.float64)
        shifted = logits - logits.max()
        log_p = shifted - np.log(np.exp(shifted).sum())
        target = loaded.labels.index(label)
        losses.append(-log_p[target])
        correct += int(np.argmax(logits) == target)
    assert r.test.count == len(test.texts)
    assert r.test.loss == pytest.approx(float(np.mean(losses)), abs=1e-5)
    assert r.test.accuracy == pytest.approx(correct / len(test.texts), abs=1e-12)


def test_batches_pad_to_lengths_fitted_to_the_training_rows(tmp_path):
    import csv
    import dataclasses

    from semalign.data import bucket_boundaries
    from semalign.workflows.reporting import SilentReporter

    class Recorder(SilentReporter):
        def start(self, info):
            self.info = info

    # Half the rows a few words long, half ~70: geometric lengths (32, 64, 96) pad them
    # to 32 and 96, two compilations; for ~100 rows a second compilation costs more than
    # the slots it saves, so the fitted lengths put every row in one bucket of 96.
    rng = np.random.default_rng(0)
    path = tmp_path / "two_lengths.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(96):
            label = ("pos", "neg")[i % 2]
            words = ["good" if label == "pos" else "bad"] + ["the", "film"] * (2 + 34 * (i % 4 < 2))
            w.writerow([" ".join(rng.permutation(words)), label])
    req = request(path, tmp_path / "runs", name="fitted", train={"epochs": 1})
    data = dataclasses.replace(req.data, max_len=96, max_buckets=3)
    seen = Recorder()
    train(dataclasses.replace(req, data=data), seen)
    assert bucket_boundaries(96, max_buckets=3) == (32, 64, 96)
    assert {shape[1] for shape in seen.info["shapes"]} == {96}
    cfg = json.loads((tmp_path / "runs" / "fitted" / "config.json").read_text())
    assert cfg["data"]["buckets"] is None  # fitted by the run, the same again on resume
