"""Replaced-token detection (ELECTRA): the replaced labels and the restored originals against
numpy, the sampling (special tokens never drawn, frequencies of the softmax, one key per
row), the objective against a hand-written numpy loss, no gradient through the samples into
the generator, the micro-batched gradient, the shared embeddings, exact resume, fixed
evaluation, and --init-from into a classifier that gets the discriminator's trunk."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from typer.testing import CliRunner

from semalign.cli import app
from semalign.config import AttentionConfig, ModelConfig, TrainConfig
from semalign.data import MASK_ID, SPECIAL_TOKENS
from semalign.tasks.mlm.task import EncodedTexts
from semalign.tasks.rtd.objective import corrupt, replaced_labels, sample_replacements
from semalign.tasks.rtd.spec import DetectionCorpusConfig
from semalign.tasks.rtd.task import TASK

runner = CliRunner()
FIRST = len(SPECIAL_TOKENS)
VOCAB = 40


def tiny_model(dropout=0.0):
    cfg = ModelConfig(
        vocab_size=VOCAB,
        dim=16,
        layers=2,
        mlp_ratio=2,
        max_len=16,
        dropout=dropout,
        attention=AttentionConfig(scoring="dot,l2", heads=2),
    )
    return TASK.build(cfg, rngs=nnx.Rngs(0))


def tiny_batches(seed=0, shuffle=True):
    rng = np.random.default_rng(3)
    seqs = tuple(
        np.concatenate([[2], rng.integers(FIRST, VOCAB, rng.integers(3, 14)), [3]]).astype(np.int32)
        for _ in range(12)
    )
    encoded = EncodedTexts(seqs, VOCAB, np.zeros(VOCAB, bool))
    data = DetectionCorpusConfig(dataset=None, data="x", max_len=16, max_buckets=1)
    return seqs, data, TASK.batches(encoded, data, batch_size=8, shuffle=shuffle, seed=seed)


def test_replaced_labels_follow_a_hand_computation():
    original = np.array([[2, 10, 11, 12, 13, 3, 0], [2, 20, 21, 1, 22, 3, 0]], np.int32)
    ids = original.copy()
    ids[0, [1, 3]] = [MASK_ID, 30]  # a [MASK] and a random replacement
    ids[1, 2] = MASK_ID
    positions = np.array([[1, 3, 0], [2, 4, 0]], np.int32)  # row 1 keeps 22 at slot 2
    targets = np.array([[10, 12, 0], [21, 22, 0]], np.int32)
    sampled = np.array([[10, 17, 33], [25, 22, 9]], np.int32)  # 10 and 22 equal the originals
    weights = np.array([1.0, 1.0], np.float32)

    corrupted = np.asarray(corrupt(ids, positions, targets, sampled))
    expected = original.copy()
    for b in range(2):
        for s in range(3):
            if targets[b, s]:
                expected[b, positions[b, s]] = sampled[b, s]
    np.testing.assert_array_equal(corrupted, expected)  # unused slots (sample 33, 9) ignored
    replaced, judged = (np.asarray(x) for x in replaced_labels(corrupted, original, weights))
    np.testing.assert_array_equal(judged, original >= FIRST)  # [UNK] at [1, 3] not judged
    np.testing.assert_array_equal(replaced, (expected != original) & (original >= FIRST))
    assert replaced.sum() == 2 and replaced[0, 3] and replaced[1, 2]  # sampled==original -> 0
    _, judged = replaced_labels(corrupted, original, np.array([1.0, 0.0], np.float32))
    assert not np.asarray(judged)[1].any()  # a filler row is never judged


def test_batches_restore_the_originals_and_carry_the_normalisers():
    seqs, data, batches = tiny_batches()
    texts = {tuple(s) for s in seqs}
    for batch in batches:
        real = batch.weights > 0
        for row in batch.original[real]:
            assert tuple(row[row != 0]) in texts
        masked = batch.ids != batch.original
        chosen = np.zeros_like(masked)
        for b, s in zip(*np.nonzero(batch.targets), strict=True):
            chosen[b, batch.positions[b, s]] = True
        assert not (masked & ~chosen).any()  # only predicted positions differ
        judged = ((batch.original >= FIRST) & real[:, None]).sum()
        n = real.sum()
        np.testing.assert_allclose(batch.generator_scale, n / np.count_nonzero(batch.targets))
        np.testing.assert_allclose(batch.detector_scale, n / judged)
    again = tiny_batches()[2]
    for a, b in zip(batches, again, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
    other = tiny_batches(seed=1)[2]
    assert not all(np.array_equal(a.seeds, b.seeds) for a, b in zip(batches, other, strict=True))


def test_sampling_draws_ordinary_tokens_at_the_softmax_frequencies():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(VOCAB,)).astype(np.float32)
    logits[:FIRST] = 5.0  # specials most likely, yet never drawn
    rows = 4000
    seeds = np.arange(rows, dtype=np.uint32)
    drawn = np.asarray(sample_replacements(jnp.broadcast_to(logits, (rows, 1, VOCAB)), seeds))
    assert drawn.min() >= FIRST
    p = np.exp(logits[FIRST:] - logits[FIRST:].max())
    p /= p.sum()
    freq = np.bincount(drawn[:, 0] - FIRST, minlength=VOCAB - FIRST) / rows
    np.testing.assert_array_less(np.abs(freq - p), 4 * np.sqrt(p * (1 - p) / rows) + 1e-9)
    again = np.asarray(sample_replacements(jnp.broadcast_to(logits, (rows, 1, VOCAB)), seeds))
    np.testing.assert_array_equal(drawn, again)  # the seeds alone decide


def _log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def test_objective_equals_a_numpy_reference():
    model = tiny_model()
    model.eval()
    _, data, batches = tiny_batches()
    batch = min(batches, key=lambda b: b.weights.sum())  # the filled-up last batch
    assert batch.weights.sum() == 4
    loss, sums = TASK.loss("electra", data)(model, batch)

    gen = np.asarray(model.generator(batch.ids).logits, np.float64)  # every position
    sampled = np.asarray(
        sample_replacements(
            jnp.asarray(model.generator(batch.ids, positions=batch.positions).logits), batch.seeds
        )
    )
    nll, corrupted = [], batch.ids.copy()
    for b in range(8):
        for s in range(batch.positions.shape[1]):
            t = batch.targets[b, s]
            if t == 0 or batch.weights[b] == 0:
                continue
            row = gen[b, batch.positions[b, s]]
            nll.append(np.logaddexp.reduce(row) - row[t])
            corrupted[b, batch.positions[b, s]] = sampled[b, s]
    disc = np.asarray(model(corrupted).logits, np.float64)
    bce = []
    for b in range(8):
        for i in range(batch.ids.shape[1]):
            if batch.weights[b] == 0 or batch.original[b, i] < FIRST:
                continue
            y = float(corrupted[b, i] != batch.original[b, i])
            x = disc[b, i]
            bce.append(-(y * _log_sigmoid(x) + (1 - y) * _log_sigmoid(-x)))
    expected = np.mean(nll) + 50.0 * np.mean(bce)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    assert float(sums["count"]) == 4.0

    out = TASK.outputs("electra", data)(model, batch)
    report = TASK.report([(batch, out)], ())
    assert report.masked == len(nll) and report.tokens == len(bce)
    np.testing.assert_allclose(report.loss, expected, rtol=1e-5)
    np.testing.assert_allclose(report.detector_loss, np.mean(bce), rtol=1e-5)


def test_no_gradient_reaches_the_generator_through_the_samples():
    from semalign.tasks.rtd.objective import detection_sums

    model = tiny_model()
    model.eval()
    _, _, batches = tiny_batches()

    def part(key):
        return nnx.grad(lambda m: detection_sums(m, batches[0], 50.0)[key])(model)

    def norms(grads, prefix):
        flat = nnx.to_flat_state(grads)
        return [float(jnp.abs(v[...]).max()) for path, v in flat if path[0] == prefix]

    detector, generator = part("bce"), part("nll")
    own = norms(detector, "generator")  # the generator's own parameters (not the shared embedding)
    assert own and max(own) == 0.0
    assert max(norms(generator, "generator")) > 0.0  # its MLM loss does train it
    assert max(norms(detector, "encoder")) > 0.0 and max(norms(detector, "detector")) > 0.0


def test_generator_shares_the_embeddings_and_is_smaller():
    model = tiny_model()
    for part in ("embed", "positions"):
        assert getattr(model.generator.encoder, part) is getattr(model.encoder, part)
    assert len(model.generator.encoder.blocks) == 1 and len(model.encoder.blocks) == 2
    paths = ["/".join(map(str, p)) for p, _ in nnx.to_flat_state(nnx.state(model, nnx.Param))]
    assert not any(p.startswith("generator/encoder/embed") for p in paths)  # stored once


def test_micro_batched_gradient_is_the_whole_batch_gradient():
    from semalign.workflows.microbatch import accumulate

    model = tiny_model()
    model.eval()
    _, data, batches = tiny_batches()
    loss_fn = TASK.loss("electra", data)
    batch = batches[0]
    whole = nnx.grad(lambda m: loss_fn(m, batch)[0])(model)
    summed, sums = accumulate(loss_fn, model, batch, rows=2)
    count = float(sums["count"])

    # Float32 sums in another order round by up to a few ulps of the sum of the magnitudes
    # of what is summed (each row's gradient), not of the result: where rows cancel, an
    # element's own size says nothing about its rounding. Each row alone (its seed travels
    # with it) gives that scale.
    def row_sum(model, r):
        return loss_fn(model, jax.tree.map(lambda x: x[r : r + 1], batch))[1]["loss_sum"]

    rows = [nnx.grad(row_sum)(model, r) for r in range(len(batch[0]))]
    magnitude = jax.tree.map(lambda *g: sum(np.abs(np.asarray(x)) for x in g) / count, *rows)
    for a, b, m in zip(
        jax.tree.leaves(whole), jax.tree.leaves(summed), jax.tree.leaves(magnitude), strict=True
    ):
        a, b = np.asarray(a), np.asarray(b) / count
        assert np.all(np.abs(b - a) <= 1e-5 * m + 1e-6 * np.abs(a).max()), np.abs(b - a).max()


def _request(text, runs, name, **kw):
    from semalign.workflows.train import TrainRequest

    return TrainRequest(
        task="rtd",
        data=DetectionCorpusConfig(
            dataset=None, data=str(text), vocab_size=48, max_len=12, max_buckets=1
        ),
        train=TrainConfig(epochs=2, batch_size=16, lr=1e-2, patience=0, seed=0),
        model={"dim": 8, "layers": 2, "mlp_ratio": 1, "dropout": 0.1, "attention": {"heads": 2}},
        runs_dir=str(runs),
        name=name,
        tensorboard=False,
        **kw,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from semalign.testing import write_reviews_csv
    from semalign.workflows.train import TrainRequest, train

    root = tmp_path_factory.mktemp("rtd")
    csv_path = write_reviews_csv(root / "r.csv", n=72)
    lines = [row.split(",")[0] for row in csv_path.read_text().splitlines()[1:]]
    text = root / "corpus.txt"
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    full = train(_request(text, root / "runs", "full"))
    train(_request(text, root / "runs", "split", stop_after=1))
    resumed = train(
        TrainRequest(
            runs_dir=str(root / "runs"), resume=str(root / "runs" / "split"), tensorboard=False
        )
    )
    return {"root": root, "csv": csv_path, "full": full, "resumed": resumed}


def _leaves(run, which="last", part=None):
    from semalign.workflows.loading import load_run

    model = load_run(run, which=which).model
    return jax.tree.leaves(nnx.state(getattr(model, part) if part else model, nnx.Param))


def test_rtd_trains_and_resumes_exactly(runs):
    full, resumed = runs["full"], runs["resumed"]
    assert full.finished and full.task == "rtd" and full.test.tokens > 0
    assert 0.0 < full.test.replaced_share < 1.0 and 0.0 <= full.test.detection_auc <= 1.0
    assert full.test.loss == pytest.approx(
        full.test.generator_loss + 50.0 * full.test.detector_loss
    )
    lines = [
        [json.loads(x) for x in (r.run / "metrics.jsonl").read_text().splitlines()]
        for r in (full, resumed)
    ]
    val = [[x for x in line if x["split"] == "validation"] for line in lines]
    assert [x["val_loss"] for x in val[0]] == [x["val_loss"] for x in val[1]]
    assert all(math.isfinite(x["val_detection_auc"]) for x in val[0])
    for a, b in zip(_leaves(full.run), _leaves(resumed.run), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert resumed.test.to_dict() == full.test.to_dict()


def test_evaluation_is_fixed_by_the_mask_seed(runs):
    from semalign.workflows.evaluate import EvaluationRequest, evaluate

    first = evaluate(EvaluationRequest(run=str(runs["full"].run)))
    again = evaluate(EvaluationRequest(run=str(runs["full"].run)))
    assert first.report.to_dict() == again.report.to_dict() == runs["full"].test.to_dict()


def test_a_classifier_starts_from_the_discriminator(runs):
    from semalign.config import DataConfig
    from semalign.workflows.train import TrainRequest, train

    source = runs["full"].run
    out = train(
        TrainRequest(
            data=DataConfig(dataset=None, data=str(runs["csv"]), vocab_size=48, max_len=12),
            train=TrainConfig(epochs=1, batch_size=16, lr=1e-2, freeze_encoder=True),
            model={"dim": 8, "layers": 2, "mlp_ratio": 1, "attention": {"heads": 2}},
            runs_dir=str(runs["root"] / "runs"),
            name="classifier",
            init_from=str(source),
            tensorboard=False,
        )
    )
    assert out.finished and out.task == "classification"
    config = json.loads((out.run / "config.json").read_text())
    assert config["init_from"]["run"] == str(source)
    tuned = _leaves(out.run, part="encoder")
    donor = _leaves(source, which="served", part="encoder")  # the discriminator's trunk
    for a, b in zip(tuned, donor, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_commands_an_rtd_run_cannot_serve_say_what_it_can(runs):
    run = str(runs["full"].run)
    for args in (["predict", "a film"], ["inspect", "a film"], ["embed", "a film"]):
        r = runner.invoke(app, [*args, "--run", run])
        assert r.exit_code == 2 and "Traceback" not in r.output, r.output
        assert "rtd run" in r.output and "`semalign evaluate`" in r.output, r.output
        assert "--pair" not in r.output and "`semalign embed" not in r.output, r.output


def test_pretrain_takes_the_rtd_objective(runs):
    from semalign import tasks

    r = runner.invoke(app, ["pretrain", "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "--objective" in r.output and "--task" not in r.output
    base = ["pretrain", "--resume", "--name", "full", "--runs-dir", str(runs["root"] / "runs")]
    r = runner.invoke(app, [*base, "--objective", "rtd"])
    assert r.exit_code == 2 and "already finished 2 epochs" in r.output, r.output
    r = runner.invoke(app, base)  # --objective mlm (the default) is not this run's task
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    options = {"dataset": "imdb", "data": None, "text_column": "text", "tokenizer": "word"}
    options |= {"vocab_size": 100, "max_len": 32, "seed": 3}
    cfg = tasks.get("rtd").data_from_options(options)
    assert isinstance(cfg, DetectionCorpusConfig) and cfg.detector_weight == 50.0
    assert cfg.split_seed == 3 and cfg.mask_rate == 0.15
    with pytest.raises(ValueError, match="detector_weight must be > 0"):
        DetectionCorpusConfig(dataset="imdb", detector_weight=0.0)
