"""Masked-LM pretraining: masking statistics, the masked-position loss against numpy, the
tied output layer, training and exact resume, --init-from (trunk copied, head new, frozen
trunk untouched, a mismatch refused in one line), inspect's top-k per [MASK], evaluate."""

import json
import math

import jax
import numpy as np
import pytest
from flax import nnx
from typer.testing import CliRunner

from semalign.cli import app
from semalign.config import AttentionConfig, ModelConfig, TrainConfig
from semalign.data import MASK_ID, SPECIAL_TOKENS
from semalign.tasks.mlm.masking import MASK_SHARE, RANDOM_SHARE, mask_row
from semalign.tasks.mlm.model import MaskedLM
from semalign.tasks.mlm.spec import MaskedCorpusConfig

runner = CliRunner()
FIRST = len(SPECIAL_TOKENS)  # the first ordinary token id


def test_masking_rates_follow_bert_within_binomial_tolerance():
    rng = np.random.default_rng(0)
    vocab = 300
    chosen = maskable = masked = replaced = kept = 0
    for _ in range(3000):
        body = rng.integers(FIRST, vocab, rng.integers(5, 60))
        row = np.concatenate([[2], body, [3]])  # [CLS] ... [SEP]
        inputs, pos, tgt = mask_row(row, rng, rate=0.15, vocab_size=vocab)
        n = body.size
        assert pos.size == max(1, round(0.15 * n))  # the budget, exactly
        np.testing.assert_array_equal(tgt, row[pos])
        untouched = np.setdiff1d(np.arange(row.size), pos)
        np.testing.assert_array_equal(inputs[untouched], row[untouched])
        maskable += n
        chosen += pos.size
        masked += int(np.sum(inputs[pos] == MASK_ID))
        replaced += int(np.sum((inputs[pos] != MASK_ID) & (inputs[pos] != row[pos])))
        kept += int(np.sum(inputs[pos] == row[pos]))
    assert abs(chosen / maskable - 0.15) < 0.01  # rounding per text only
    # A random replacement draws the original token with probability 1 / (vocab - FIRST).
    same = 1.0 / (vocab - FIRST)
    expected = {
        "mask": MASK_SHARE,
        "random": RANDOM_SHARE * (1 - same),
        "kept": 1 - MASK_SHARE - RANDOM_SHARE + RANDOM_SHARE * same,
    }
    for name, count in (("mask", masked), ("random", replaced), ("kept", kept)):
        p = expected[name]
        assert abs(count / chosen - p) < 4 * math.sqrt(p * (1 - p) / chosen), name


def test_special_tokens_are_never_masked():
    rng = np.random.default_rng(1)
    for _ in range(500):
        row = rng.integers(0, 40, 30)  # specials (0-4) mixed among ordinary ids
        row[0] = 2
        inputs, pos, _ = mask_row(row, rng, rate=0.5, vocab_size=40)
        assert np.all(row[pos] >= FIRST)
        special = row < FIRST
        np.testing.assert_array_equal(inputs[special], row[special])
    only_special = np.array([2, 1, 1, 3])
    inputs, pos, _ = mask_row(only_special, rng, rate=0.15, vocab_size=40)
    assert pos.size == 0 and np.array_equal(inputs, only_special)


def test_whole_word_masking_masks_whole_words():
    rng = np.random.default_rng(2)
    continues = np.zeros(60, bool)
    continues[40:] = True  # ids 40-59 are '##' pieces
    for _ in range(300):
        pieces, words = [2], []
        for _ in range(rng.integers(3, 15)):
            start = len(pieces)
            pieces.append(int(rng.integers(FIRST, 40)))
            pieces += [int(x) for x in rng.integers(40, 60, rng.integers(0, 3))]
            words.append(set(range(start, len(pieces))))
        row = np.array(pieces + [3])
        _, pos, _ = mask_row(row, rng, rate=0.3, vocab_size=60, continues=continues)
        picked = set(pos.tolist())
        for word in words:
            assert word <= picked or not (word & picked), (word, picked)
        assert len(picked) <= max(1, round(0.3 * (row.size - 2)))


def tiny_mlm(vocab=40, dim=16):
    cfg = ModelConfig(
        vocab_size=vocab,
        dim=dim,
        mlp_ratio=1,
        max_len=16,
        dropout=0.0,
        attention=AttentionConfig(scoring="dot,l2", heads=2),
    )
    model = MaskedLM(cfg, rngs=nnx.Rngs(0))
    model.eval()
    return model


def test_loss_is_the_mean_nll_of_masked_positions_only():
    from semalign.tasks.mlm.task import TASK, EncodedTexts

    model = tiny_mlm()
    rng = np.random.default_rng(3)
    seqs = tuple(
        np.concatenate([[2], rng.integers(FIRST, 40, rng.integers(3, 14))]).astype(np.int32)
        for _ in range(12)
    )
    encoded = EncodedTexts(seqs, 40, np.zeros(40, bool))
    data = MaskedCorpusConfig(dataset=None, data="x", max_len=16, max_buckets=1)
    batches = TASK.batches(encoded, data, batch_size=8, shuffle=True, seed=0, epoch=0)
    batch = min(batches, key=lambda b: b.weights.sum())
    assert batch.weights.sum() == 4  # the filled-up last batch: 4 real rows
    loss, sums = TASK.loss("cross-entropy", data)(model, batch)

    logits = np.asarray(model(batch.ids).logits, np.float64)  # every position
    nll = []
    for b in range(batch.ids.shape[0]):
        for slot in range(batch.positions.shape[1]):
            target = batch.targets[b, slot]
            if target == 0 or batch.weights[b] == 0:
                continue
            row = logits[b, batch.positions[b, slot]]
            m = row.max()
            nll.append(m + np.log(np.exp(row - m).sum()) - row[target])
    assert len(nll) == int(sums["count"]) > 0
    np.testing.assert_allclose(float(loss), np.mean(nll), rtol=1e-5)


def test_output_layer_is_the_token_embedding():
    model = tiny_mlm()
    ids = np.array([[2, 7, MASK_ID, 9, 3]], np.int32)
    x, _, _ = model.encoder(ids)
    head = model.head
    h = np.asarray(head.norm(jax.nn.gelu(head.transform(x))), np.float64)
    table = np.asarray(model.encoder.embed.embedding[...], np.float64)
    expected = h @ table.T + np.asarray(head.bias[...])
    np.testing.assert_allclose(np.asarray(model(ids).logits), expected, atol=1e-5)
    # No other [vocab, dim] matrix: the head owns the transform and the bias only.
    shapes = [p.shape for _, p in nnx.iter_graph(model.head) if isinstance(p, nnx.Param)]
    assert sorted(shapes) == sorted([(16, 16), (16,), (16,), (16,), (40,)])


def _corpus(root):
    from semalign.testing import write_reviews_csv

    csv_path = write_reviews_csv(root / "r.csv", n=72)
    lines = [row.split(",")[0] for row in csv_path.read_text().splitlines()[1:]]
    text = root / "corpus.txt"
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return csv_path, text


def _mlm_request(text, runs, name, **kw):
    from semalign.workflows.train import TrainRequest

    return TrainRequest(
        task="mlm",
        data=MaskedCorpusConfig(
            dataset=None, data=str(text), vocab_size=48, max_len=12, max_buckets=1
        ),
        train=TrainConfig(epochs=2, batch_size=16, lr=1e-2, patience=0, seed=0),
        model={"dim": 8, "mlp_ratio": 1, "dropout": 0.1, "attention": {"heads": 2}},
        runs_dir=str(runs),
        name=name,
        tensorboard=False,
        **kw,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from semalign.workflows.train import TrainRequest, train

    root = tmp_path_factory.mktemp("mlm")
    csv_path, text = _corpus(root)
    full = train(_mlm_request(text, root / "runs", "full"))
    train(_mlm_request(text, root / "runs", "split", stop_after=1))
    resumed = train(
        TrainRequest(
            runs_dir=str(root / "runs"), resume=str(root / "runs" / "split"), tensorboard=False
        )
    )
    return {"root": root, "csv": csv_path, "full": full, "resumed": resumed}


def _params(run, which="last"):
    from semalign.workflows.loading import load_run

    model = load_run(run, which=which).model
    return model, jax.tree.leaves(nnx.state(model, nnx.Param))


def test_mlm_trains_and_resumes_exactly(runs):
    full, resumed = runs["full"], runs["resumed"]
    assert full.finished and full.task == "mlm" and full.test.tokens > 0
    assert full.test.perplexity == pytest.approx(math.exp(full.test.loss))
    lines = [
        [json.loads(x) for x in (r.run / "metrics.jsonl").read_text().splitlines()]
        for r in (full, resumed)
    ]
    assert [x["val_loss"] for x in lines[0] if x["split"] == "validation"] == [
        x["val_loss"] for x in lines[1] if x["split"] == "validation"
    ]
    for a, b in zip(_params(full.run)[1], _params(resumed.run)[1], strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert resumed.test.to_dict() == full.test.to_dict()


def test_evaluate_uses_fixed_masks(runs):
    from semalign.workflows.evaluate import EvaluationRequest, evaluate

    first = evaluate(EvaluationRequest(run=str(runs["full"].run)))
    again = evaluate(EvaluationRequest(run=str(runs["full"].run)))
    assert first.report.to_dict() == again.report.to_dict() == runs["full"].test.to_dict()


def test_init_from_copies_the_trunk_and_builds_a_new_head(runs):
    from semalign.config import DataConfig
    from semalign.tasks.classification.task import TASK
    from semalign.workflows.init_from import copy_trunk, open_source

    source_run = runs["full"].run
    cfg = ModelConfig(
        vocab_size=1, num_classes=2, dim=8, mlp_ratio=1, max_len=12, attention={"heads": 2}
    )
    data = DataConfig(dataset=None, data=str(runs["csv"]), vocab_size=48, max_len=12)
    source = open_source(source_run, cfg, data)
    cfg = cfg.replace(vocab_size=source.tokenizer.get_vocab_size())
    model = TASK.build(cfg, rngs=nnx.Rngs(5))
    fresh = TASK.build(cfg, rngs=nnx.Rngs(5))
    record = copy_trunk(model, source)
    donor, _ = _params(source_run, which="served")
    for a, b in zip(
        jax.tree.leaves(nnx.state(model.encoder, nnx.Param)),
        jax.tree.leaves(nnx.state(donor.encoder, nnx.Param)),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for a, b in zip(
        jax.tree.leaves(nnx.state(model.head, nnx.Param)),
        jax.tree.leaves(nnx.state(fresh.head, nnx.Param)),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # the new head, as built
    assert record["run"] == str(source_run) and len(record["trunk_sha256"]) == 64


def test_frozen_encoder_stays_bit_identical_through_training_and_resume(runs, monkeypatch):
    from semalign.config import DataConfig
    from semalign.workflows import init_from
    from semalign.workflows.train import TrainRequest, train

    root, source_run = runs["root"], runs["full"].run
    train(
        TrainRequest(
            data=DataConfig(dataset=None, data=str(runs["csv"]), vocab_size=48, max_len=12),
            train=TrainConfig(epochs=2, batch_size=16, lr=1e-2, freeze_encoder=True),
            model={"dim": 8, "mlp_ratio": 1, "attention": {"heads": 2}},
            runs_dir=str(root / "runs"),
            name="frozen",
            init_from=str(source_run),
            stop_after=1,
            tensorboard=False,
        )
    )
    config = json.loads((root / "runs" / "frozen" / "config.json").read_text())
    assert config["init_from"]["run"] == str(source_run) and config["train"]["freeze_encoder"]

    def never(*a, **k):
        raise AssertionError("a resumed run copied the trunk again")

    monkeypatch.setattr(init_from, "copy_trunk", never)
    out = train(
        TrainRequest(
            runs_dir=str(root / "runs"), resume=str(root / "runs" / "frozen"), tensorboard=False
        )
    )
    assert out.finished and out.epochs_done == 2
    saved = json.loads(out.run.joinpath("config.json").read_text())
    assert saved["init_from"] == config["init_from"]
    donor, _ = _params(source_run, which="served")
    tuned, _ = _params(out.run)
    for a, b in zip(
        jax.tree.leaves(nnx.state(tuned.encoder, nnx.Param)),
        jax.tree.leaves(nnx.state(donor.encoder, nnx.Param)),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    fresh = tuned.__class__(tuned.config, rngs=nnx.Rngs(params=0, dropout=1))
    head = jax.tree.leaves(nnx.state(tuned.head, nnx.Param))
    start = jax.tree.leaves(nnx.state(fresh.head, nnx.Param))
    assert any(not np.array_equal(a, b) for a, b in zip(head, start, strict=True))  # it trained
    from semalign.errors import RunError

    for change in ({"freeze_encoder": False}, {"encoder_lr_scale": 0.5}):
        with pytest.raises(RunError, match="cannot change on --resume"):
            train(TrainRequest(resume=str(out.run), overrides={"epochs": 3, **change}))


def test_a_trunk_that_does_not_fit_is_refused_in_one_line(runs):
    root = runs["root"]
    base = ["train", "--data", str(runs["csv"]), "--runs-dir", str(root / "runs")]
    base += ["--init-from", str(runs["full"].run), "--name", "refused"]
    for extra, names in [
        (["--dim", "32"], "dim 8, this run asks 32"),
        (["--heads", "4"], "attention heads 2, this run asks 4"),
        (["--scoring", "cosine"], "attention head_scorings dot,dot, this run asks cosine,cosine"),
        (["--max-len", "24"], "max_len 12, this run asks 24"),
        (["--vocab-size", "100"], "tokenizer vocab_size 48, this run asks 100"),
    ]:
        r = runner.invoke(app, base + extra)
        assert r.exit_code == 2, r.output
        assert names in r.output and "Traceback" not in r.output
        assert len(r.output.strip().splitlines()) == 1, r.output
    # The source's own texts split with another seed: pretrained texts would be tested on.
    args = ["train", "--data", str(root / "corpus.txt"), "--split-seed", "1", *base[3:]]
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and "split seed 0; this run splits it with seed 1" in r.output
    assert "pass --split-seed 0" in r.output
    assert not (root / "runs" / "refused").exists()


def test_another_seed_fine_tunes_on_the_sources_split(runs):
    # --seed alone varies init, dropout and shuffling; the split seed comes from the source.
    from semalign.workflows.options import inherit, new_plan

    root = runs["root"]
    typed = {"data": str(root / "corpus.txt"), "seed": 1, "init_from": str(runs["full"].run)}
    options = {**_train_defaults(), **typed}
    plan = new_plan(inherit(options, set(typed)))
    assert plan["train"].seed == 1 and plan["data"].split_seed == 0
    plan = new_plan(inherit({**options, "split_seed": 2}, {*typed, "split_seed"}))
    assert plan["train"].seed == 1 and plan["data"].split_seed == 2
    # Without --init-from one --seed seeds the split too, as before --split-seed existed.
    plan = new_plan({**_train_defaults(), "data": str(root / "corpus.txt"), "seed": 4})
    assert plan["train"].seed == 4 and plan["data"].split_seed == 4


def _train_defaults() -> dict:
    import inspect

    from semalign.cli.train import train as cli_train

    options = {n: p.default for n, p in inspect.signature(cli_train).parameters.items()}
    del options["ctx"]
    return {**options, "task": "classification"}


def test_inspect_shows_the_top_k_of_each_mask_as_the_logits_rank_them(runs):
    from semalign.data import encode_texts
    from semalign.workflows.introspect import TOP_FILLS, attention
    from semalign.workflows.loading import load_run

    run = runs["full"].run
    text = "the [MASK] was [MASK] fun"
    report = attention(str(run), text)
    fills = report.texts[0].fills
    loaded = load_run(run)
    ids = encode_texts(loaded.tokenizer, [text], max_len=loaded.max_len)[0]
    logits = np.asarray(loaded.model(ids[None]).logits[0])
    assert [f.position for f in fills] == np.flatnonzero(ids == MASK_ID).tolist()
    for f in fills:
        top = np.argsort(-logits[f.position], kind="stable")[:TOP_FILLS]
        np.testing.assert_array_equal(f.ids, top)
        assert list(f.tokens) == [loaded.tokenizer.id_to_token(int(i)) for i in top]
    r = runner.invoke(app, ["inspect", text, "--run", str(run), "--no-color"])
    assert r.exit_code == 0, r.output
    assert "predictions per [MASK]" in r.output and fills[0].tokens[0] in r.output
    r = runner.invoke(app, ["inspect", "the movie was fun", "--run", str(run)])
    assert r.exit_code == 2 and "holds no [MASK]" in r.output and "Traceback" not in r.output


def test_pretrain_is_train_with_the_mlm_task(runs):
    from semalign import tasks

    r = runner.invoke(app, ["pretrain", "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "--whole-word-masking" in r.output and "--task" not in r.output
    # --task mlm travels with the command: resuming the mlm run passes the task check.
    args = ["pretrain", "--resume", "--name", "full", "--runs-dir", str(runs["root"] / "runs")]
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and "already finished 2 epochs" in r.output, r.output
    options = {"dataset": "imdb", "data": None, "text_column": "text", "tokenizer": "word"}
    options |= {"vocab_size": 100, "max_len": 32, "seed": 3, "whole_word_masking": True}
    cfg = tasks.get("mlm").data_from_options(options)
    assert cfg.whole_word_masking and cfg.split_seed == 3 and cfg.mask_rate == 0.15


def test_mlm_exports_its_logits_graph(runs):
    r = runner.invoke(app, ["export", "onnx", "--run", str(runs["full"].run), "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["ok"] and report["outputs"] == ["logits"] and report["max_abs_diff"] <= 1e-4
