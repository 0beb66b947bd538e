"""A scoring study: train one classifier per scoring on a CSV, tabulate, plot (PNG).

Each scoring gets the same data, split, model size and seed through ``semalign.train``;
the script writes ``results.csv`` (scoring, validation and test accuracy, seconds) and
``study.png`` (a bar chart of test accuracy, validation as markers) into ``--out``.

Run:
    python examples/scoring_study.py --data reviews.csv --scorings dot,cosine,l2,differential
    python examples/scoring_study.py --quick        # a tiny generated CSV, two scorings
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import semalign


def plot(rows: list[dict], path: Path) -> None:
    """Bar chart of test accuracy per scoring, validation accuracy as markers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["scoring"] for r in rows]
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(rows), 3.2), layout="constrained")
    ax.bar(names, [r["test_accuracy"] for r in rows], color="tab:blue", label="test")
    ax.plot(names, [r["validation_accuracy"] for r in rows], "o", color="black", label="validation")
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title("accuracy by attention scoring")
    ax.legend(loc="lower right")
    fig.savefig(path, dpi=150)
    plt.close(fig)


def main() -> None:
    """Train, tabulate and plot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="CSV / TSV / JSONL with text,label columns")
    parser.add_argument("--scorings", default="dot,cosine,l2,differential")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default="scoring-study", help="folder for runs, CSV and PNG")
    parser.add_argument("--overwrite", action="store_true", help="replace runs of an earlier study")
    parser.add_argument("--quick", action="store_true", help="tiny data and model (seconds)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    size: dict = {"epochs": args.epochs}
    scorings = args.scorings.split(",")
    if args.quick:
        from semalign.testing import write_reviews_csv

        args.data = str(write_reviews_csv(out / "reviews.csv", n=64))
        scorings = scorings[:2]
        size = dict(epochs=1, vocab_size=64, max_len=32, dim=16, heads=2, batch_size=16)
    if args.data is None:
        parser.error("give --data FILE, or --quick")

    rows = []
    for scoring in scorings:
        run = semalign.train(
            data=args.data,
            scoring=scoring,
            runs_dir=out / "runs",
            name=scoring,
            overwrite=args.overwrite,
            tensorboard=False,
            **size,
        )
        row = {
            "scoring": scoring,
            "validation_accuracy": run.validation.accuracy,
            "test_accuracy": run.test.accuracy,
            "seconds": round(run.result.seconds, 1),
            "run": str(run.path),
        }
        rows.append(row)
        print(
            f"{scoring:>16}  val {row['validation_accuracy']:.3f}  test {row['test_accuracy']:.3f}"
        )
    with open(out / "results.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, out / "study.png")
    print(f"wrote {out / 'results.csv'} and {out / 'study.png'}")


if __name__ == "__main__":
    main()
