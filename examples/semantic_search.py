"""Semantic search over a small corpus: embed it with a similarity run, rank by cosine.

``semalign.load(run).embed(texts)`` returns L2-normalised sentence vectors, so the cosine
similarity of a query with every document is one matrix product. Any run whose task
supports ``embed`` works; a similarity run (``semalign train --task similarity``) is
trained for it.

Run:
    python examples/semantic_search.py --run runs/sim --corpus docs.txt --query "a cat sleeps"
    python examples/semantic_search.py --quick     # trains a tiny similarity run (seconds)
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

import numpy as np

import semalign

TOPICS = {
    "pets": "cat dog kitten puppy sleeps purrs barks fur",
    "cars": "car engine wheel drive road fast fuel brake",
    "food": "bread cheese soup bake cook eat tasty kitchen",
    "music": "song guitar piano sing melody band loud concert",
}


def sentence(r: np.random.Generator, topic: str) -> str:
    """Four words of one topic."""
    return " ".join(str(w) for w in r.choice(TOPICS[topic].split(), size=4, replace=False))


def write_pairs(path: Path, n: int = 192, seed: int = 0) -> Path:
    """``sentence1,sentence2,score``: same topic 5, different topics 0."""
    r = np.random.default_rng(seed)
    names = list(TOPICS)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["sentence1", "sentence2", "score"])
        for i in range(n):
            a = names[i % len(names)]
            b = a if i % 2 == 0 else names[(i + 1 + int(r.integers(0, 3))) % len(names)]
            w.writerow([sentence(r, a), sentence(r, b), 5.0 if a == b else 0.0])
    return path


def search(model, corpus: list[str], queries: list[str], k: int) -> list[list[tuple[float, str]]]:
    """For each query, the ``k`` most similar documents as ``(cosine, text)``, best first."""
    docs = model.embed(corpus).vectors  # [N, dim], unit rows
    asked = model.embed(queries).vectors  # [Q, dim]
    cosine = asked @ docs.T  # [Q, N]
    best = np.argsort(-cosine, axis=1)[:, :k]
    return [[(float(cosine[q, j]), corpus[j]) for j in row] for q, row in enumerate(best)]


def main() -> None:
    """Print the top hits of each query."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a run whose task supports embed (e.g. similarity)")
    parser.add_argument("--corpus", help="a text file, one document a line")
    parser.add_argument("--query", action="append", help="a query; repeatable")
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="train a tiny similarity run")
    args = parser.parse_args()
    r = np.random.default_rng(1)
    corpus = [sentence(r, t) for t in TOPICS for _ in range(3)]
    queries = args.query or ["the kitten purrs", "a fast car on the road"]
    if args.corpus:
        corpus = [t for t in Path(args.corpus).read_text(encoding="utf-8").splitlines() if t]
    if args.run is None:
        if not args.quick:
            parser.error("give --run RUN (a similarity run), or --quick")
        work = Path(tempfile.mkdtemp(prefix="semalign-search-"))
        size = dict(epochs=3, vocab_size=64, max_len=16, dim=16, heads=2, batch_size=16)
        run = semalign.train(
            "similarity",
            data=write_pairs(work / "pairs.csv"),
            runs_dir=work,
            name="sim",
            tensorboard=False,
            **size,
        )
        print(f"trained {run.path}: test spearman {run.test.spearman:.3f}")
        args.run = run.path
    model = semalign.load(args.run)
    print(f"run: {model.path} ({model.task}), {len(corpus)} documents")
    for query, hits in zip(queries, search(model, corpus, queries, args.top), strict=True):
        print(f"query: {query}")
        for score, text in hits:
            print(f"  {score:+.4f}  {text}")


if __name__ == "__main__":
    main()
