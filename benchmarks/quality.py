"""Test accuracy and wall time of `semalign train` on IMDB: the default, and every scoring.

    python benchmarks/quality.py                 # default run + all scorings (long)
    python benchmarks/quality.py --default-only  # just the default `semalign train`
    python benchmarks/quality.py --quick         # tiny smoke run (used by the test suite)
    python benchmarks/quality.py --variants-only # default settings plus bigram features

The split is the one of ``shared/notes/cpu-baseline.md`` (96 duplicates dropped, stratified
80/10/10 with seed 0: 19,924 / 2,490 / 2,490), so the figures compare with the Keras
original (86.8-87.9 %) and TF-IDF 1-2-grams + logistic regression (91.0 %).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import save

SCORINGS = ("dot", "cosine", "l2", "differential", "diff-transformer", "general", "l1", "additive")
TFIDF_BASELINE = 0.910
#: Options on top of the defaults, run by --variants-only (results/quality_variants.json).
VARIANTS = {
    "dot + bigrams 2^15": "--bigram-buckets 32768",
    "dot + bigrams 2^17": "--bigram-buckets 131072",
    "differential": "--scoring differential",
    "differential + bigrams 2^15": "--scoring differential --bigram-buckets 32768",
    "differential + bigrams 2^17": "--scoring differential --bigram-buckets 131072",
}


def run_cli(args: list[str], runs: Path) -> tuple[dict, float]:
    """Run `semalign train ... --json` in a fresh process; returns (result, wall seconds)."""
    cmd = [sys.executable, "-m", "semalign.cli", "train", "--runs-dir", str(runs), "--json", *args]
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{out.stderr[-2000:]}")
    return json.loads(out.stdout), wall


def row(name: str, result: dict, wall: float) -> dict:
    return {
        "name": name,
        "test_accuracy": result["test"]["accuracy"],
        "test_macro_f1": result["test"]["macro_f1"],
        "best_epoch": result["best_epoch"],
        "epochs": result["epochs_done"],
        "wall_seconds": round(wall, 1),
        "train_tokens_per_second": round(result["tokens_per_second"]),
        # Wall times only compare between rows run on an equally quiet machine.
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny smoke run on rotten-tomatoes")
    p.add_argument("--default-only", action="store_true")
    p.add_argument("--table-only", action="store_true", help="skip the default run")
    p.add_argument("--variants-only", action="store_true", help="only the VARIANTS")
    p.add_argument(
        "--table-args",
        default="--max-len 256 --epochs 2",
        help="settings shared by every scoring in the comparison table",
    )
    p.add_argument("--scorings", default=",".join(SCORINGS))
    a = p.parse_args()
    runs = Path(tempfile.mkdtemp(prefix="semalign-quality-"))
    rows = []
    out_name = "quality"
    if a.default_only or a.table_only:
        out_name = "quality_default" if a.default_only else "quality_table"
    if a.quick:
        quick = [
            "--dataset",
            "rotten-tomatoes",
            "--max-len",
            "32",
            "--vocab-size",
            "2000",
            "--dim",
            "16",
            "--epochs",
            "1",
            "--no-tensorboard",
        ]
        result, wall = run_cli([*quick, "--name", "quick"], runs)
        rows.append(row("quick", result, wall))
        save("quality_quick", {"rows": rows})
        print(json.dumps(rows, indent=2))
        return
    if a.variants_only:
        for i, (name, extra) in enumerate(VARIANTS.items()):
            res, w = run_cli(["--name", f"variant-{i}", *extra.split()], runs)
            entry = {**row(name, res, w), "options": extra}
            entry["gap_to_tfidf_points"] = round(100 * (TFIDF_BASELINE - entry["test_accuracy"]), 2)
            rows.append(entry)
            print(json.dumps(entry), flush=True)
            save("quality_variants", {"rows": rows, "complete": False})
        save("quality_variants", {"rows": rows, "complete": True})
        return
    if not a.table_only:
        result, wall = run_cli(["--name", "default"], runs)
        default = row("default `semalign train`", result, wall)
        gap = TFIDF_BASELINE - default["test_accuracy"]
        default["gap_to_tfidf_points"] = round(100 * gap, 2)
        rows.append(default)
        print(json.dumps(default, indent=2), flush=True)
    if not a.default_only:
        for name in a.scorings.split(","):
            extra = a.table_args.split()
            res, w = run_cli(["--scoring", name, "--name", name, *extra], runs)
            rows.append({**row(name, res, w), "settings": a.table_args})
            print(json.dumps(rows[-1]), flush=True)
            save(out_name, {"rows": rows, "complete": False})  # keep what finished
    save(out_name, {"rows": rows, "complete": True})
    print(f"\n{'run':28s} {'test acc':>9s} {'best ep':>8s} {'wall s':>8s}")
    for r in rows:
        acc, ep, wall = r["test_accuracy"], r["best_epoch"], r["wall_seconds"]
        print(f"{r['name']:28s} {acc:9.4f} {ep:8d} {wall:8.0f}")


if __name__ == "__main__":
    main()
