"""Tiny datasets and runs for tests (of semalign and of code built on it).

>>> import tempfile, pathlib
>>> path = write_reviews_csv(pathlib.Path(tempfile.mkdtemp()) / "r.csv", n=10)
>>> path.read_text().splitlines()[0]
'text,label'
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

GOOD = ("great", "wonderful", "superb", "loved", "brilliant", "fun")
BAD = ("awful", "boring", "terrible", "hated", "dull", "mess")
FILL = ("the", "movie", "plot", "actor", "scene", "film", "was", "and", "a", "story")


def write_reviews_csv(path: str | Path, n: int = 160, seed: int = 0) -> Path:
    """A learnable two-class CSV (``text,label``): one cue word decides the label."""
    r = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = "pos" if i % 2 == 0 else "neg"
        words = [str(w) for w in r.choice(FILL, size=r.integers(3, 12))]
        cue = GOOD if label == "pos" else BAD
        words.insert(int(r.integers(0, len(words))), str(r.choice(cue)))
        rows.append({"text": " ".join(words), "label": label})
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["text", "label"])
        w.writeheader()
        w.writerows(rows)
    return path


def tiny_request(data: str | Path, runs_dir: str | Path, **kw: Any):
    """A :class:`semalign.workflows.train.TrainRequest` for a model that trains in seconds.

    Keyword arguments: ``scoring`` (str), ``train`` (TrainConfig overrides), ``model``
    (model overrides, ``attention`` merged), anything else goes to ``TrainRequest``.
    With ``resume=`` the run's saved plan is kept and ``train`` holds the overrides.
    """
    from semalign.config import DataConfig, TrainConfig
    from semalign.workflows.train import TrainRequest

    if kw.get("resume") is not None:
        kw.pop("scoring", None), kw.pop("model", None)
        return TrainRequest(overrides=kw.pop("train", {}), runs_dir=str(runs_dir), **kw)
    train_kw = {"epochs": 2, "batch_size": 16, "lr": 3e-3, "patience": 0, "seed": 0}
    train_kw.update(kw.pop("train", {}))
    model = {"dim": 16, "mlp_ratio": 1, "dropout": 0.1}
    extra = dict(kw.pop("model", {}))
    attention = {"scoring": kw.pop("scoring", "dot"), "heads": 2, **extra.pop("attention", {})}
    model.update(extra)
    model["attention"] = attention
    return TrainRequest(
        data=DataConfig(dataset=None, data=str(data), vocab_size=64, max_len=16, max_buckets=2),
        train=TrainConfig(**train_kw),
        model=model,
        runs_dir=str(runs_dir),
        **kw,
    )


def tiny_run(folder: str | Path, name: str = "tiny", **kw: Any) -> Path:
    """Train a tiny classifier on :func:`write_reviews_csv` data; returns the run folder."""
    from semalign.workflows.train import train

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = write_reviews_csv(folder / f"{name}.csv", n=kw.pop("n", 96))
    kw.setdefault("tensorboard", False)
    return train(tiny_request(data, folder / "runs", name=name, **kw)).run


def tiny_args(*, batch_size: int = 16, epochs: int | None = None, more: tuple = ()) -> list[str]:
    """``semalign train`` options of a model small enough to train in seconds.

    Vocabulary 64, 16 tokens, width 16, 2 heads; ``epochs`` None leaves the command's
    default; ``more`` (``--no-tensorboard``, ``--json`` ...) is appended as given.
    """
    args = ["--vocab-size", "64", "--max-len", "16", "--dim", "16", "--heads", "2"]
    args += ["--batch-size", str(batch_size)]
    if epochs is not None:
        args += ["--epochs", str(epochs)]
    return [*args, *more]
