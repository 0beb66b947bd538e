"""Unsupervised SimCSE (the contrastive task): the InfoNCE loss against a numpy reference
under jit, finite gradients with filler rows, two views that differ only by dropout (and
are identical without it), fixed evaluation views, a tiny training through the public
workflow, --init-from of it into a similarity run, and one-line refusals of bad options."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from pair_data import make_pairs, write_pairs
from typer.testing import CliRunner

from semalign import tasks
from semalign.cli import app
from semalign.config import AttentionConfig, ModelConfig, TrainConfig
from semalign.data import SPECIAL_TOKENS
from semalign.tasks.contrastive.objective import info_nce_rows
from semalign.tasks.contrastive.spec import ContrastiveCorpusConfig
from semalign.tasks.contrastive.task import TASK, ContrastiveBatch, EncodedCorpus, two_views

runner = CliRunner()
FIRST = len(SPECIAL_TOKENS)
VOCAB = 40


def tiny_model(dropout=0.1, seed=0):
    cfg = ModelConfig(
        vocab_size=VOCAB,
        dim=16,
        layers=1,
        mlp_ratio=2,
        max_len=16,
        dropout=dropout,
        attention=AttentionConfig(scoring="dot,l2", heads=2),
    )
    return TASK.build(cfg, rngs=nnx.Rngs(seed))


def tiny_batch(rows=6, filler=2, length=10, seed=0):
    rng = np.random.default_rng(seed)
    ids = np.zeros((rows + filler, length), np.int32)
    for r in range(rows):
        n = int(rng.integers(3, length - 1))
        ids[r, : n + 2] = [2, *rng.integers(FIRST, VOCAB, n), 3]
    weights = np.r_[np.ones(rows), np.zeros(filler)].astype(np.float32)
    return ContrastiveBatch(ids, weights)


def numpy_info_nce(z, z2, weights, tau):
    """SimCSE eq. 4 written out, real rows only: mean of -log softmax_j(cos_ij / tau)[i]."""
    real = np.flatnonzero(weights > 0)
    u = z[real] / np.linalg.norm(z[real], axis=1, keepdims=True)
    u2 = z2[real] / np.linalg.norm(z2[real], axis=1, keepdims=True)
    logits = (u @ u2.T / tau).astype(np.float64)
    losses = [
        -(logits[i, i] - np.log(np.sum(np.exp(logits[i] - logits[i].max()))) - logits[i].max())
        for i in range(len(real))
    ]
    hits = [int(np.argmax(logits[i]) == i) for i in range(len(real))]
    return float(np.mean(losses)), float(np.mean(hits))


@pytest.mark.parametrize("tau", [0.05, 1.0])
def test_loss_equals_a_numpy_infonce_under_jit(tau):
    rng = np.random.default_rng(1)
    z = rng.normal(size=(8, 5)).astype(np.float32)
    z2 = (z + 0.3 * rng.normal(size=z.shape)).astype(np.float32)
    z[6:] = z2[6:] = 0.0  # filler rows pool to zeros
    weights = np.r_[np.ones(6), np.zeros(2)].astype(np.float32)
    rows = jax.jit(info_nce_rows, static_argnums=3)(z, z2, weights, tau)
    loss, hit = numpy_info_nce(z, z2, weights, tau)
    assert float(rows["loss"].sum()) / 6 == pytest.approx(loss, rel=1e-5, abs=1e-5)
    assert float(rows["hit"].sum()) / 6 == pytest.approx(hit)
    assert float(jnp.abs(rows["loss"][6:]).sum()) == 0.0 and float(rows["others"][0]) == 5.0


def test_the_task_loss_is_the_reference_on_the_views_and_its_gradient_is_finite():
    model = tiny_model(dropout=0.1)
    batch = tiny_batch()
    data = ContrastiveCorpusConfig(dataset=None, data="x", max_len=16, temperature=0.05)
    loss_fn = TASK.loss("infonce", data)
    model.train()
    graph, state = nnx.split(model)

    def run(state, batch):
        m = nnx.merge(graph, state)
        return loss_fn(m, batch)

    def views(state, batch):  # the same masks as ``run`` draws: same state in, same keys
        return two_views(nnx.merge(graph, state), batch.ids)

    value, sums = jax.jit(run)(state, batch)
    z, z2 = jax.jit(views)(state, batch)
    loss, hit = numpy_info_nce(np.asarray(z), np.asarray(z2), batch.weights, 0.05)
    assert float(value) == pytest.approx(loss, rel=1e-4, abs=1e-5)
    assert float(sums["correct"]) / float(sums["count"]) == pytest.approx(hit)
    assert float(sums["count"]) == 6.0

    def objective(m):
        return loss_fn(m, batch)[0]

    grads = nnx.grad(objective)(model)
    leaves = jax.tree.leaves(grads)
    assert leaves and all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert sum(float(jnp.abs(g).sum()) for g in leaves) > 0.0


def test_two_views_differ_only_by_dropout():
    batch = tiny_batch()
    with_dropout, without = tiny_model(dropout=0.1), tiny_model(dropout=0.0)
    for m in (with_dropout, without):
        m.train()
    z, z2 = nnx.jit(two_views)(with_dropout, jnp.asarray(batch.ids))
    assert float(jnp.abs(z - z2)[:6].max()) > 1e-3  # each copy of the batch its own masks
    z, z2 = nnx.jit(two_views)(without, jnp.asarray(batch.ids))
    np.testing.assert_array_equal(np.asarray(z), np.asarray(z2))
    with_dropout.eval()  # eval mode: no dropout, the views coincide
    z, z2 = two_views(with_dropout, jnp.asarray(batch.ids))
    np.testing.assert_array_equal(np.asarray(z), np.asarray(z2))


def test_the_train_step_draws_new_masks_each_step_and_no_micro_batches():
    from semalign.workflows.microbatch import plan_micro_batch
    from semalign.workflows.steps import Steps

    model = tiny_model(dropout=0.1)
    batch = tiny_batch()
    data = ContrastiveCorpusConfig(dataset=None, data="x", max_len=16)
    optimizer = nnx.Optimizer(model, optax.sgd(0.0), wrt=nnx.Param)  # lr 0
    steps = Steps.for_task(TASK, model, optimizer, data=data)
    first, second = (float(steps.train(batch)["loss_sum"]) for _ in range(2))
    assert first != second  # same weights (lr 0), new dropout masks
    spec = tasks.get("contrastive")
    assert not spec.sums_over_rows("infonce")
    assert plan_micro_batch(None, sums_over_rows=False, what="", batch_size=8, backend="cpu") == 0
    with pytest.raises(ValueError, match="compares rows within a batch"):
        plan_micro_batch(2, sums_over_rows=False, what="contrastive", batch_size=8)


def test_evaluation_views_are_fixed_by_the_view_seed():
    model = tiny_model(dropout=0.1)
    model.eval()
    batch = tiny_batch()
    graph, state = nnx.split(model)

    def outputs(seed):
        data = ContrastiveCorpusConfig(dataset=None, data="x", max_len=16, view_seed=seed)
        fn = TASK.outputs("infonce", data)
        return jax.jit(lambda s, b: fn(nnx.merge(graph, s), b))(state, batch)

    a, b, c = outputs(0), outputs(0), outputs(1)
    assert float(a["loss_sum"]) == float(b["loss_sum"]) != float(c["loss_sum"])
    assert float(a["positive"]) / 6 < 1.0  # dropout made two different views
    report = TASK.report([(batch, a)], ())
    assert report.texts == 6 and 0.0 <= report.accuracy <= 1.0
    assert report.loss == pytest.approx(float(a["loss_sum"]) / 6)


def test_batches_pad_rows_and_mark_fillers():
    rng = np.random.default_rng(3)
    seqs = tuple(
        np.concatenate([[2], rng.integers(FIRST, VOCAB, rng.integers(3, 12)), [3]]).astype(np.int32)
        for _ in range(11)
    )
    data = ContrastiveCorpusConfig(dataset=None, data="x", max_len=16, max_buckets=1)
    batches = TASK.batches(EncodedCorpus(seqs), data, batch_size=4, shuffle=True, seed=0)
    assert sum(float(b.weights.sum()) for b in batches) == 11.0
    seen = [tuple(r[r > 0]) for b in batches for r in b.ids[b.weights > 0]]
    assert sorted(seen) == sorted(tuple(s) for s in seqs)
    assert all(not b.ids[b.weights == 0].any() for b in batches)


def _request(text, runs, name, **kw):
    from semalign.workflows.train import TrainRequest

    return TrainRequest(
        task="contrastive",
        data=ContrastiveCorpusConfig(
            dataset=None, data=str(text), vocab_size=60, max_len=12, max_buckets=1
        ),
        train=TrainConfig(epochs=2, batch_size=16, lr=1e-2, patience=0, seed=0),
        model={"dim": 8, "layers": 1, "mlp_ratio": 1, "dropout": 0.1, "attention": {"heads": 2}},
        runs_dir=str(runs),
        name=name,
        tensorboard=False,
        **kw,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from semalign.workflows.train import train

    root = tmp_path_factory.mktemp("contrastive")
    pairs = write_pairs(root / "pairs.tsv", n=60)
    lines = {t: None for a, b, _, _ in make_pairs(90, seed=1) for t in (a, b)}
    text = root / "corpus.txt"
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    full = train(_request(text, root / "runs", "full"))
    return {"root": root, "pairs": pairs, "full": full}


def test_contrastive_trains_and_evaluates_the_same(runs):
    from semalign.workflows.evaluate import EvaluationRequest, evaluate

    full = runs["full"]
    assert full.finished and full.task == "contrastive" and full.test.texts > 0
    assert 0.0 <= full.test.accuracy <= 1.0 and full.test.positive_cosine < 1.0
    log = [json.loads(x) for x in (full.run / "metrics.jsonl").read_text().splitlines()]
    val = [x for x in log if x["split"] == "validation"]
    assert len(val) == 2 and all(np.isfinite(x["val_loss"]) for x in val)
    again = evaluate(EvaluationRequest(run=str(full.run)))
    assert again.report.to_dict() == full.test.to_dict()


def test_a_similarity_run_starts_from_the_contrastive_trunk(runs):
    from semalign.data.pairs import PairDataConfig
    from semalign.workflows.loading import load_run
    from semalign.workflows.train import TrainRequest, train

    source = runs["full"].run
    out = train(
        TrainRequest(
            task="similarity",
            data=PairDataConfig(data=str(runs["pairs"]), vocab_size=60, max_len=12),
            train=TrainConfig(epochs=1, batch_size=16, lr=1e-2, freeze_encoder=True),
            model={"dim": 8, "layers": 1, "mlp_ratio": 1, "attention": {"heads": 2}},
            runs_dir=str(runs["root"] / "runs"),
            name="similarity",
            init_from=str(source),
            tensorboard=False,
        )
    )
    assert out.finished and out.task == "similarity"
    assert json.loads((out.run / "config.json").read_text())["init_from"]["run"] == str(source)
    tuned = load_run(out.run, which="last").model.encoder
    donor = load_run(source, which="served").model.encoder
    for a, b in zip(
        jax.tree.leaves(nnx.state(tuned, nnx.Param)),
        jax.tree.leaves(nnx.state(donor, nnx.Param)),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_contrastive_run_embeds_and_refuses_what_it_cannot(runs):
    run = str(runs["full"].run)
    r = runner.invoke(app, ["embed", "red cat", "blue dog", "--run", run])
    assert r.exit_code == 0, r.output
    vectors = np.asarray(json.loads(r.output)["embeddings"])
    assert vectors.shape == (2, 8)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    r = runner.invoke(app, ["predict", "red cat", "--run", run])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "contrastive run" in r.output and "`semalign embed" in r.output, r.output


def test_bad_options_give_one_line(tmp_path):
    with pytest.raises(ValueError, match=r"temperature must be in \(0, 10\], got 0.0"):
        ContrastiveCorpusConfig(dataset="imdb", temperature=0.0)
    options = {"dataset": "imdb", "data": None, "text_column": "text", "tokenizer": "word"}
    options |= {"vocab_size": 100, "max_len": 32, "seed": 3}
    cfg = tasks.get("contrastive").data_from_options(options)
    assert cfg.temperature == 0.05 and cfg.split_seed == 3
    assert tasks.get("contrastive").data_from_options({**options, "temperature": 0.1}).temperature
    r = runner.invoke(app, ["pretrain", "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "contrastive" in r.output and "--temperature" in r.output
    text = tmp_path / "c.txt"
    text.write_text("a red cat\nthe blue dog\n", encoding="utf-8")
    base = ["train", "--task", "contrastive", "--data", str(text), "--runs-dir", str(tmp_path)]
    for args, said in (
        (["--temperature", "-1"], "temperature must be in (0, 10], got -1.0"),
        (["--micro-batch", "2"], "compares rows within a batch"),
    ):
        r = runner.invoke(app, [*base, *args, "--quiet", "--no-tensorboard"])
        assert r.exit_code == 2 and "Traceback" not in r.output, r.output
        assert said in r.output and len(r.output.strip().splitlines()) == 1, r.output
