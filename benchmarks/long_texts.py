"""Long texts on IMDB: test accuracy of one run under each way of reading a long review.

    python benchmarks/long_texts.py --run runs/imdb-dot        # a trained IMDB run
    python benchmarks/long_texts.py --quick                    # tiny smoke run (not saved)

The same checkpoint (the served one) reads its own test split four ways (the
probabilities ``semalign evaluate --truncation`` / ``--long-texts chunks`` uses):
cut to ``max_len`` keeping the head, the tail, or a quarter head + the rest tail (Sun et
al. 2019), and ``--long-texts chunks`` (the mean probabilities of consecutive
``max_len`` windows). Only the reading at evaluation time changes; the run was trained
with its own ``truncation``. Reported beside each: how many test texts were longer than
``max_len``, and accuracy on those texts alone (where the four can differ).

Writes ``results/long_texts.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import _common
from _common import save

MODES = (("cut", "head"), ("cut", "tail"), ("cut", "head-tail"), ("chunks", None))


def accuracies(loaded, texts, y, long_mask, long_texts: str, truncation: str | None):
    """Accuracy over all texts and over the long ones, and the mean NLL over all."""
    import numpy as np

    from semalign.workflows.predict import text_probabilities

    probs, longer = text_probabilities(loaded, texts, 32, long_texts, truncation)
    right = probs.argmax(-1) == y
    nll = -np.log(np.maximum(probs[np.arange(len(y)), y], 1e-30))
    on_long = float(right[long_mask].mean()) if long_mask.any() else None
    return float(right.mean()), on_long, float(nll.mean()), longer


def main() -> None:
    """Evaluate the run each way and save the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", help="a trained classification run (default: the newest)")
    p.add_argument("--quick", action="store_true", help="train a tiny run and use it")
    p.add_argument("--results-dir", help="write the JSON here instead of benchmarks/results")
    a = p.parse_args()
    if a.results_dir:
        _common.RESULTS = Path(a.results_dir)
    import numpy as np

    from semalign.workflows.loading import load_run

    with tempfile.TemporaryDirectory() as tmp:
        run = a.run
        if a.quick:
            import dataclasses

            from semalign.testing import tiny_request, write_reviews_csv
            from semalign.workflows.reporting import SilentReporter
            from semalign.workflows.train import train

            data = write_reviews_csv(Path(tmp) / "d.csv", n=96)
            req = tiny_request(data, Path(tmp) / "runs", name="q", tensorboard=False)
            req = dataclasses.replace(req, data=dataclasses.replace(req.data, max_len=8))
            run = str(train(req, SilentReporter()).run)
        loaded = load_run(run)
        test = loaded.task_impl.load_splits(loaded.data_config).test
        texts = list(test.texts)
        y = np.array([loaded.labels.index(lab) for lab in test.labels])
        lengths = np.array([len(e.ids) for e in loaded.tokenizer.encode_batch(texts)])
        long_mask = lengths > loaded.max_len
        rows = []
        for long_texts, truncation in MODES:
            start = time.perf_counter()
            acc, on_long, nll, longer = accuracies(
                loaded, texts, y, long_mask, long_texts, truncation
            )
            rows.append(
                {
                    "long_texts": long_texts,
                    "truncation": truncation,
                    "test_accuracy": acc,
                    "test_loss": nll,
                    "longer_than_max_len": longer,
                    "examples": len(texts),
                    "accuracy_on_long_texts": on_long,
                    "seconds": time.perf_counter() - start,
                    "load_average": os.getloadavg(),
                }
            )
            r = rows[-1]
            print(
                f"{long_texts:>6} {truncation or '':>9}: test accuracy {acc:.4f}, on the "
                f"{longer} long texts {on_long}  ({r['seconds']:.0f} s)",
                flush=True,
            )
        payload = {"run": str(loaded.paths.root), "checkpoint": loaded.checkpoint, "rows": rows}
        payload["trained_with"] = getattr(loaded.data_config, "truncation", "head")
        payload["max_len"] = loaded.max_len
        path = save("long_texts_quick" if a.quick else "long_texts", payload)
    print(json.dumps({"saved": str(path)}))


if __name__ == "__main__":
    main()
