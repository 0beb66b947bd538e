"""STS Benchmark: similarity training from scratch with CoSENT, one run per scoring.

    python benchmarks/stsb.py                         # dot, cosine, l2, differential
    python benchmarks/stsb.py --scorings dot,l1       # a chosen set
    python benchmarks/stsb.py --quick                 # tiny smoke run (not saved)

Protocol: train on ``sts-train.csv``, keep the epoch with the best dev Spearman (cosine),
report test Spearman × 100 of four similarities of the pooled embeddings (cosine, −L2,
−L1, dot), as sentence-transformers' STS evaluator does. The tokenizer is trained on the
train split only; nothing is pretrained. Reads ``../shared/datasets/stsb`` (next to the
repository) unless ``--data`` says otherwise. A lexical baseline with no learning
(TF-IDF cosine, idf from the train split) is reported alongside. Published anchor without
STS fine-tuning: average GloVe embeddings, 58.0 (Reimers & Gurevych 2019, table 1).

Writes ``results/stsb.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from _common import save

ROOT = Path(__file__).resolve().parents[1]
STSB = ROOT.parent / "shared" / "datasets" / "stsb"
SCORINGS = ("dot", "cosine", "l2", "differential")
GLOVE_ANCHOR = 58.0

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


def run_one(data: Path, scoring: str, settings: dict, runs_dir: Path) -> dict:
    """Train one scoring; returns its result row (correlations × 100)."""
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
        name=scoring,
        overwrite=True,
        tensorboard=False,
    )
    wall, cpu = time.perf_counter(), time.process_time()
    result = train_pairs(req)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    log = [json.loads(x) for x in (result.run / "metrics.jsonl").read_text().splitlines()]
    dev = [r["val_spearman_cosine"] for r in log if r["split"] == "validation"]
    test = result.test.correlations
    return {
        "scoring": scoring,
        "test_spearman": {k: round(100 * c.spearman, 2) for k, c in test.items()},
        "test_pearson": {k: round(100 * c.pearson, 2) for k, c in test.items()},
        "dev_spearman_cosine_by_epoch": [round(100 * d, 2) for d in dev],
        "best_epoch": result.best_epoch,
        "epochs": result.epochs_done,
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        "train_tokens_per_second": round(result.tokens_per_second),
        "test_pairs": result.test.count,
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=STSB)
    p.add_argument("--scorings", default=",".join(SCORINGS))
    p.add_argument("--quick", action="store_true", help="300 rows a split, tiny model, not saved")
    a = p.parse_args()
    if not a.data.is_dir():
        raise SystemExit(f"STS-B not found at {a.data}: pass --data")
    tmp = Path(tempfile.mkdtemp(prefix="semalign-stsb-"))
    data = subset(a.data, 300, tmp / "data") if a.quick else a.data
    settings = QUICK if a.quick else SETTINGS
    baseline = lexical_baseline(data)
    print(json.dumps(baseline), flush=True)
    rows = []
    try:
        for scoring in a.scorings.split(","):
            rows.append(run_one(data, scoring, settings, tmp / "runs"))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not a.quick:
        payload = {
            "protocol": "train on sts-train, select the epoch on sts-dev (Spearman of cosine), "
            "report sts-test correlations x 100 of the pooled embeddings",
            "settings": settings,
            "anchor_average_glove_spearman": GLOVE_ANCHOR,
            "lexical_baseline": baseline,
            "rows": rows,
        }
        print(f"wrote {save('stsb', payload)}")
    print(f"\n{'scoring':14s} {'cosine':>7s} {'-L2':>7s} {'-L1':>7s} {'dot':>7s} {'wall s':>7s}")
    for r in rows:
        s = r["test_spearman"]
        print(
            f"{r['scoring']:14s} {s['cosine']:7.2f} {s['l2']:7.2f} {s['l1']:7.2f} {s['dot']:7.2f} "
            f"{r['wall_seconds']:7.0f}"
        )
    print(
        f"{baseline['name']:14s} {baseline['test_spearman']:7.2f}   (anchor: GloVe {GLOVE_ANCHOR})"
    )


if __name__ == "__main__":
    main()
