"""Attention figures for a paper, from Python: PNG and SVG, per layer × head and rollout.

``semalign.load(run).attention(texts)`` gives the report ``semalign inspect`` shows;
:mod:`semalign.render.figures` draws it (a layers × heads grid of heat maps, token labels
on both axes, one colour scale, a title naming run, scoring and prediction). The figure is
a matplotlib ``Figure``, so it can be restyled before saving.

Run:
    python examples/attention_figures.py --run runs/my-run --text "a fine film" --out figs
    python examples/attention_figures.py --quick      # trains a tiny run first (seconds)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import semalign
from semalign.render import figures
from semalign.tracking.plotting import save_figure


def tiny_run(work: Path):
    """A tiny classifier trained on generated reviews."""
    from semalign.testing import write_reviews_csv

    data = write_reviews_csv(work / "reviews.csv", n=64)
    size = dict(epochs=1, vocab_size=64, max_len=32, dim=16, heads=2, batch_size=16)
    return semalign.train(data=data, runs_dir=work, name="tiny", tensorboard=False, **size)


def main() -> None:
    """Write ``attention-<i>.png/.svg`` (all layers and heads) and ``rollout-<i>.png/.svg``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a run folder (default: the newest under ./runs)")
    parser.add_argument("--text", action="append", help="a text to show; repeatable")
    parser.add_argument("--out", default="figures", help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace existing figures")
    parser.add_argument("--quick", action="store_true", help="train a tiny run first")
    args = parser.parse_args()
    texts = args.text or ["a great and wonderful film", "the plot was dull"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        (name, i, suffix): out / f"{name}-{i}.{suffix}"
        for name in ("attention", "rollout")
        for i in range(len(texts))
        for suffix in ("png", "svg")
    }
    taken = [str(p) for p in paths.values() if p.exists()]
    if taken and not args.overwrite:  # before any work: never replace figures unasked
        parser.exit(2, f"error: {taken[0]} exists: pass --overwrite to replace it\n")
    if args.quick and args.run is None:
        args.run = tiny_run(Path(tempfile.mkdtemp(prefix="semalign-figures-"))).path

    model = semalign.load(args.run)
    reports = {"attention": model.attention(texts), "rollout": model.attention(texts, rollout=True)}
    for i, t in enumerate(reports["attention"].texts):
        print(f"text {i}: {t.text!r} -> {t.label} tokens {list(t.tokens)}")
    for (name, i, _), path in paths.items():
        save_figure(figures.figure(reports[name], i), path, dpi=300)  # print resolution
    written = sorted(p.name for p in out.iterdir())
    print(f"wrote {len(written)} files to {out}: {', '.join(written)}")


if __name__ == "__main__":
    main()
