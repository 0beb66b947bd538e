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
    python benchmarks/pretraining.py --preset imdb-default --mlm-epochs 8 --screen 1.0,0.3
    python benchmarks/pretraining.py --preset imdb-default --mlm-epochs 8 --encoder-lr-scale 0.3
    python benchmarks/pretraining.py --preset imdb-short --scoring cosine --tag short_cosine
    python benchmarks/pretraining.py --preset imdb-short --dataset rotten-tomatoes \
        --pretrain-dataset imdb --pretrained-from pretraining_imdb_short_dot --seeds 0,1,2

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

``--preset imdb-default`` is the IMDB protocol with the default classifier's trunk and
training (``semalign train``'s defaults: 20k WordPiece, 512 tokens, width 64, 4 heads, 1
block, MLP x2, learned positions, dropout 0.3, 3 epochs, batch 32, lr 1e-3), so the scratch
arm is ``semalign train --seed S`` on split seed 0 (every arm keeps the pretraining's split:
a classifier split another way would test on reviews the trunk was pretrained on). The
pretraining runs at the full 512 tokens, so every learned position is trained, with
dropout 0.1 (BERT's), batch 64 and lr 2e-3; size ``--mlm-epochs`` from a measured epoch.

``--encoder-lr-scale X`` fine-tunes the pretrained trunk at X times the head's learning
rate (the scratch arm never: its trunk is not pretrained). ``--screen 1.0,0.3`` chooses it
on validation only: seed 0, the fine-tuned arm once per scale, and each run's
end-of-training "test" evaluation is of the validation split again (the test split is
swapped out in-process), so no test figure of a screen exists; its rows go to
``results/<name>_screen.json`` without test fields. The pretraining run is shared with the
finals (same ``--runs-dir`` and settings).

``--preset imdb-short`` is that trunk shape at a CPU-sized setting for comparing scorings
(128 tokens, head truncation; 8,000 words; 3 MLM epochs at batch 32; one seed).
``--pretrain-dataset imdb`` pretrains on another built-in corpus's training split than the
one fine-tuned on (``--dataset rotten-tomatoes``): the fine-tuned arm inherits the
pretraining's tokenizer, and so does the scratch arm (its trunk fresh, see
:func:`tokenizer_only`), so the arms differ by the pretraining alone.
``--pretrained-from NAME`` reuses the pretraining run of ``results/NAME.json`` when it was
pretrained at the same settings on the same corpus (else it refuses).

Writes ``results/pretraining[_rtd][_<tag>][_screen].json``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
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
#: ``--preset``: whole settings for another corpus.
PRESETS = {
    # The default classifier (``semalign train`` with no options) is the trunk and the
    # scratch arm; the MLM trains all 512 learned positions.
    "imdb-default": {
        "dataset": "imdb",
        "data": {"vocab_size": 20_000, "max_len": 512, "max_buckets": 8},
        "model": {"dim": 64, "layers": 1, "mlp_ratio": 2, "dropout": 0.3},
        "heads": 4,
        "scoring": "dot",
        "pretrain_model": {"dropout": 0.1},
        "pretrain": {"epochs": 8, "batch_size": 64, "lr": 2e-3, "patience": 0, "seed": 0},
        "classify": {"epochs": 3, "batch_size": 32, "lr": 1e-3, "patience": 2},
        "seeds": [0, 1, 2],
    },
    # The same trunk shape cut to a CPU-sized setting for comparing scorings: 128 tokens
    # (head truncation), an 8,000-word vocabulary (the MLM's projection dominates its step
    # cost), batch 32 for twice the MLM's steps per epoch.
    "imdb-short": {
        "dataset": "imdb",
        "data": {"vocab_size": 8000, "max_len": 128, "max_buckets": 4},
        "model": {"dim": 64, "layers": 1, "mlp_ratio": 2, "dropout": 0.3},
        "heads": 4,
        "scoring": "dot",
        "pretrain_model": {"dropout": 0.1},
        "pretrain": {"epochs": 3, "batch_size": 32, "lr": 2e-3, "patience": 0, "seed": 0},
        "classify": {"epochs": 3, "batch_size": 32, "lr": 1e-3, "patience": 2},
        "seeds": [0],
    },
}
#: The settings each stage's runs depend on are those not named here: a saved row is kept
#: when they match (a new fine-tuning setting reuses the pretraining and the scratch arm).
_IGNORED_BY = {
    "pretrain": {"classify", "finetune", "seeds"},
    "scratch": {"pretrain", "pretrain_model", "pretrain_task", "finetune", "seeds"},
    "finetuned": {"seeds"},
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


def _corpus(settings: dict) -> str:
    """The built-in corpus pretrained on (its training split): ``--pretrain-dataset``'s."""
    return settings.get("pretrain_dataset", settings["dataset"])


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
            data=tasks.get(task).data_config(dataset=_corpus(settings), **settings["data"]),
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


@contextlib.contextmanager
def tokenizer_only():
    """Within: ``init_from`` copies the source run's tokenizer, not its trunk.

    The scratch arm of a cross-corpus benchmark (``--pretrain-dataset``) trains inside it,
    so it tokenizes as the fine-tuned arm does and differs from it by the pretraining
    alone: its trunk is the fresh one its seed makes. Its ``config.json`` records the
    source with ``tokenizer_only``.
    """
    from semalign.workflows import init_from

    copy = init_from.copy_trunk

    def keep(model, source):
        record = source.record(init_from.trunk_sha256(model))
        return {**record, "tokenizer_only": "true"}

    init_from.copy_trunk = keep
    try:
        yield
    finally:
        init_from.copy_trunk = copy


@contextlib.contextmanager
def validation_as_test():
    """Within: the classification task's test split is its validation split.

    ``--screen`` trains inside it, so a run's end-of-training "test" evaluation (and its
    ``metrics.jsonl`` test line) is of validation again: the test reviews are never
    evaluated while a setting is chosen.
    """
    from semalign import tasks

    task = tasks.get("classification").load()
    load = task.load_splits

    def swapped(data):
        splits = load(data)
        return dataclasses.replace(splits, test=splits.validation)

    task.load_splits = swapped
    try:
        yield
    finally:
        del task.load_splits  # the class's method again


def classify(
    settings: dict,
    runs_dir: Path,
    seed: int,
    init_from: str | None,
    *,
    encoder_lr_scale: float = 1.0,
    name: str | None = None,
    tokenizer_from: str | None = None,
) -> dict:
    """Stage 2: one classifier, fine-tuned from the MLM trunk or from scratch.

    Args:
      settings: the benchmark's settings.
      runs_dir: parent folder of the runs.
      seed: the classifier's seed (init, dropout, shuffling; the split stays seed 0's).
      init_from: the pretraining run to fine-tune from; None: from scratch.
      encoder_lr_scale: the trunk's learning rate over the head's.
      name: the run folder's name; None: ``<arm>-seed<seed>``.
      tokenizer_from: from scratch with this run's tokenizer (:func:`tokenizer_only`).
    """
    from semalign.config import DataConfig, TrainConfig
    from semalign.tracking import read_metrics
    from semalign.workflows.train import TrainRequest, train

    arm = "finetuned" if init_from else "scratch"
    c0, w0 = time.process_time(), time.perf_counter()
    keep = tokenizer_only() if tokenizer_from else contextlib.nullcontext()
    with keep:
        result = train(
            TrainRequest(
                task="classification",
                data=DataConfig(dataset=settings["dataset"], **settings["data"]),
                train=TrainConfig(
                    **settings["classify"], seed=seed, encoder_lr_scale=encoder_lr_scale
                ),
                model=_model(settings),
                runs_dir=str(runs_dir),
                name=name or f"{arm}-seed{seed}",
                overwrite=True,
                tensorboard=False,
                init_from=init_from or tokenizer_from,
            )
        )
    val = [r for r in read_metrics(result.run / "metrics.jsonl") if r["split"] == "validation"]
    return {
        "stage": arm,
        "seed": seed,
        **({"encoder_lr_scale": encoder_lr_scale} if init_from else {}),
        **({"tokenizer_from": tokenizer_from} if tokenizer_from else {}),
        "test_accuracy": result.test.accuracy,
        "val_accuracy": result.validation.accuracy,
        "val_accuracy_by_epoch": [r["val_accuracy"] for r in val],
        **_stage(result, c0, w0),
    }


def screen(settings: dict, runs_dir: Path, mlm_run: str, scales: list[float]) -> list[dict]:
    """Seed 0 fine-tuned at each trunk learning-rate scale, read on validation only.

    Returns:
      One row per scale, without test fields (:func:`validation_as_test`).
    """
    rows = []
    with validation_as_test():
        for scale in scales:
            row = classify(
                settings, runs_dir, 0, mlm_run, encoder_lr_scale=scale, name=f"screen-scale{scale}"
            )
            rows.append({k: v for k, v in row.items() if not k.startswith("test_")})
            print(
                f"screen: encoder-lr-scale {scale}: validation accuracy "
                f"{100 * row['val_accuracy']:.2f} % (epoch {row['best_epoch']}), "
                f"{row['wall_seconds']:.0f} s (load {row['load_average'][0]:.1f})",
                flush=True,
            )
    return rows


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


def _depends(settings: dict, stage: str) -> dict:
    """The settings ``stage``'s runs depend on."""
    return {k: v for k, v in settings.items() if k not in _IGNORED_BY.get(stage, ())}


def saved_rows(name: str, settings: dict) -> list[dict]:
    """Rows saved before whose stage's settings are the same as now (else none)."""
    path = _common.RESULTS / f"{name}.json"
    if not path.exists():
        return []
    old = json.loads(path.read_text())
    before = old.get("settings") or {}
    return [
        r
        for r in old.get("rows", [])
        if _depends(before, r["stage"]) == _depends(settings, r["stage"])
    ]


def _pretrain_key(settings: dict) -> dict:
    """What a pretraining run depends on, its corpus named whichever way it was given."""
    key = _depends(settings, "pretrain")
    key.pop("pretrain_dataset", None)
    key["dataset"] = _corpus(settings)
    return key


def reused_pretraining(name: str, settings: dict) -> dict:
    """``--pretrained-from``: the pretraining row of ``results/<name>.json``, checked.

    Raises:
      SystemExit: no such file or row, its run is gone, or it was pretrained otherwise.
    """
    path = _common.RESULTS / f"{name}.json"
    if not path.is_file():
        raise SystemExit(f"--pretrained-from {name}: no {path}")
    old = json.loads(path.read_text())
    row = next((r for r in old.get("rows", []) if r["stage"] == "pretrain"), None)
    if row is None or not (Path(row["run"]) / "config.json").is_file():
        raise SystemExit(f"--pretrained-from {name}: no pretraining run saved there")
    theirs, ours = _pretrain_key(old.get("settings") or {}), _pretrain_key(settings)
    if theirs != ours:
        diff = sorted(k for k in theirs.keys() | ours.keys() if theirs.get(k) != ours.get(k))
        raise SystemExit(f"--pretrained-from {name}: pretrained otherwise ({', '.join(diff)})")
    return {**row, "reused_from": name}


def _scales(text: str) -> list[float]:
    """``--screen``'s value: comma-separated positive learning-rate scales."""
    try:
        scales = [float(x) for x in text.split(",")]
    except ValueError:
        scales = []
    if not scales or any(x <= 0 for x in scales):
        raise argparse.ArgumentTypeError(f"{text!r}: give positive numbers such as 1.0,0.3")
    return scales


def main() -> None:
    """Run the protocol and save the results."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny smoke run")
    p.add_argument("--preset", choices=sorted(PRESETS), help="whole settings for another corpus")
    p.add_argument("--dataset", choices=("rotten-tomatoes", "imdb"))
    p.add_argument(
        "--pretrain-dataset",
        choices=("rotten-tomatoes", "imdb"),
        help="pretrain on this corpus's training split instead (the scratch arm then "
        "inherits the pretraining's tokenizer)",
    )
    p.add_argument(
        "--pretrained-from",
        metavar="NAME",
        help="reuse the pretraining run of results/NAME.json (same pretraining settings)",
    )
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
    p.add_argument(
        "--encoder-lr-scale", type=float, help="the fine-tuned trunk's lr over the head's"
    )
    p.add_argument(
        "--screen",
        type=_scales,
        help="comma-separated encoder-lr-scales: seed 0 fine-tuned at each, validation only",
    )
    a = p.parse_args()
    if a.quick and a.preset:
        raise SystemExit("--quick has its own tiny settings: leave --preset out")
    if a.results_dir:
        _common.RESULTS = Path(a.results_dir)
    base = QUICK if a.quick else PRESETS[a.preset] if a.preset else SETTINGS
    settings = json.loads(json.dumps(base))
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
    if a.pretrain_dataset and a.pretrain_dataset != settings["dataset"]:
        settings["pretrain_dataset"] = a.pretrain_dataset
    if a.seeds:
        settings["seeds"] = [int(s) for s in a.seeds.split(",")]
    if a.pretrain_only:
        settings["seeds"] = []
    task = a.pretrain_task
    if task != "mlm":  # the mlm settings (and their saved rows) stay as they were
        settings["pretrain_task"] = task
    if a.pretrain_dropout is not None:  # the pretraining's only: fine-tunes keep the model's
        settings["pretrain_model"] = {"dropout": a.pretrain_dropout}
    scale = 1.0 if a.encoder_lr_scale is None else a.encoder_lr_scale
    if scale != 1.0:  # absent at 1.0, so results saved before the option still match
        settings["finetune"] = {"encoder_lr_scale": scale}
    name = "pretraining" + ("_quick" if a.quick else "") + (f"_{task}" if task != "mlm" else "")
    name += f"_{a.preset.split('-')[0]}" if a.preset else ""
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
    if a.pretrained_from and (mlm is None or mlm.get("reused_from") != a.pretrained_from):
        rows = [r for r in rows if r["stage"] == "scratch" and "tokenizer_from" not in r]
        mlm = reused_pretraining(a.pretrained_from, settings)
        rows.insert(0, mlm)
        write()
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
    if a.screen:
        picked = screen(settings, runs_dir, mlm["run"], a.screen)
        best = max(picked, key=lambda r: r["val_accuracy"])
        path = save(
            f"{name}_screen",
            {
                "settings": _depends(settings, "pretrain"),
                "classify": settings["classify"],
                "pretrain_run": mlm["run"],
                "rows": picked,
                "chosen_on_validation": best["encoder_lr_scale"],
            },
        )
        print(json.dumps({"saved": str(path), "chosen": best["encoder_lr_scale"]}))
        return
    for seed in settings["seeds"]:
        for arm, pretrained in arms:
            if have(arm, seed) is None:
                init = mlm["run"] if pretrained else None
                lr_scale = scale if pretrained else 1.0
                vocab = mlm["run"] if "pretrain_dataset" in settings and not pretrained else None
                rows.append(
                    classify(
                        settings,
                        runs_dir,
                        seed,
                        init,
                        encoder_lr_scale=lr_scale,
                        tokenizer_from=vocab,
                    )
                )
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
