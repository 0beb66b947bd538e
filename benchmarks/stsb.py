"""STS Benchmark: similarity training from scratch with CoSENT, one run per scoring.

    python benchmarks/stsb.py                         # dot, cosine, l2, differential
    python benchmarks/stsb.py --scorings dot,l1       # a chosen set
    python benchmarks/stsb.py --quick                 # tiny smoke run (not saved)
    python benchmarks/stsb.py --pretrain-epochs 20 --seeds 3 --epochs 10
                                  # self-pretraining (MLM) then fine-tuning, vs scratch

Protocol: train on ``sts-train.csv``, keep the epoch with the best dev Spearman (cosine),
report test Spearman × 100 of four similarities of the pooled embeddings (cosine, −L2,
−L1, dot), as sentence-transformers' STS evaluator does. The tokenizer is trained on the
train split only; nothing is pretrained. Reads ``../shared/datasets/stsb`` (next to the
repository) unless ``--data`` says otherwise. A lexical baseline with no learning
(TF-IDF cosine, idf from the train split) is reported alongside. Published anchor without
STS fine-tuning: average GloVe embeddings, 58.0 (Reimers & Gurevych 2019, table 1).

Self-pretraining (``--pretrain-epochs N``, issue 13; Krishna et al. 2022): a masked-LM
run (the mlm task, same trunk shape) on the sentences of ``sts-train.csv`` only, both
columns, one a line (no dev or test text; the mlm run splits them 80/10/10 itself and
keeps the epoch of best validation perplexity); then, for every seed, the similarity
fine-tune from its trunk and tokenizer (``init_from``) beside the same run from scratch,
at the same fine-tune settings. Each run's epoch is chosen on dev; test is read once.
Mean ± sample std over the seeds of both arms, and the gain. Only the first scoring of
``--scorings`` is used (default dot).

Levers (issue 13, second pass):

    --pretrain-task rtd                 replaced-token detection instead of the masked LM
    --pretrain-task contrastive         unsupervised SimCSE (two dropout views, in-batch
                                        negatives; --temperature, default 0.05) instead
    --pretrain-dropout 0.3              the pretraining run's dropout (default: the
                                        fine-tune's, 0.1); not part of the trunk's shape
    --pretrain-batch-size 128           the pretraining batch (default 64; contrastive:
                                        more in-batch negatives)
    --lr 2e-3                           the fine-tune's learning rate (default 1e-3)
    --pretrain-corpus stsb,sst2,imdb:N  a bigger pretraining corpus, training text only:
                                        STS-B train sentences, SST-2 training phrases,
                                        IMDB training-split reviews cut into sentences (first N)
    --init-from RUN                     fine-tune from a pretraining run made earlier
    --encoder-lr-scale 0.1              the pretrained arm's trunk learns 10x slower than
                                        its head (the scratch arm never scales)
    --screen                            choose on dev only: sts-test is never read (the
                                        runs' test file is sts-dev, their figures dropped)
    --runs-dir DIR                      keep the runs (default: a temporary folder)
    --diagnose RUN[,RUN]                no fine-tuning: dev Spearman of the plain cosine of
                                        mean-pooled trunk states and the anisotropy, beside a
                                        random-init trunk (``stsb_pretrained_diagnosis[_<tag>]``)

Writes ``results/stsb.json``, or ``results/stsb_pretrained[_<tag>].json`` with
``--pretrain-epochs`` or ``--init-from``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import _common
import numpy as np
from _common import save

ROOT = Path(__file__).resolve().parents[1]
STSB = ROOT.parent / "shared" / "datasets" / "stsb"
SCORINGS = ("dot", "cosine", "l2", "differential")
GLOVE_ANCHOR = 58.0
#: ``--screen`` reads no test file, so not even the lexical baseline's.
SCREENED_BASELINE = {"name": "TF-IDF cosine (no learning)", "test_spearman": None}

#: One setting for every scoring (a few minutes per run on a 2-core CPU).
SETTINGS = {
    "model": {"dim": 128, "layers": 1, "mlp_ratio": 2, "dropout": 0.1, "pooling": "mean"},
    "heads": 4,
    "data": {"vocab_size": 8000, "max_len": 64, "max_buckets": 2},
    "train": {"epochs": 6, "batch_size": 32, "lr": 1e-3, "patience": 0, "seed": 0},
    "loss": "cosent",
}
QUICK = {
    "model": {"dim": 16, "layers": 1, "mlp_ratio": 1, "dropout": 0.0, "pooling": "mean"},
    "heads": 2,
    "data": {"vocab_size": 500, "max_len": 32, "max_buckets": 1},
    "train": {"epochs": 1, "batch_size": 32, "lr": 3e-3, "patience": 0, "seed": 0},
    "loss": "cosent",
}
#: The masked-LM stage of ``--pretrain-epochs`` (its trunk shape is the fine-tune's).
PRETRAIN = {"batch_size": 64, "lr": 2e-3, "patience": 0, "seed": 0}


def run_one(
    data: Path,
    scoring: str,
    settings: dict,
    runs_dir: Path,
    *,
    name: str | None = None,
    init_from: str | None = None,
) -> dict:
    """Train one scoring (from ``init_from``'s trunk if given); its row (correlations × 100)."""
    from semalign.config import TrainConfig
    from semalign.data.pairs import PairDataConfig
    from semalign.workflows.train import TrainRequest
    from semalign.workflows.train import train as train_pairs

    req = TrainRequest(
        data=PairDataConfig(data=str(data), **settings["data"]),
        task="similarity",
        loss=settings["loss"],
        train=TrainConfig(**settings["train"]),
        model={**settings["model"], "attention": {"scoring": scoring, "heads": settings["heads"]}},
        runs_dir=str(runs_dir),
        name=name or scoring,
        overwrite=True,
        tensorboard=False,
        init_from=init_from,
    )
    wall, cpu = time.perf_counter(), time.process_time()
    result = train_pairs(req)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    log = [json.loads(x) for x in (result.run / "metrics.jsonl").read_text().splitlines()]
    dev = [r["val_spearman_cosine"] for r in log if r["split"] == "validation"]
    test = result.test.correlations
    return {
        "scoring": scoring,
        "seed": settings["train"]["seed"],
        "init_from": json.loads((result.run / "config.json").read_text()).get("init_from"),
        "test_spearman": {k: round(100 * c.spearman, 2) for k, c in test.items()},
        "test_pearson": {k: round(100 * c.pearson, 2) for k, c in test.items()},
        "dev_spearman_cosine_by_epoch": [round(100 * d, 2) for d in dev],
        "encoder_lr_scale": settings["train"].get("encoder_lr_scale", 1.0),
        "best_epoch": result.best_epoch,
        "epochs": result.epochs_done,
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        "train_tokens_per_second": round(result.tokens_per_second),
        "test_pairs": result.test.count,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


_WORD = re.compile(r"\w+")


def lexical_baseline(data: Path) -> dict:
    """Test Spearman × 100 of TF-IDF cosine (lower-cased words, idf from train)."""
    from semalign.data.pair_readers import load_pair_splits
    from semalign.data.pairs import PairDataConfig
    from semalign.metrics.correlation import pearson, spearman

    splits = load_pair_splits(PairDataConfig(data=str(data)))
    docs = [set(_WORD.findall(t.lower())) for t in splits.train.texts()]
    df = Counter(w for d in docs for w in d)
    n = len(docs)

    def vec(text: str) -> dict[str, float]:
        tf = Counter(_WORD.findall(text.lower()))
        return {w: c * math.log((1 + n) / (1 + df[w])) + c for w, c in tf.items()}

    def cos(a: dict, b: dict) -> float:
        dot = sum(v * b.get(w, 0.0) for w, v in a.items())
        na = math.sqrt(sum(v * v for v in a.values()))
        nb = math.sqrt(sum(v * v for v in b.values()))
        return dot / (na * nb) if na and nb else 0.0

    test = splits.test
    sims = np.array([cos(vec(a), vec(b)) for a, b in zip(test.texts_a, test.texts_b, strict=True)])
    return {
        "name": "TF-IDF cosine (no learning)",
        "test_spearman": round(100 * spearman(sims, test.scores), 2),
        "test_pearson": round(100 * pearson(sims, test.scores), 2),
    }


def subset(data: Path, rows: int, folder: Path) -> Path:
    """The first ``rows`` lines of each split file, in ``folder`` (for quick runs)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("train", "dev", "test"):
        lines = (data / f"sts-{name}.csv").read_text(encoding="utf-8").splitlines()[:rows]
        (folder / f"sts-{name}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def screen_data(data: Path, folder: Path) -> Path:
    """``data``'s train and dev files in ``folder``, with dev standing in as the test file.

    ``--screen`` trains on this folder: the runs' end-of-training "test" evaluation (and
    their ``metrics.jsonl`` test line) is of sts-dev again, so sts-test is never read and
    no test figure of a screen exists anywhere.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in (("train", "train"), ("dev", "dev"), ("test", "dev")):
        shutil.copyfile(data / f"sts-{source}.csv", folder / f"sts-{name}.csv")
    return folder


def train_sentences(data: Path, path: Path) -> Path:
    """The training split's sentences (both columns, first-seen order), one a line."""
    from semalign.data.pair_readers import load_pair_splits
    from semalign.data.pairs import PairDataConfig

    texts = load_pair_splits(PairDataConfig(data=str(data))).train.texts()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(" ".join(t.split()) for t in texts) + "\n", encoding="utf-8")
    return path


#: Pretraining corpora (``--pretrain-corpus``): training text only, never dev or test.
CORPORA = ("stsb", "sst2", "imdb")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def corpus_lines(data: Path, source: str, datasets: Path) -> list[str]:
    """One source's training text, one sentence or phrase a line.

    ``stsb``: the sentences of ``sts-train.csv``; ``sst2``: the SST-2 training phrases
    (``datasets/sst2/sentiment-train``); ``imdb``: the built-in IMDB reviews of
    the classification training split (seed 0), cut into sentences. ``source:N`` keeps
    the first ``N`` lines.
    """
    name, _, cap = source.partition(":")
    if name == "stsb":
        from semalign.data.pair_readers import load_pair_splits
        from semalign.data.pairs import PairDataConfig

        lines = load_pair_splits(PairDataConfig(data=str(data))).train.texts()
    elif name == "sst2":
        path = datasets / "sst2" / "sentiment-train"
        if not path.is_file():
            raise SystemExit(f"SST-2 not found at {path}: leave sst2 out of --pretrain-corpus")
        lines = [x.rsplit("\t", 1)[0] for x in path.read_text(encoding="utf-8").splitlines()]
    elif name == "imdb":
        from semalign.data import load_builtin, split_examples

        reviews = split_examples(load_builtin("imdb"), seed=0).train.texts
        lines = [s for r in reviews for s in _SENTENCE_END.split(r.replace("<br />", " "))]
    else:
        raise SystemExit(f"unknown corpus {name!r} in --pretrain-corpus; choose from {CORPORA}")
    lines = [" ".join(x.split()) for x in lines if x.strip()]
    return lines[: int(cap)] if cap else lines


def pretrain_corpus(
    data: Path, sources: list[str], path: Path, datasets: Path
) -> tuple[Path, dict]:
    """The sources' lines in one file (first-seen order, duplicates dropped); counts."""
    if sources == ["stsb"]:
        return train_sentences(data, path), {}
    counts, lines = {}, {}
    for source in sources:
        mine = corpus_lines(data, source, datasets)
        counts[source] = len(mine)
        lines.update(dict.fromkeys(mine))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, counts


def pretrain(
    data: Path,
    settings: dict,
    epochs: int,
    scoring: str,
    runs_dir: Path,
    *,
    task: str = "mlm",
    sources: tuple[str, ...] = ("stsb",),
    datasets: Path = STSB.parent,
    task_options: dict | None = None,
    dropout: float | None = None,
    batch_size: int | None = None,
) -> dict:
    """The pretraining run (``task``: mlm, rtd or contrastive) on training text only; its row.

    ``task_options`` are fields of the task's data config (contrastive: ``temperature``);
    ``dropout`` replaces the model's (None: the fine-tune's); ``batch_size`` replaces
    ``PRETRAIN``'s (None: 64; for the contrastive task, the in-batch negatives).

    The row is also written into the run folder (``stsb_pretrain.json``), so a later
    invocation can fine-tune from the run (``--init-from``) and still say what it was.
    """
    from semalign import tasks
    from semalign.config import TrainConfig
    from semalign.tracking import read_metrics
    from semalign.workflows.train import TrainRequest, train

    name = "-".join(sources).replace(":", "")
    name = "sts-train-sentences" if name == "stsb" else name
    corpus, counts = pretrain_corpus(data, list(sources), runs_dir / f"{name}.txt", datasets)
    stage = {**PRETRAIN, **({} if batch_size is None else {"batch_size": batch_size})}
    wall, cpu = time.perf_counter(), time.process_time()
    result = train(
        TrainRequest(
            task=task,
            data=tasks.get(task).data_config(
                dataset=None, data=str(corpus), **settings["data"], **(task_options or {})
            ),
            train=TrainConfig(**stage, epochs=epochs),
            model={
                **settings["model"],
                **({} if dropout is None else {"dropout": dropout}),
                "attention": {"scoring": scoring, "heads": settings["heads"]},
            },
            runs_dir=str(runs_dir),
            name=f"{task}-{epochs}" + ("" if name == "sts-train-sentences" else f"-{name}"),
            overwrite=True,
            tensorboard=False,
        )
    )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    val = [r for r in read_metrics(result.run / "metrics.jsonl") if r["split"] == "validation"]
    settings = {**stage, "epochs": epochs}
    if task != "mlm" or list(sources) != ["stsb"]:
        settings = {**settings, "task": task, "corpus": list(sources), **(task_options or {})}
    if dropout is not None:
        settings = {**settings, "dropout": dropout}
    row = {
        "stage": "pretrain",
        "run": str(result.run),
        "sentences": len(corpus.read_text(encoding="utf-8").splitlines()),
        **({"lines_per_source": counts} if counts else {}),
        "settings": settings,
        **_pretrain_measures(task, result.test, val),
        "best_epoch": result.best_epoch,
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    (result.run / "stsb_pretrain.json").write_text(json.dumps(row, indent=1))
    return row


def _pretrain_measures(task: str, test, val: list[dict]) -> dict:
    """The pretraining run's curves and test figures (perplexity / accuracy, or RTD's)."""
    if task == "mlm":
        return {
            "test_perplexity": round(test.perplexity, 2),
            "test_masked_token_accuracy": round(100 * test.accuracy, 2),
            "val_perplexity_by_epoch": [round(r["val_perplexity"], 2) for r in val],
            "val_masked_token_accuracy_by_epoch": [round(100 * r["val_accuracy"], 2) for r in val],
        }
    keys = ("val_loss", "val_generator_accuracy", "val_detection_auc", "val_accuracy")
    keys += ("val_positive_cosine", "val_negative_cosine")
    curves = {f"{k}_by_epoch": [round(r[k], 4) for r in val] for k in keys if val and k in val[0]}
    figures = {k: v for k, v in test.to_dict().items() if isinstance(v, float)}
    return {"test": {k: round(v, 4) for k, v in figures.items()}, **curves}


def arms_summary(rows: list[dict]) -> dict:
    """Mean ± sample std over seeds of dev and test Spearman (cosine) per arm, and the gain."""
    out = {}
    for arm in ("scratch", "pretrained"):
        mine = [r for r in rows if r.get("arm") == arm]
        if not mine:
            continue
        out[arm] = {"seeds": [r["seed"] for r in mine]}
        measures = [("dev", [max(r["dev_spearman_cosine_by_epoch"]) for r in mine])]
        if all("test_spearman" in r for r in mine):
            measures.append(("test", [r["test_spearman"]["cosine"] for r in mine]))
        for key, values in measures:
            out[arm][f"{key}_spearman_mean"] = round(statistics.fmean(values), 2)
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            out[arm][f"{key}_spearman_std"] = round(std, 2)
    if {"scratch", "pretrained"} <= out.keys() and all(
        "test_spearman_mean" in out[arm] for arm in ("scratch", "pretrained")
    ):
        out["test_gain_points"] = round(
            out["pretrained"]["test_spearman_mean"] - out["scratch"]["test_spearman_mean"], 2
        )
    return out


def reused_pretrain(run: Path) -> dict:
    """The row of a pretraining run made earlier (``--init-from``), as that run saved it."""
    saved = run / "stsb_pretrain.json"
    if not (run / "config.json").is_file():
        raise SystemExit(f"--init-from {run}: not a run folder (no config.json)")
    row = json.loads(saved.read_text()) if saved.is_file() else {"settings": None}
    return {**row, "stage": "pretrain", "run": str(run), "reused": True}


def _screened(row: dict) -> dict:
    """``row`` without its "test" figures (``--screen``: they are of dev, see
    :func:`screen_data`; settings are chosen on dev only)."""
    return {k: v for k, v in row.items() if not k.startswith("test_")}


def pretrained_arms(a, data: Path, settings: dict, runs_dir: Path, write) -> dict:
    """``--pretrain-epochs`` / ``--init-from``: the pretraining run (made, or reused),
    then both arms per seed; the results payload.

    The pretrained arm fine-tunes with ``--encoder-lr-scale`` (the scratch arm never:
    its trunk is not pretrained). ``write(payload)`` is called after every run, so a
    stopped benchmark keeps its rows.
    """
    scoring = a.scorings.split(",")[0]
    if a.init_from:
        mlm = reused_pretrain(a.init_from.resolve())
    else:
        sources = tuple(a.pretrain_corpus.split(","))
        mlm = pretrain(
            data,
            settings,
            a.pretrain_epochs,
            scoring,
            runs_dir,
            task=a.pretrain_task,
            sources=sources,
            datasets=a.data.parent,
            task_options={"temperature": a.temperature}
            if a.pretrain_task == "contrastive"
            else None,
            dropout=a.pretrain_dropout,
            batch_size=a.pretrain_batch_size,
        )
    print(json.dumps(mlm), flush=True)
    rows = []
    protocol = (
        f"{a.pretrain_task if not a.init_from else 'the given run'} pretraining on training "
        "text only (never sts-dev or sts-test), then similarity fine-tune from its trunk "
        "(init_from) beside the same run from scratch, per seed; epoch chosen on sts-dev "
        "(Spearman of cosine), sts-test correlations x 100 read once"
    )
    if a.screen:
        protocol += (
            "; SCREENING: sts-test never read (the runs' test file is sts-dev), "
            "settings chosen on dev"
        )

    def payload() -> dict:
        return {
            "protocol": protocol,
            "settings": settings,
            "pretrain": [mlm],
            "rows": rows,
            "summary": arms_summary(rows),
        }

    for seed in a.seeds:
        tuned = {**settings, "train": {**settings["train"], "seed": seed}}
        scaled = {**tuned, "train": {**tuned["train"], "encoder_lr_scale": a.encoder_lr_scale}}
        arms = (("scratch", None, tuned), ("pretrained", mlm["run"], scaled))
        for arm, init, arm_settings in arms[1:] if a.no_scratch else arms:
            row = run_one(
                data, scoring, arm_settings, runs_dir, name=f"{arm}-seed{seed}", init_from=init
            )
            rows.append({"arm": arm, **(_screened(row) if a.screen else row)})
            print(json.dumps(rows[-1]), flush=True)
            write(payload())
    return payload()


def _pooled_states(encoder, tokenizer, texts: list[str], max_len: int) -> np.ndarray:
    """``[N, dim]`` mean-pooled trunk states of ``texts`` (eval mode, no head)."""
    import jax.numpy as jnp

    from semalign.data import encode_texts
    from semalign.nn.pooling import mean_pool

    seqs = encode_texts(tokenizer, texts, max_len=max_len)
    rows = []
    for start in range(0, len(seqs), 256):
        chunk = seqs[start : start + 256]
        ids = np.zeros((len(chunk), max(len(s) for s in chunk)), np.int32)
        for i, s in enumerate(chunk):
            ids[i, : len(s)] = s
        x, valid, _ = encoder(jnp.asarray(ids))
        rows.append(np.asarray(mean_pool(x.astype(jnp.float32), valid)))
    return np.concatenate(rows)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def diagnose(data: Path, runs: list[tuple[str, str | None]], seed: int = 0) -> list[dict]:
    """Plain cosine of mean-pooled trunk states on sts-dev (no fine-tuning) and anisotropy.

    ``runs``: ``(label, run folder)``; a run folder's trunk and tokenizer are read from
    its served checkpoint; ``None`` is a random-init trunk: the similarity model exactly
    as the scratch arm builds it (seed 0), with the tokenizer of the first run given.
    Anisotropy: mean cosine over 2,000 random pairs of different dev sentences (0 for
    isotropic states, 1 when every sentence points the same way); also with the mean
    embedding removed, and the share of variance along the first principal direction.
    """
    from flax import nnx

    from semalign import tasks
    from semalign.data.pair_readers import load_pair_splits
    from semalign.data.pairs import PairDataConfig
    from semalign.metrics.correlation import spearman
    from semalign.workflows.loading import load_run

    dev = load_pair_splits(PairDataConfig(data=str(data))).validation
    texts = dev.texts()
    index = {t: i for i, t in enumerate(texts)}
    a = np.array([index[t] for t in dev.texts_a])
    b = np.array([index[t] for t in dev.texts_b])
    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, len(texts), (2, 2000))
    i, j = i[i != j], j[i != j]
    out, first = [], None
    for label, run in runs:
        if run is not None:
            loaded = load_run(run)
            first = first or loaded
            encoder, tokenizer, max_len = loaded.model.encoder, loaded.tokenizer, loaded.max_len
            checkpoint = loaded.checkpoint
        else:
            model = (
                tasks.get("similarity")
                .load()
                .build(first.model_config, rngs=nnx.Rngs(params=0, dropout=1))
            )
            encoder, tokenizer, max_len, checkpoint = (
                model.encoder,
                first.tokenizer,
                first.max_len,
                "random init (seed 0)",
            )
        encoder.eval()
        pooled = _pooled_states(encoder, tokenizer, texts, max_len)
        u = _unit(pooled)
        c = _unit(pooled - pooled.mean(0))
        sv = np.linalg.svd(pooled - pooled.mean(0), compute_uv=False) ** 2
        out.append(
            {
                "trunk": label,
                "run": run,
                "checkpoint": checkpoint,
                "dev_spearman_plain_cosine": round(
                    100 * spearman(np.sum(u[a] * u[b], 1), dev.scores), 2
                ),
                "dev_spearman_centred_cosine": round(
                    100 * spearman(np.sum(c[a] * c[b], 1), dev.scores), 2
                ),
                "anisotropy_mean_cosine": round(float(np.mean(np.sum(u[i] * u[j], 1))), 3),
                "top_direction_variance_share": round(float(sv[0] / sv.sum()), 3),
            }
        )
    return out


def _seeds(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s] if "," in text else list(range(int(text)))


def merged(name: str, payload: dict) -> dict:
    """``payload`` with the rows another invocation saved under ``name`` at the same
    settings (other seeds, read just before writing, so runs in parallel add up)."""
    path = _common.RESULTS / f"{name}.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    if isinstance(old.get("pretrain"), dict):  # one invocation's file, before the merge
        old["pretrain"] = [old["pretrain"]]
    same = old.get("settings") == payload["settings"] and [
        r["settings"] for r in old.get("pretrain", [])[:1]
    ] == [r["settings"] for r in payload["pretrain"][:1]]
    if not same:
        return payload
    mine = {(r["arm"], r["seed"]) for r in payload["rows"]}
    runs = {r["run"] for r in payload["pretrain"]}
    rows = [r for r in old["rows"] if (r["arm"], r["seed"]) not in mine] + payload["rows"]
    rows.sort(key=lambda r: (r["seed"], r["arm"] != "scratch"))
    return {
        **payload,
        "pretrain": [r for r in old["pretrain"] if r["run"] not in runs] + payload["pretrain"],
        "rows": rows,
        "summary": arms_summary(rows),
    }


def _table(rows: list[dict], baseline: dict) -> None:
    print(f"\n{'scoring':14s} {'cosine':>7s} {'-L2':>7s} {'-L1':>7s} {'dot':>7s} {'wall s':>7s}")
    for r in rows:
        if "test_spearman" not in r:  # --screen
            dev = max(r["dev_spearman_cosine_by_epoch"])
            print(f"{r['scoring']} {r.get('arm', '')} {r['seed']}: dev {dev:.2f} (test not read)")
            continue
        s = r["test_spearman"]
        label = f"{r['scoring']} {r['arm']} {r['seed']}" if "arm" in r else r["scoring"]
        print(
            f"{label:14s} {s['cosine']:7.2f} {s['l2']:7.2f} {s['l1']:7.2f} {s['dot']:7.2f} "
            f"{r['wall_seconds']:7.0f}"
        )
    if baseline["test_spearman"] is not None:
        print(
            f"{baseline['name']:14s} {baseline['test_spearman']:7.2f}   "
            f"(anchor: GloVe {GLOVE_ANCHOR})"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=STSB)
    p.add_argument("--scorings", default=",".join(SCORINGS))
    p.add_argument("--quick", action="store_true", help="300 rows a split, tiny model, not saved")
    p.add_argument("--pretrain-epochs", type=int, help="masked-LM self-pretraining epochs")
    p.add_argument(
        "--seeds",
        type=_seeds,
        default=[0],
        help="K: fine-tune seeds 0..K-1; or a list: 1,2 (one seed: 2,)",
    )
    p.add_argument("--epochs", type=int, help="fine-tune epochs (default 6; --quick 1)")
    p.add_argument("--no-scratch", action="store_true", help="only the pretrained arm")
    p.add_argument("--tag", help="with --pretrain-epochs: results/stsb_pretrained_<tag>.json")
    p.add_argument("--pretrain-task", choices=("mlm", "rtd", "contrastive"), default="mlm")
    p.add_argument(
        "--temperature", type=float, default=0.05, help="contrastive: InfoNCE temperature"
    )
    p.add_argument("--pretrain-dropout", type=float, help="pretraining dropout (default 0.1)")
    p.add_argument("--pretrain-batch-size", type=int, help="pretraining batch (default 64)")
    p.add_argument("--lr", type=float, help="fine-tune learning rate (default 1e-3; --quick 3e-3)")
    p.add_argument(
        "--pretrain-corpus", default="stsb", help="stsb,sst2,imdb (training text; imdb:N = N lines)"
    )
    p.add_argument("--init-from", type=Path, help="fine-tune from this pretraining run instead")
    p.add_argument(
        "--encoder-lr-scale", type=float, default=1.0, help="pretrained arm's trunk lr / head lr"
    )
    p.add_argument("--screen", action="store_true", help="dev only: sts-test never read")
    p.add_argument("--runs-dir", type=Path, help="keep the runs here (default: a temp folder)")
    p.add_argument(
        "--diagnose",
        help="runs (comma-separated): dev Spearman of plain cosine of mean-pooled trunk "
        "states and anisotropy, beside a random-init trunk "
        "(writes results/stsb_pretrained_diagnosis[_<tag>].json)",
    )
    p.add_argument("--results-dir", type=Path, help="write the JSON (and --quick's runs) here")
    a = p.parse_args()
    if not a.data.is_dir():
        raise SystemExit(f"STS-B not found at {a.data}: pass --data")
    if not a.seeds:
        raise SystemExit("--seeds 0 runs nothing: give a count >= 1 or a list (0,1)")
    if a.pretrain_epochs is not None and a.pretrain_epochs < 1:
        raise SystemExit(f"--pretrain-epochs must be >= 1, got {a.pretrain_epochs}")
    if a.results_dir:
        _common.RESULTS = a.results_dir
    if a.diagnose:
        found = [Path(r) for r in a.diagnose.split(",")]
        named = [(r.name, str(r)) for r in found]
        rows = diagnose(a.data, [named[0], ("random init", None), *named[1:]])
        for row in rows:
            print(json.dumps(row), flush=True)
        tag = f"_{a.tag}" if a.tag else ""
        print(f"wrote {save('stsb_pretrained_diagnosis' + tag, {'rows': rows})}")
        return
    tmp = Path(tempfile.mkdtemp(prefix="semalign-stsb-"))
    data = subset(a.data, 300, tmp / "data") if a.quick else a.data
    if a.screen:  # sts-test is never read: dev stands in as the runs' test file
        data = screen_data(data, tmp / "screen")
    settings = json.loads(json.dumps(QUICK if a.quick else SETTINGS))
    if a.epochs:
        settings["train"]["epochs"] = a.epochs
    if a.lr:
        settings["train"]["lr"] = a.lr
    if a.encoder_lr_scale != 1.0:
        settings["pretrained_arm"] = {"encoder_lr_scale": a.encoder_lr_scale}
    # --quick keeps its runs beside a --results-dir (tests read their configs).
    runs = a.results_dir / "runs" if a.quick and a.results_dir else tmp / "runs"
    runs = a.runs_dir or runs
    baseline = SCREENED_BASELINE if a.screen else lexical_baseline(data)
    print(json.dumps(baseline), flush=True)
    pretraining = bool(a.pretrain_epochs or a.init_from)
    name = "stsb_pretrained" + (f"_{a.tag}" if a.tag else "") if pretraining else "stsb"
    name += "_quick" if a.quick and pretraining else ""
    saving = bool(a.results_dir or not a.quick)

    def write(payload: dict) -> dict:
        payload = merged(name, {"lexical_baseline": baseline, **payload})
        if saving:
            save(name, payload)
        return payload

    rows, payload = [], None
    try:
        if pretraining:
            payload = write(pretrained_arms(a, data, settings, runs, write))
            rows = payload["rows"]
        else:
            for scoring in a.scorings.split(","):
                row = run_one(data, scoring, settings, runs)
                rows.append(_screened(row) if a.screen else row)
                print(json.dumps(rows[-1]), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if payload and saving:
        print(f"wrote {_common.RESULTS / name}.json")
        print(json.dumps(payload["summary"]))
    elif not a.quick:
        payload = {
            "protocol": "train on sts-train, select the epoch on sts-dev (Spearman of cosine), "
            "report sts-test correlations x 100 of the pooled embeddings",
            "settings": settings,
            "anchor_average_glove_spearman": GLOVE_ANCHOR,
            "lexical_baseline": baseline,
            "rows": rows,
        }
        print(f"wrote {save(name, payload)}")
    _table(rows, baseline)


if __name__ == "__main__":
    main()
