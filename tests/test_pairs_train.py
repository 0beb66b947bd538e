"""Similarity and pair-classification training end to end on pairs the tests write."""

import json

import jax
import numpy as np
import pytest
from flax import nnx
from pair_data import write_pairs

from semalign.config import TrainConfig
from semalign.data.pairs import PairDataConfig
from semalign.metrics.correlation import SimilarityReport
from semalign.tasks.pair_classification.model import PairClassifier
from semalign.tasks.similarity.model import PairEncoder
from semalign.workflows.align import align
from semalign.workflows.embed import embed
from semalign.workflows.evaluate import EvaluationRequest, evaluate
from semalign.workflows.loading import load_run
from semalign.workflows.train import TrainRequest
from semalign.workflows.train import train as train_pairs

MODEL = {"dim": 16, "mlp_ratio": 1, "dropout": 0.0, "attention": {"scoring": "dot", "heads": 2}}


def request(data, runs, task="similarity", **kw):
    train = {"epochs": 4, "batch_size": 16, "lr": 1e-2, "patience": 0, **kw.pop("train", {})}
    return TrainRequest(
        data=PairDataConfig(data=str(data), vocab_size=64, max_len=16, max_buckets=1),
        task=task,
        train=TrainConfig(**train),
        model={**MODEL, **kw.pop("model", {})},
        runs_dir=str(runs),
        tensorboard=False,
        **kw,
    )


@pytest.fixture(scope="module")
def similarity(tmp_path_factory):
    root = tmp_path_factory.mktemp("pairs")
    data = write_pairs(root / "pairs.tsv", n=200)
    return train_pairs(request(data, root / "runs", name="sim")), data


def records(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_similarity_run_folder_and_learning(similarity):
    result, _ = similarity
    cfg = json.loads((result.run / "config.json").read_text())
    assert cfg["task"] == "similarity" and cfg["loss"] == "cosent"
    assert cfg["data"]["score_range"] == [0.0, 5.0]
    assert json.loads((result.run / "labels.json").read_text()) == []
    val = [r for r in records(result.run) if r["split"] == "validation"]
    assert len(val) == 4
    assert val[-1]["train_loss"] < val[0]["train_loss"]  # the loss decreases
    assert isinstance(result.test, SimilarityReport) and result.test.count == 20
    assert result.test.spearman > 0.5, result.test  # shared words -> similar embeddings


def test_evaluate_dispatches_on_the_task(similarity):
    result, data = similarity
    ev = evaluate(EvaluationRequest(run=str(result.run)))
    assert ev.split == "test" and isinstance(ev.report, SimilarityReport)
    for name, c in result.test.correlations.items():
        assert ev.report.correlations[name].spearman == pytest.approx(c.spearman, abs=1e-9)
    whole = evaluate(EvaluationRequest(run=str(result.run), data=str(data)))
    assert whole.split == "all" and whole.report.count == 200
    assert json.loads(json.dumps(whole.to_dict()))["report"]["correlations"]["l1"]


def test_loaded_run_and_embeddings(similarity):
    result, _ = similarity
    loaded = load_run(result.run)
    assert isinstance(loaded.model, PairEncoder) and loaded.task == "similarity"
    texts = ["red cat small dog", "small dog red cat", "loud frog quiet owl"]
    emb = embed(loaded, texts)
    assert emb.vectors.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(emb.vectors, axis=1), 1.0, atol=1e-5)
    ids = np.asarray([loaded.tokenizer.encode(texts[0]).ids], np.int32)
    np.testing.assert_allclose(emb.vectors[0], loaded.model(ids).embedding[0], atol=1e-5)
    raw = embed(loaded, texts, normalize=False)
    assert not np.allclose(np.linalg.norm(raw.vectors, axis=1), 1.0)


def test_onnx_export_has_the_normalised_embedding_in_the_graph(similarity, tmp_path):
    from semalign.runtime import open_session
    from semalign.workflows.export import export_onnx

    result, _ = similarity
    report = export_onnx(result.run, out=tmp_path / "enc.onnx", shapes=((1, 4), (3, 16)))
    assert report.ok and report.outputs == ("embedding",)
    assert [(c.batch, c.seq) for c in report.checks] == [(1, 4), (3, 16)]
    assert report.max_abs_diff <= 1e-4
    loaded = load_run(result.run)
    texts = ["red cat small dog", "loud frog"]
    seqs = [loaded.tokenizer.encode(t).ids for t in texts]
    ids = np.zeros((2, max(map(len, seqs))), np.int32)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = s
    (got,) = open_session(report.path).run(
        ["embedding"], {"input_ids": ids, "attention_mask": (ids > 0).astype(np.int32)}
    )
    np.testing.assert_allclose(got, embed(loaded, texts).vectors, atol=1e-5)


def test_alignment_rows_are_distributions_over_text_b(similarity):
    result, _ = similarity
    rep = align(str(result.run), "red cat small dog", "a small red dog")
    la, lb = len(rep.tokens_a), len(rep.tokens_b)
    assert rep.weights.shape == (2, la, lb) and rep.tokens_a[0] == "[CLS]"
    np.testing.assert_allclose(rep.weights.sum(-1), 1.0, atol=1e-5)
    assert (rep.weights >= 0).all() and -1.0 <= rep.similarity <= 1.0
    best = rep.best_pairs()
    assert best and all(p.a_token != "[CLS]" and p.b_token != "[CLS]" for p in best)
    assert [p.weight for p in best] == sorted((p.weight for p in best), reverse=True)
    one = align(str(result.run), "red cat", "a red dog", head="1")
    assert one.heads == (1,) and one.weights.shape[0] == 1


def test_pair_classification_with_cross_attention(tmp_path):
    data = write_pairs(tmp_path / "p.tsv", n=160, seed=1)
    result = train_pairs(
        request(
            data,
            tmp_path / "runs",
            task="pair-classification",
            name="pc",
            model={"attention": {"scoring": "cosine", "heads": 2}},
            train={"epochs": 3},
        )
    )
    val = [r for r in records(result.run) if r["split"] == "validation"]
    assert val[-1]["train_loss"] < val[0]["train_loss"]
    assert result.test.labels == ("different", "same") and result.test.count == 16
    loaded = load_run(result.run)
    assert isinstance(loaded.model, PairClassifier)
    rep = align(loaded, "red cat small dog", "a small red dog")
    assert rep.layer == "cross-attention" and set(rep.probabilities) == {"different", "same"}
    np.testing.assert_allclose(rep.weights.sum(-1), 1.0, atol=1e-5)


def _params(run):
    loaded = load_run(run, which="last")
    return jax.tree.leaves(nnx.to_pure_dict(nnx.state(loaded.model, nnx.Param)))


def test_cosine_mse_and_exact_resume(tmp_path):
    data = write_pairs(tmp_path / "p.tsv", n=64, seed=2)
    kw = {"loss": "cosine-mse", "train": {"epochs": 2}}
    full = train_pairs(request(data, tmp_path / "runs", name="full", **kw))
    part = train_pairs(request(data, tmp_path / "runs", name="part", stop_after=1, **kw))
    assert not part.finished and part.test is None
    again = train_pairs(TrainRequest(resume=str(part.run), loss="cosine-mse", tensorboard=False))
    assert again.finished and again.loss == "cosine-mse"
    for a, b in zip(_params(full.run), _params(part.run), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)


def test_bad_options_fail_before_any_run_folder(tmp_path):
    data = write_pairs(tmp_path / "p.tsv", n=20)
    with pytest.raises(ValueError, match="--loss 'hinge' does not fit task 'similarity'"):
        train_pairs(request(data, tmp_path / "runs", loss="hinge"))
    with pytest.raises(ValueError, match="unknown task 'ranking'"):
        train_pairs(request(data, tmp_path / "runs", task="ranking"))
    flat = tmp_path / "flat.tsv"
    rows = "".join(f"cat{i} dog\tred fox\t3\n" for i in range(12))
    flat.write_text("sentence1\tsentence2\tscore\n" + rows, encoding="utf-8")
    with pytest.raises(ValueError, match="every pair has the score 3.0"):
        train_pairs(request(flat, tmp_path / "runs"))
    assert not (tmp_path / "runs").exists()
