"""Long texts are not cut silently: counts in train / evaluate / predict, --truncation."""

import dataclasses
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from semalign.cli import app
from semalign.config import DataConfig
from semalign.data import encode_counted, load_tokenizer
from semalign.data.tokenizer import cut
from semalign.testing import tiny_request, write_reviews_csv
from semalign.workflows.evaluate import EvaluationRequest, evaluate
from semalign.workflows.predict import predict
from semalign.workflows.reporting import SilentReporter
from semalign.workflows.train import train

LONG = "the movie plot was great and the actor was superb in every scene of the story " * 3


def test_cut_keeps_cls_and_the_chosen_part():
    ids = [2, *range(10, 30)]  # [CLS] + 20 tokens
    assert cut(ids, 6, "head") == [2, 10, 11, 12, 13, 14]
    assert cut(ids, 6, "tail") == [2, 25, 26, 27, 28, 29]
    assert cut(ids, 9, "head-tail") == [2, 10, 11, 24, 25, 26, 27, 28, 29]
    assert cut(ids[:4], 6, "tail") == ids[:4]
    with pytest.raises(ValueError, match="truncation must be one of head, tail, head-tail"):
        DataConfig(truncation="middle")


class Start(SilentReporter):
    def start(self, info):
        self.info = info


@pytest.fixture(scope="module")
def tail_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("trunc")
    data = write_reviews_csv(root / "d.csv", n=96)
    req = tiny_request(data, root / "runs", name="tail", train={"epochs": 1}, tensorboard=False)
    req = dataclasses.replace(req, data=dataclasses.replace(req.data, max_len=8, truncation="tail"))
    seen = Start()
    result = train(req, seen)
    return result.run, data, seen.info


def _expected_cut(run, texts, max_len=8):
    tok = load_tokenizer(run / "tokenizer.json")
    return sum(len(e.ids) > max_len for e in tok.encode_batch(list(texts)))


def test_training_counts_cut_texts_per_split_and_saves_the_truncation(tail_run):
    run, _, info = tail_run
    assert json.loads((run / "config.json").read_text())["data"]["truncation"] == "tail"
    assert info["truncation"] == "tail" and info["max_len"] == 8
    assert set(info["truncated"]) == {"train", "validation", "test"}
    assert 0 < info["truncated"]["train"] <= info["sizes"]["train"]


def test_evaluate_and_predict_count_and_cut_as_the_run_says(tail_run):
    run, data, info = tail_run
    ev = evaluate(EvaluationRequest(run=str(run)))
    assert ev.truncated == info["truncated"]["test"] and ev.examples == info["sizes"]["test"]
    texts = [LONG, "great", "boring " + LONG]
    res = predict(texts, run=run)
    assert res.truncated == _expected_cut(run, texts) == 2
    assert res.to_dict()["truncated"] == 2
    # The served probabilities are the model's on the tail-cut ids.
    from semalign.workflows.loading import load_run

    loaded = load_run(run)
    seqs, n = encode_counted(loaded.tokenizer, texts, max_len=8, truncation="tail")
    assert n == 2 and all(len(s) == 8 for s in (seqs[0], seqs[2]))
    ids = np.zeros((3, 8), np.int32)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = s
    probs = np.asarray(loaded.task_impl.probabilities(loaded.model, ids, ids > 0))
    got = np.array([list(p.probabilities.values()) for p in res.predictions])
    np.testing.assert_allclose(got, probs, atol=1e-5)
    out = CliRunner().invoke(app, ["predict", LONG, "great", "--run", str(run)])
    assert (
        out.exit_code == 0 and "1 of 2 texts were longer than 8 tokens and were cut" in out.output
    )


def test_chunks_average_the_windows_of_a_long_text(tail_run):
    from semalign.workflows.loading import load_run

    run, _, _ = tail_run
    loaded = load_run(run)
    ids = loaded.tokenizer.encode(LONG).ids
    windows = [[ids[0], *ids[1:][i : i + 7]] for i in range(0, len(ids) - 1, 7)]
    assert len(windows) >= 3
    batch = np.zeros((len(windows), 8), np.int32)
    for i, w in enumerate(windows):
        batch[i, : len(w)] = w
    expected = np.asarray(loaded.task_impl.probabilities(loaded.model, batch, batch > 0)).mean(0)
    res = predict([LONG, "great"], run=run, long_texts="chunks")
    got = list(res.predictions[0].probabilities.values())
    np.testing.assert_allclose(got, expected, atol=1e-5)
    short = predict(["great"], run=run)  # a text that fits is one window: the same numbers
    np.testing.assert_allclose(
        list(res.predictions[1].probabilities.values()),
        list(short.predictions[0].probabilities.values()),
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="long_texts must be one of cut, chunks"):
        predict(["great"], run=run, long_texts="windows")


def _split_probabilities(loaded, texts, truncation, max_len=8):
    """Probabilities of each text cut by ``truncation``, by hand (padded to max_len)."""
    seqs = [cut(e.ids, max_len, truncation) for e in loaded.tokenizer.encode_batch(texts)]
    ids = np.zeros((len(seqs), max_len), np.int32)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = s
    return np.asarray(loaded.task_impl.probabilities(loaded.model, ids, ids > 0))


def _windows_mean(loaded, text, max_len=8):
    ids = loaded.tokenizer.encode(text).ids
    body = ids[1:] or [0]
    wins = [[ids[0], *body[i : i + max_len - 1]] for i in range(0, len(body), max_len - 1)]
    batch = np.zeros((len(wins), max_len), np.int32)
    for i, w in enumerate(wins):
        batch[i, : len(w)] = [t for t in w if t]
    return np.asarray(loaded.task_impl.probabilities(loaded.model, batch, batch > 0)).mean(0)


def test_evaluate_cuts_by_a_chosen_truncation_and_reads_windows(tail_run):
    from semalign.workflows.loading import load_run

    run, _, info = tail_run
    loaded = load_run(run)
    test = loaded.task_impl.load_splits(loaded.data_config).test
    texts = list(test.texts)
    y = np.array([loaded.labels.index(lab) for lab in test.labels])
    for truncation in ("head", "tail", "head-tail"):
        ev = evaluate(EvaluationRequest(run=str(run), truncation=truncation))
        probs = _split_probabilities(loaded, texts, truncation)
        assert ev.report.accuracy == pytest.approx(float(np.mean(probs.argmax(-1) == y)))
        assert ev.truncated == info["truncated"]["test"]
    ev = evaluate(EvaluationRequest(run=str(run), long_texts="chunks"))
    probs = np.stack([_windows_mean(loaded, t) for t in texts])
    assert ev.report.accuracy == pytest.approx(float(np.mean(probs.argmax(-1) == y)))
    nll = -np.log(probs[np.arange(len(y)), y]).mean()
    assert ev.report.loss == pytest.approx(float(nll), rel=1e-4)
    assert ev.truncated == info["truncated"]["test"]
    out = CliRunner().invoke(app, ["evaluate", "--run", str(run), "--long-texts", "chunks"])
    assert out.exit_code == 0, out.output
    assert "were read in max_len-token windows" in out.output or info["truncated"]["test"] == 0
    out = CliRunner().invoke(
        app, ["evaluate", "--run", str(run), "--long-texts", "chunks", "--truncation", "head"]
    )
    assert out.exit_code != 0 and "drop --truncation" in out.output
    assert "Traceback" not in out.output


def test_predict_takes_a_truncation_and_other_tasks_refuse_chunks(tail_run):
    from semalign import tasks
    from semalign.errors import DataError
    from semalign.workflows.loading import load_run

    run, _, _ = tail_run
    loaded = load_run(run)
    res = predict([LONG], run=run, truncation="head")
    want = _split_probabilities(loaded, [LONG], "head")[0]
    np.testing.assert_allclose(list(res.predictions[0].probabilities.values()), want, atol=1e-5)
    with pytest.raises(ValueError, match="truncation must be one of"):
        predict([LONG], run=run, truncation="middle")
    with pytest.raises(DataError, match="a similarity run has no such examples"):
        tasks.get("similarity").load().chunked_report(None, None, ())
