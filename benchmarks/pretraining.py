"""Masked-LM (or replaced-token detection) pretraining, then classification fine-tuning
from it, beside training from scratch: does the pretrained trunk help, and what does each
stage cost on this CPU?

    python benchmarks/pretraining.py                      # rotten-tomatoes, 3 seeds
    python benchmarks/pretraining.py --dataset imdb       # the other built-in corpus
    python benchmarks/pretraining.py --vocab-size 4000    # a lever: a smaller vocabulary
    python benchmarks/pretraining.py --quick              # seconds-long smoke run
    python benchmarks/pretraining.py --fresh              # re-measure rows already saved
    python benchmarks/pretraining.py --pretrain-task rtd  # ELECTRA's objective instead
    python benchmarks/pretraining.py --pretrain-task contrastive --pretrain-dropout 0.3  # SimCSE

Protocol (issue 13):

1. ``semalign pretrain`` (the mlm task) on the built-in corpus's **training split only**
   (the classification split's, same split seed): no validation or test review is ever
   trained on. The epoch with the best validation perplexity is kept; its test
   perplexity and masked-token accuracy are reported (fixed test masks).
2. For every seed: ``semalign train --init-from`` that run (classification, same data,
   same trunk shape) and, beside it, the same classifier from scratch. Each run keeps the
   epoch with the best **validation** accuracy (the run's best checkpoint); test accuracy
   is read once, of that checkpoint. Mean ± sample standard deviation over the seeds.

Every stage's wall time is recorded with the load average it ran under (the machine is
shared). Rows already in the results file at the same settings are kept and their runs
skipped, and the pretrained run is reused from ``--runs-dir`` when it is there, so an
interrupted benchmark continues where it stopped.

``--pretrain-task rtd`` pretrains with replaced-token detection (the rtd task; the kept
epoch is the one with the lowest validation objective) and writes
``results/pretraining_rtd[_<tag>].json``; ``--no-scratch`` leaves the scratch arm out (it
does not depend on the pretraining: compare with ``results/pretraining.json``'s).

Writes ``results/pretraining[_rtd][_<tag>].json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import _common
from _common import save

SETTINGS = {
    "dataset": "rotten-tomatoes",
    "data": {"vocab_size": 8000, "max_len": 64, "max_buckets": 3},
    "model": {"dim": 64, "layers": 2, "mlp_ratio": 2, "dropout": 0.1},
    "heads": 4,
    "scoring": "dot",
    "pretrain": {"epochs": 4, "batch_size": 64, "lr": 2e-3, "patience": 0, "seed": 0},
    "classify": {"epochs": 3, "batch_size": 32, "lr": 1e-3, "patience": 0},
    "seeds": [0, 1, 2],
}
QUICK = {
    "dataset": "rotten-tomatoes",
    "data": {"vocab_size": 300, "max_len": 16, "max_buckets": 1},
    "model": {"dim": 16, "layers": 1, "mlp_ratio": 1, "dropout": 0.0},
    "heads": 2,
    "scoring": "dot",
    "pretrain": {"epochs": 1, "batch_size": 128, "lr": 3e-3, "patience": 0, "seed": 0},
    "classify": {"epochs": 1, "batch_size": 128, "lr": 3e-3, "patience": 0},
    "seeds": [0],
}


def _model(settings: dict) -> dict:
    return {
        **settings["model"],
        "attention": {"scoring": settings["scoring"], "heads": settings["heads"]},
    }


def _stage(result, started: float, wall0: float) -> dict:
    """What every stage records: epochs, the kept one, wall and CPU time, the load."""
    return {
        "epochs_done": result.epochs_done,
        "best_epoch": result.best_epoch,
        "wall_seconds": time.perf_counter() - wall0,
        "cpu_seconds": time.process_time() - started,
        "train_tokens_per_second": result.tokens_per_second,
        "load_average": os.getloadavg(),
    }


def _measures(task: str, test, val: list[dict]) -> dict:
    """The pretraining run's test numbers and validation curves, by its task."""
    if task == "contrastive":
        keys = ("loss", "accuracy", "positive_cosine", "negative_cosine")
        return {
            **{f"test_{k}": getattr(test, k) for k in keys},
            **{f"val_{k}_by_epoch": [r[f"val_{k}"] for r in val] for k in keys},
        }
    if task == "mlm":
        return {
            "test_perplexity": test.perplexity,
            "test_masked_token_accuracy": test.accuracy,
            "val_perplexity_by_epoch": [r["val_perplexity"] for r in val],
            "val_masked_token_accuracy_by_epoch": [r["val_accuracy"] for r in val],
        }
    keys = ("loss", "generator_accuracy", "detection_accuracy", "detection_auc", "replaced_share")
    return {
        **{f"test_{k}": getattr(test, k) for k in keys},
        **{f"val_{k}_by_epoch": [r[f"val_{k}"] for r in val] for k in keys},
    }


def _pretrain_line(task: str, row: dict) -> str:
    if task == "contrastive":
        return (
            f"test InfoNCE {row['test_loss']:.4f}, own-view top-1 "
            f"{100 * row['test_accuracy']:.1f} %, cosine positives "
            f"{row['test_positive_cosine']:.3f} / negatives {row['test_negative_cosine']:.3f}"
        )
    if task == "mlm":
        return (
            f"test perplexity {row['test_perplexity']:.1f}, masked-token accuracy "
            f"{100 * row['test_masked_token_accuracy']:.1f} %"
        )
    return (
        f"test objective {row['test_loss']:.3f}, detection AUC {row['test_detection_auc']:.3f}, "
        f"generator accuracy {100 * row['test_generator_accuracy']:.1f} %"
    )


def pretrain(settings: dict, runs_dir: Path, task: str = "mlm") -> dict:
    """Stage 1: the pretraining run on the corpus's training split (reused when it is there)."""
    from semalign import tasks
    from semalign.config import TrainConfig
    from semalign.tracking import read_metrics
    from semalign.workflows.train import TrainRequest, train

    c0, w0 = time.process_time(), time.perf_counter()
    result = train(
        TrainRequest(
            task=task,
            data=tasks.get(task).data_config(dataset=settings["dataset"], **settings["data"]),
            train=TrainConfig(**settings["pretrain"]),
            model={**_model(settings), **settings.get("pretrain_model", {})},
            runs_dir=str(runs_dir),
            name=task,
            overwrite=True,
            tensorboard=False,
        )
    )
    val = [r for r in read_metrics(result.run / "metrics.jsonl") if r["split"] == "validation"]
    return {
        "stage": "pretrain",
        "run": str(result.run),
        **_measures(task, result.test, val),
        "epoch_seconds": [r["epoch_seconds"] for r in val],
        **_stage(result, c0, w0),
    }


def classify(settings: dict, runs_dir: Path, seed: int, init_from: str | None) -> dict:
    """Stage 2: one classifier, fine-tuned from the MLM trunk or from scratch."""
    from semalign.config import DataConfig, TrainConfig
    from semalign.tracking import read_metrics
    from semalign.workflows.train import TrainRequest, train

    arm = "finetuned" if init_from else "scratch"
    c0, w0 = time.process_time(), time.perf_counter()
    result = train(
        TrainRequest(
            task="classification",
            data=DataConfig(dataset=settings["dataset"], **settings["data"]),
            train=TrainConfig(**settings["classify"], seed=seed),
            model=_model(settings),
            runs_dir=str(runs_dir),
            name=f"{arm}-seed{seed}",
            overwrite=True,
            tensorboard=False,
            init_from=init_from,
        )
    )
    val = [r for r in read_metrics(result.run / "metrics.jsonl") if r["split"] == "validation"]
    return {
        "stage": arm,
        "seed": seed,
        "test_accuracy": result.test.accuracy,
        "val_accuracy": result.validation.accuracy,
        "val_accuracy_by_epoch": [r["val_accuracy"] for r in val],
        **_stage(result, c0, w0),
    }


def summary(rows: list[dict]) -> dict:
    """Mean ± sample std of test accuracy per arm, and the fine-tuning gain in points."""
    out = {}
    for arm in ("finetuned", "scratch"):
        acc = [r["test_accuracy"] for r in rows if r["stage"] == arm]
        if acc:
            out[arm] = {
                "seeds": len(acc),
                "test_accuracy_mean": statistics.fmean(acc),
                "test_accuracy_std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
                "wall_seconds_total": sum(r["wall_seconds"] for r in rows if r["stage"] == arm),
            }
    if {"finetuned", "scratch"} <= out.keys():
        out["gain_points"] = 100 * (
            out["finetuned"]["test_accuracy_mean"] - out["scratch"]["test_accuracy_mean"]
        )
    return out


def saved_rows(name: str, settings: dict) -> list[dict]:
    """Rows saved before at the same settings (else none)."""
    path = _common.RESULTS / f"{name}.json"
    if not path.exists():
        return []
    old = json.loads(path.read_text())
    return list(old.get("rows", [])) if old.get("settings") == settings else []


def main() -> None:
    """Run the protocol and save the results."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny smoke run")
    p.add_argument("--dataset", choices=("rotten-tomatoes", "imdb"))
    p.add_argument("--vocab-size", type=int, help="tokenizer vocabulary (a lever)")
    p.add_argument("--dim", type=int, help="trunk width (a lever)")
    p.add_argument("--layers", type=int, help="trunk depth (a lever)")
    p.add_argument("--mlm-epochs", type=int, help="pretraining epochs (a lever)")
    p.add_argument("--scoring", help="the trunk's scoring, e.g. cosine (a lever; default dot)")
    p.add_argument("--pretrain-only", action="store_true", help="no classifier arms")
    p.add_argument("--seeds", help="comma-separated classifier seeds, e.g. 0,1,2")
    p.add_argument("--tag", help="results/pretraining_<tag>.json (a variant)")
    p.add_argument("--runs-dir", default="runs/benchmark-pretraining")
    p.add_argument("--results-dir", help="write the JSON here instead of benchmarks/results")
    p.add_argument("--fresh", action="store_true", help="ignore rows saved before")
    p.add_argument("--pretrain-task", choices=("mlm", "rtd", "contrastive"), default="mlm")
    p.add_argument(
        "--pretrain-dropout", type=float, help="the pretraining run's dropout (SimCSE: 0.3)"
    )
    p.add_argument("--no-scratch", action="store_true", help="leave the scratch arm out")
    a = p.parse_args()
    if a.results_dir:
        _common.RESULTS = Path(a.results_dir)
    settings = json.loads(json.dumps(QUICK if a.quick else SETTINGS))
    if a.dataset:
        settings["dataset"] = a.dataset
    for key, group, value in (
        ("vocab_size", "data", a.vocab_size),
        ("dim", "model", a.dim),
        ("layers", "model", a.layers),
        ("epochs", "pretrain", a.mlm_epochs),
    ):
        if value is not None:
            settings[group][key] = value
    if a.scoring:
        settings["scoring"] = a.scoring
    if a.seeds:
        settings["seeds"] = [int(s) for s in a.seeds.split(",")]
    if a.pretrain_only:
        settings["seeds"] = []
    task = a.pretrain_task
    if task != "mlm":  # the mlm settings (and their saved rows) stay as they were
        settings["pretrain_task"] = task
    if a.pretrain_dropout is not None:  # the pretraining's only: fine-tunes keep the model's
        settings["pretrain_model"] = {"dropout": a.pretrain_dropout}
    name = "pretraining" + ("_quick" if a.quick else "") + (f"_{task}" if task != "mlm" else "")
    name += f"_{a.tag}" if a.tag else ""
    arms = (("finetuned", True),) if a.no_scratch else (("finetuned", True), ("scratch", False))
    runs_dir = Path(a.runs_dir) / name
    if a.quick and not a.results_dir:
        raise SystemExit("--quick writes into --results-dir only (not benchmarks/results)")
    if a.quick:
        runs_dir = Path(a.results_dir) / "runs"
    rows = [] if a.fresh else saved_rows(name, settings)
    if rows:
        print(f"kept from results/{name}.json: {len(rows)} row(s)", flush=True)

    def have(stage: str, seed: int | None = None) -> dict | None:
        return next((r for r in rows if r["stage"] == stage and r.get("seed") == seed), None)

    def write() -> Path:
        return save(
            name,
            {
                "settings": settings,
                "load_average": os.getloadavg(),
                "rows": rows,
                "summary": summary(rows),
            },
        )

    mlm = have("pretrain")
    if mlm is None or not (Path(mlm["run"]) / "config.json").is_file():
        rows = [r for r in rows if r["stage"] == "scratch"]  # fine-tunes need this very run
        mlm = pretrain(settings, runs_dir, task)
        rows.insert(0, mlm)
        write()
    print(
        f"pretrain ({task}): {_pretrain_line(task, mlm)}, best epoch {mlm['best_epoch']}, "
        f"{mlm['wall_seconds']:.0f} s (load {mlm['load_average'][0]:.1f})",
        flush=True,
    )
    for seed in settings["seeds"]:
        for arm, pretrained in arms:
            if have(arm, seed) is None:
                init = mlm["run"] if pretrained else None
                rows.append(classify(settings, runs_dir, seed, init))
                write()
            r = have(arm, seed)
            print(
                f"{arm:>9} seed {seed}: test accuracy {100 * r['test_accuracy']:.1f} % "
                f"(epoch {r['best_epoch']} on validation), {r['wall_seconds']:.0f} s "
                f"(load {r['load_average'][0]:.1f})",
                flush=True,
            )
    path = write()
    print(json.dumps({"saved": str(path), "summary": summary(rows)}))


if __name__ == "__main__":
    main()
