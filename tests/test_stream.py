"""A streamed corpus (causal-lm, mlm): the same splits, fingerprints, tokenizer and batches
as the in-memory path; flat memory on a file of tens of MB; two processes read disjoint
blocks that rebuild the one-process batches; bad sources are one line (exit 2); a streamed
run trains like the in-memory one and resumes exactly."""

import json
import os
import tracemalloc

import grain  # noqa: F401 (loaded before memory is measured: its modules are not data)
import numpy as np
import pytest
from typer.testing import CliRunner

from semalign import tasks
from semalign.cli import app
from semalign.config import TrainConfig
from semalign.data import train_tokenizer
from semalign.data.corpus import load_corpus
from semalign.data.line_index import index_texts
from semalign.data.stream import StreamedTexts, load_streamed, streams
from semalign.data.stream_batches import process_block
from semalign.tasks.mlm.spec import MaskedCorpusConfig
from semalign.testing import tiny_args

runner = CliRunner()
SPLITS = ("train", "validation", "test")
WORDS = ["cat", "dog", "sat", "ran", "the", "a", "big", "small", "über", "naïve", "on", "mat"]


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, rng.integers(1, 20))) for _ in range(n)]


def _corpus_file(path, n=300):
    lines = _texts(n)
    lines[5] = lines[3]  # a repeat: dropped, first kept
    lines[7] = "   "  # blank: skipped
    lines[9] = "two\rtexts"  # str.splitlines cuts here too
    path.write_text("\ufeff" + "\r\n".join(lines) + "\n", encoding="utf-8")
    return path


def _cfg(path, **kw):
    return MaskedCorpusConfig(
        dataset=None, data=str(path), vocab_size=40, max_len=12, **{"max_buckets": 2, **kw}
    )


@pytest.fixture(params=["txt", "jsonl", "folder"])
def source(request, tmp_path):
    if request.param == "txt":
        return _corpus_file(tmp_path / "c.txt")
    texts = _texts(120, seed=1)
    texts[4] = texts[2]
    if request.param == "jsonl":
        path = tmp_path / "c.jsonl"
        rows = [json.dumps({"id": i, "body": t}) for i, t in enumerate(texts)]
        path.write_text("\n".join(rows[:50]) + "\n\n" + "\n".join(rows[50:]), encoding="utf-8")
        return path
    folder = tmp_path / "docs"
    for i, t in enumerate(texts):
        (folder / f"g{i % 3}").mkdir(parents=True, exist_ok=True)
        (folder / f"g{i % 3}" / f"{i:03d}.txt").write_text(f"  {t}\n", encoding="utf-8")
    return folder


def test_streamed_splits_and_fingerprints_are_the_in_memory_ones(source):
    cfg = _cfg(source, text_column="body")
    mem, streamed = load_corpus(cfg), load_streamed(cfg)
    assert streamed.duplicates_removed == mem.duplicates_removed > 0
    task = tasks.get("mlm").load()
    for split in SPLITS:
        assert list(getattr(streamed, split)) == list(getattr(mem, split).texts), split
    assert task.fingerprint(cfg, {s: getattr(streamed, s) for s in SPLITS}) == task.fingerprint(
        cfg, {s: getattr(mem, s) for s in SPLITS}
    )
    assert len(task.load_all(_cfg(source, text_column="body", stream=True))) == len(
        task.load_all(_cfg(source, text_column="body", stream=False))
    )


def _encoded(task, splits, tokenizer):
    return task.encode(splits.train, tokenizer, (), 12)


@pytest.mark.parametrize("name", ["mlm", "rtd", "causal-lm"])
def test_streamed_batches_are_the_in_memory_batches(tmp_path, name):
    path = _corpus_file(tmp_path / "c.txt")
    cfg = _cfg(path, whole_word_masking=True)
    task = tasks.get(name).load()
    mem, streamed = load_corpus(cfg), load_streamed(cfg)
    tok = train_tokenizer(task.corpus(streamed.train), vocab_size=40, kind="wordpiece")
    same = train_tokenizer(task.corpus(mem.train), vocab_size=40, kind="wordpiece")
    assert tok.get_vocab() == same.get_vocab()
    enc_mem, enc_stream = _encoded(task, mem, tok), _encoded(task, streamed, tok)
    assert enc_stream.real_tokens == enc_mem.real_tokens
    for shuffle, epoch in ((True, 0), (True, 3), (False, 0)):
        a = task.batches(enc_mem, cfg, batch_size=16, shuffle=shuffle, seed=5, epoch=epoch)
        b = task.batches(enc_stream, cfg, batch_size=16, shuffle=shuffle, seed=5, epoch=epoch)
        assert isinstance(a, list) and not isinstance(b, list) and len(b) == len(a)
        for x, y in zip(a, b, strict=True):  # iterating b makes its batches anew
            for u, v in zip(x, y, strict=True):
                np.testing.assert_array_equal(u, v)


def test_two_processes_read_disjoint_blocks_that_rebuild_the_batches(tmp_path, monkeypatch):
    from semalign.tasks import corpus_task

    path = _corpus_file(tmp_path / "c.txt")
    cfg = _cfg(path)
    task = tasks.get("causal-lm").load()
    splits = load_streamed(cfg)
    tok = train_tokenizer(task.corpus(splits.train), vocab_size=40)
    whole = list(task.batches(_encoded(task, splits, tok), cfg, batch_size=8, shuffle=True))
    lengths = task.lengths(_encoded(task, splits, tok).sequences)  # one process counts
    read, per_process = {}, {}
    for index in (0, 1):
        enc = _encoded(task, splits, tok)
        enc.sequences.lengths = lengths
        original = enc.sequences.read
        read[index] = []
        monkeypatch.setattr(
            enc.sequences,
            "read",
            lambda ks, r=read[index], f=original: (r.extend(int(k) for k in ks), f(ks))[1],
        )
        monkeypatch.setattr(corpus_task, "_process", lambda i=index: (i, 2))
        per_process[index] = list(task.batches(enc, cfg, batch_size=8, shuffle=True))
    a, b = set(read[0]), set(read[1])
    assert len(a) == len(read[0]) and len(b) == len(read[1])  # each row read once
    assert not a & b and a | b == set(range(len(splits.train)))
    for full, p0, p1 in zip(whole, per_process[0], per_process[1], strict=True):
        np.testing.assert_array_equal(np.concatenate([p0.ids[:4], p1.ids[4:]]), full.ids)
        np.testing.assert_array_equal(
            np.concatenate([p0.weights[:4], p1.weights[4:]]), full.weights
        )
        assert not p0.weights[4:].any() and not p1.weights[:4].any()
    assert process_block(8, 1, 2) == (4, 4)
    with pytest.raises(ValueError):
        process_block(6, 0, 4)


def test_streaming_a_file_of_tens_of_mb_keeps_memory_flat(tmp_path):
    rng = np.random.default_rng(0)
    vocab = np.array([f"w{i}" for i in range(500)])
    path = tmp_path / "big.txt"
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(30):
            block = rng.choice(vocab, (1000, 150))
            f.write("\n".join(" ".join(row) for row in block) + "\n")
    size = path.stat().st_size
    assert size > 20e6
    cfg = MaskedCorpusConfig(dataset=None, data=str(path), vocab_size=200, max_len=32)
    assert not streams(cfg) and streams(MaskedCorpusConfig(**{**cfg.__dict__, "stream": True}))
    task = tasks.get("mlm").load()
    tracemalloc.start()
    try:
        splits = load_streamed(cfg)
        tok = train_tokenizer(
            (t for _, t in zip(range(2000), task.corpus(splits.train), strict=False)),
            vocab_size=200,
            kind="word",
        )
        enc = task.encode(splits.validation, tok, (), 32)
        batches = task.batches(enc, cfg, batch_size=64, shuffle=False)
        tokens = sum(int(b.weights.sum()) for b in batches)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(splits.train) == 24_000 and tokens == len(splits.validation) == 3_000
    # In memory the texts alone would take more than the file; the index takes 28 bytes a
    # text (under 1 MB here), a batch and the tokenizer's sample a few MB more.
    assert peak < size / 4, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB file"


def _train(args, tmp_path):
    return runner.invoke(app, ["pretrain", *args, "--runs-dir", str(tmp_path / "runs")])


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("bad.jsonl", '{"text": "a"}\n{"text": \n', "line 2"),
        ("empty.txt", "\n  \n", "holds no text"),
        ("latin.txt", b"caf\xe9 au lait\n", "not valid UTF-8"),
        ("table.csv", "text\na\nb\n", "streams from a .txt or .jsonl"),
        ("docs", None, "holds no .txt files"),
    ],
)
def test_bad_streamed_sources_are_one_line_exit_2(tmp_path, name, body, message):
    path = tmp_path / name
    if body is None:
        path.mkdir()
    elif isinstance(body, bytes):
        path.write_bytes(body)
    else:
        path.write_text(body, encoding="utf-8")
    r = _train(["--data", str(path), "--stream", *tiny_args(epochs=1)], tmp_path)
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1, r.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a folder whatever its mode")
def test_an_unreadable_folder_is_one_line(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    (folder / "a.txt").write_text("a text", encoding="utf-8")
    (folder / "a.txt").chmod(0)
    with pytest.raises(Exception, match="cannot read"):
        index_texts(folder)


def _request(path, runs, name, stream, **kw):
    from semalign.workflows.train import TrainRequest

    return TrainRequest(
        task="mlm",
        data=_cfg(path, stream=stream, max_buckets=1),  # one shape: one compilation
        train=TrainConfig(epochs=2, batch_size=16, lr=1e-2, patience=0, seed=0),
        model={"dim": 8, "mlp_ratio": 1, "dropout": 0.1, "attention": {"heads": 2}},
        runs_dir=str(runs),
        name=name,
        tensorboard=False,
        **kw,
    )


def test_a_streamed_run_trains_as_in_memory_and_resumes_exactly(tmp_path):
    from semalign.workflows.evaluate import EvaluationRequest, evaluate
    from semalign.workflows.train import TrainRequest, train

    path, runs = _corpus_file(tmp_path / "c.txt", n=160), tmp_path / "runs"
    mem = train(_request(path, runs, "mem", False))
    full = train(_request(path, runs, "full", True))
    train(_request(path, runs, "split", True, stop_after=1))
    resumed = train(TrainRequest(runs_dir=str(runs), resume=str(runs / "split"), tensorboard=False))

    def losses(run):
        lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        return [(x["train_loss"], x["val_loss"]) for x in lines if x["split"] == "validation"]

    assert losses(full.run) == losses(mem.run) == losses(resumed.run)
    assert full.test.to_dict() == mem.test.to_dict() == resumed.test.to_dict()
    assert json.loads((full.run / "data.json").read_text()) == json.loads(
        (mem.run / "data.json").read_text()
    )
    assert json.loads((full.run / "config.json").read_text())["data"]["stream"] is True
    again = evaluate(EvaluationRequest(run=str(full.run)))
    assert again.report.to_dict() == full.test.to_dict()
    assert isinstance(load_streamed(_cfg(path)).train, StreamedTexts)


def test_evaluating_other_data_streams_by_its_own_size(tmp_path):
    from types import SimpleNamespace

    task = tasks.get("mlm").load()
    run_data = _cfg(_corpus_file(tmp_path / "c.txt"), stream=True)
    other = SimpleNamespace(
        data=str(tmp_path / "o.csv"), text_column="text", dataset=None, split=None
    )
    cfg, split = task.evaluation_data(run_data, other)
    assert cfg.stream is None and not streams(cfg) and split == "all"
    builtin = SimpleNamespace(data=None, text_column="text", dataset="imdb", split=None)
    cfg, split = task.evaluation_data(run_data, builtin)
    assert cfg.data is None and cfg.stream is None and split == "test"


def test_evaluating_a_streamed_split_keeps_no_batch_token_ids(tmp_path, monkeypatch):
    import gc
    import weakref

    from flax import nnx

    from semalign.config import ModelConfig
    from semalign.workflows.evaluate import IN_FLIGHT, evaluate_batches
    from semalign.workflows.steps import Steps

    cfg = _cfg(_corpus_file(tmp_path / "c.txt", n=600))
    task = tasks.get("mlm").load()
    splits = load_streamed(cfg)
    tok = train_tokenizer(task.corpus(splits.train), vocab_size=40, kind="wordpiece")
    enc = task.encode(splits.train, tok, (), 12)
    batches = task.batches(enc, cfg, batch_size=4, shuffle=False)
    mcfg = ModelConfig(vocab_size=tok.get_vocab_size(), dim=8, mlp_ratio=1, max_len=12)
    model = task.build(task.model_config(mcfg.replace(attention={"heads": 2})), rngs=nnx.Rngs(0))
    steps = Steps(model, None, outputs=task.outputs("default", cfg))
    alive = []

    def tracked():
        for b in batches:
            alive.append(weakref.ref(b.ids))
            yield b

    report = task.report
    held = []

    def counting(pending, classes):
        gc.collect()
        held.append(sum(r() is not None for r in alive))
        return report(pending, classes)

    monkeypatch.setattr(task, "report", counting)
    got = evaluate_batches(task, steps, tracked())
    assert len(alive) == len(batches) > 3 * IN_FLIGHT
    # At most the last batch (still the loop's variable); the old list of (batch, outputs)
    # held every batch's ids.
    assert len(held) == 1 and held[0] <= 1
    want = report([(b, steps.evaluate(b)) for b in batches], ())
    assert got.to_dict() == pytest.approx(want.to_dict(), rel=1e-6)
