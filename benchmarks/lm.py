"""Causal language models, one per scoring: perplexity at equal settings and at an equal
wall-clock budget, training tokens/s, and decoding speed with and without the KV cache.

    python benchmarks/lm.py                        # all 8 scorings (rotten-tomatoes texts)
    python benchmarks/lm.py --scorings dot,l1      # a chosen set
    python benchmarks/lm.py --quick                # tiny smoke run
    python benchmarks/lm.py --fresh                # re-measure rows already saved

Rows already in ``results/lm.json`` at the same settings are kept and their scorings
skipped (a long table can be finished over several calls); each row keeps the load
average it was measured under.

Protocol: ``semalign train --task causal-lm`` on the built-in rotten-tomatoes reviews'
**training split** (the classification split's; validation and test texts are never
trained on), the same settings and seed for every scoring; the epoch with the best
validation perplexity is kept and its test perplexity reported. Equal budget: from each
run's ``metrics.jsonl``, the best validation perplexity among the epochs that finished
within the budget of training seconds (the slowest scoring's first epoch, unless given).
Decoding: a 2-block model of width 64 with a 280-token context generates 256 tokens
after a 16-token prompt, greedy, with the cache and with a full forward pass per token
(the same process, one after the other; compilation excluded by a warm-up).

Equal budget without the load: ``--step-costs`` times one train step of every scoring
round-robin in one process (``results/lm_step_costs.json``); ``budget_by_step_cost`` then
gives each scoring the epochs that fit in the slowest scoring's first epoch at those costs.

Writes ``results/lm.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import _common
import numpy as np
from _common import save

SCORINGS = (
    "dot",
    "general",
    "cosine",
    "l2",
    "l1",
    "differential",
    "diff-transformer",
    "additive",
)
SETTINGS = {
    "data": {"dataset": "rotten-tomatoes", "vocab_size": 8000, "max_len": 64, "max_buckets": 4},
    "model": {"dim": 64, "layers": 2, "mlp_ratio": 2, "dropout": 0.1},
    "heads": 4,
    "train": {"epochs": 2, "batch_size": 32, "lr": 2e-3, "patience": 0, "seed": 0},
}
QUICK = {
    "data": {"dataset": "rotten-tomatoes", "vocab_size": 300, "max_len": 16, "max_buckets": 1},
    "model": {"dim": 16, "layers": 1, "mlp_ratio": 1, "dropout": 0.0},
    "heads": 2,
    "train": {"epochs": 1, "batch_size": 64, "lr": 3e-3, "patience": 0, "seed": 0},
}


def train_one(scoring: str, settings: dict, runs_dir: Path) -> dict:
    """Train one scoring; its row: test perplexity, epochs and seconds, tokens/s."""
    from semalign.config import TrainConfig
    from semalign.data.corpus import CorpusConfig
    from semalign.tracking import read_metrics
    from semalign.workflows.train import TrainRequest, train

    req = TrainRequest(
        task="causal-lm",
        data=CorpusConfig(**settings["data"]),
        train=TrainConfig(**settings["train"]),
        model={**settings["model"], "attention": {"scoring": scoring, "heads": settings["heads"]}},
        runs_dir=str(runs_dir),
        name=scoring,
        tensorboard=False,
    )
    result = train(req)
    val = [r for r in read_metrics(result.run / "metrics.jsonl") if r["split"] == "validation"]
    return {
        "scoring": scoring,
        "test_perplexity": result.test.perplexity,
        "test_bits_per_token": result.test.bits_per_token,
        "test_next_token_accuracy": result.test.accuracy,
        "best_epoch": result.best_epoch,
        "val_perplexity_by_epoch": [r["val_perplexity"] for r in val],
        "epoch_seconds": [r["epoch_seconds"] for r in val],
        "train_tokens_per_second": result.tokens_per_second,
        "wall_seconds": result.seconds,
        "load_average": os.getloadavg(),
    }


def step_costs(scorings, settings: dict, *, rounds: int = 3, steps: int = 5) -> dict[str, float]:
    """Median seconds of one train step per scoring, timed round-robin in one process.

    The full-length batch ``[batch_size, max_len]`` of the benchmark's model; scorings take
    turns within each round, so a change of load between runs hits them alike and the
    ratios hold where absolute times would not.
    """
    from flax import nnx

    from semalign.config import AttentionConfig, ModelConfig, TrainConfig
    from semalign.data import make_batches
    from semalign.tasks import get
    from semalign.workflows.optim import optimizer
    from semalign.workflows.steps import Steps

    task = get("causal-lm").load()
    train, data = TrainConfig(**settings["train"]), settings["data"]
    rng = np.random.default_rng(0)
    ids = rng.integers(5, data["vocab_size"], (train.batch_size, data["max_len"]))

    [full] = make_batches(
        list(ids.astype(np.int32)),
        np.zeros(len(ids), np.int32),
        batch_size=train.batch_size,
        boundaries=(data["max_len"],),
        shuffle=False,
    )
    built = {}
    for s in scorings:
        cfg = ModelConfig(
            vocab_size=data["vocab_size"],
            max_len=data["max_len"],
            **settings["model"],
            attention=AttentionConfig(scoring=s, heads=settings["heads"]),
        )
        model = task.build(cfg, rngs=nnx.Rngs(0))
        opt = nnx.Optimizer(model, optimizer(train, 100), wrt=nnx.Param)
        st = Steps.for_task(task, model, opt)
        jax_block(st.train(full))  # compile
        built[s] = st
    times: dict[str, list[float]] = {s: [] for s in scorings}
    for _ in range(rounds):
        for s, st in built.items():
            start = time.perf_counter()
            for _ in range(steps):
                out = st.train(full)
            jax_block(out)
            times[s].append((time.perf_counter() - start) / steps)
    return {s: float(np.median(t)) for s, t in times.items()}


def jax_block(tree) -> None:
    """Wait for every array of ``tree``."""
    import jax

    jax.block_until_ready(tree)


def budget_table(rows: list[dict], budget: float) -> list[dict]:
    """Best validation perplexity of each scoring within ``budget`` training seconds."""
    out = []
    for row in rows:
        spent, best, epochs = 0.0, None, 0
        for ppl, seconds in zip(row["val_perplexity_by_epoch"], row["epoch_seconds"], strict=True):
            spent += seconds
            if spent > budget:
                break
            best, epochs = ppl if best is None else min(best, ppl), epochs + 1
        out.append({"scoring": row["scoring"], "epochs_in_budget": epochs, "val_perplexity": best})
    return out


def decoding_speed(scoring: str, *, new_tokens: int, prompt: int, dim: int, layers: int) -> dict:
    """Tokens/s of greedy decoding with and without the KV cache (random weights)."""
    from flax import nnx

    from semalign.config import AttentionConfig, ModelConfig
    from semalign.tasks.causal_lm.model import CausalLM
    from semalign.workflows.generate import Decoder

    cfg = ModelConfig(
        vocab_size=8000,
        dim=dim,
        layers=layers,
        max_len=prompt + new_tokens + 8,
        dropout=0.0,
        attention=AttentionConfig(scoring=scoring, heads=4),
    )
    model = CausalLM(cfg, rngs=nnx.Rngs(0))
    model.eval()
    ids0 = np.random.default_rng(0).integers(5, 8000, prompt).astype(np.int32)
    out = {}
    for use_cache in (True, False):
        step = Decoder(model, use_cache=use_cache)
        step(ids0, 0)  # compile
        step.reset()
        ids = list(ids0)
        start = time.perf_counter()
        if use_cache:
            for t in range(prompt - 1):
                step(np.asarray(ids), t)
        for _ in range(new_tokens):
            logits = step(np.asarray(ids), len(ids) - 1)
            ids.append(int(np.argmax(logits[5:])) + 5)
        seconds = time.perf_counter() - start
        out["cache" if use_cache else "no_cache"] = {
            "seconds": seconds,
            "tokens_per_second": new_tokens / seconds,
            "tokens": ids[prompt:],
        }
    out["speedup"] = out["cache"]["tokens_per_second"] / out["no_cache"]["tokens_per_second"]
    out["same_tokens"] = out["cache"]["tokens"] == out["no_cache"]["tokens"]
    for key in ("cache", "no_cache"):
        del out[key]["tokens"]
    return {"scoring": scoring, **out}


def saved(name: str, settings: dict) -> tuple[list[dict], list[dict]]:
    """Rows and decoding results saved before at the same settings (else none)."""
    path = _common.RESULTS / f"{name}.json"
    if not path.exists():
        return [], []
    old = json.loads(path.read_text())
    if old.get("settings") != settings:
        return [], []
    rows = [{"load_average": old.get("load_average"), **r} for r in old.get("rows", [])]
    return rows, list(old.get("decoding", []))


def payload(rows, decode, settings, budget, name: str) -> dict:
    """What ``results/<name>.json`` holds: rows, decoding and both equal-budget tables."""
    out = {"settings": settings, "load_average": os.getloadavg(), "rows": rows}
    if rows:
        out["budget_seconds"] = budget or max(r["epoch_seconds"][0] for r in rows)
        out["budget"] = budget_table(rows, out["budget_seconds"])
    costs = _common.RESULTS / f"{name}_step_costs.json"
    if rows and costs.exists():
        measured = json.loads(costs.read_text())
        if measured["settings"] == settings:
            out["step_seconds"] = measured["step_seconds"]
            out["budget_by_step_cost"] = step_cost_budget(rows, measured["step_seconds"])
    out["decoding"] = decode
    return out


def step_cost_budget(rows: list[dict], step_seconds: dict[str, float]) -> list[dict]:
    """Best validation perplexity within the slowest scoring's first epoch, in step costs.

    Every scoring trains the same number of steps per epoch, so an epoch of scoring ``s``
    costs ``step_seconds[s] / step_seconds[slowest]`` of the budget: a load-free
    equal-wall-clock comparison (the costs were timed side by side).
    """
    known = [r for r in rows if r["scoring"] in step_seconds]
    if not known:
        return []
    slowest = max(step_seconds[r["scoring"]] for r in known)
    out = []
    for r in known:
        fits = int(slowest / step_seconds[r["scoring"]] + 1e-9)
        trained = len(r["val_perplexity_by_epoch"])
        epochs = min(fits, trained)
        out.append(
            {
                "scoring": r["scoring"],
                "epochs_in_budget": epochs,
                "epochs_that_would_fit": fits,
                "val_perplexity": min(r["val_perplexity_by_epoch"][:epochs]),
            }
        )
    return out


def main() -> None:
    """Run the protocol and save the results."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scorings", default=",".join(SCORINGS))
    p.add_argument("--budget", type=float, help="training seconds of the equal-budget table")
    p.add_argument("--quick", action="store_true", help="tiny smoke run")
    p.add_argument("--results-dir", help="write the JSON here instead of benchmarks/results")
    p.add_argument("--fresh", action="store_true", help="ignore rows saved before")
    p.add_argument("--step-costs", action="store_true", help="only time the scorings' train steps")
    a = p.parse_args()
    if a.results_dir:
        _common.RESULTS = Path(a.results_dir)
    settings = QUICK if a.quick else SETTINGS
    scorings = a.scorings.split(",") if not a.quick else ["dot", "differential"]
    name = "lm_quick" if a.quick else "lm"
    if a.step_costs or a.quick:
        costs = step_costs(scorings, settings, rounds=1 if a.quick else 3)
        path = save(
            f"{name}_step_costs",
            {"settings": settings, "load_average": os.getloadavg(), "step_seconds": costs},
        )
        for s, t in costs.items():
            print(f"train step {s:>17}: {t * 1000:8.1f} ms ({t / costs[scorings[0]]:.2f}x)")
        if a.step_costs:
            print(json.dumps({"saved": str(path)}))
            return
    rows, decode = ([], []) if a.fresh else saved(name, settings)
    done = {r["scoring"] for r in rows}
    if done:
        print(f"kept from results/{name}.json: {', '.join(sorted(done))}", flush=True)
    # Decoding first (minutes), then one training run per scoring, saved as each finishes.
    decoded = {d["scoring"] for d in decode}
    for s in scorings if a.quick else ["dot", "differential", "l1", "diff-transformer"]:
        if s in decoded:
            continue
        d = decoding_speed(
            s,
            new_tokens=16 if a.quick else 256,
            prompt=4 if a.quick else 16,
            dim=16 if a.quick else 64,
            layers=1 if a.quick else 2,
        )
        decode.append(d)
        print(
            f"decoding {d['scoring']:>17}: {d['cache']['tokens_per_second']:7.1f} tok/s with "
            f"the cache, {d['no_cache']['tokens_per_second']:7.1f} without: x{d['speedup']:.1f}"
            f" (same tokens: {d['same_tokens']})",
            flush=True,
        )
    with tempfile.TemporaryDirectory() as tmp:
        for scoring in (s for s in scorings if s not in done):
            rows.append(train_one(scoring, settings, Path(tmp)))
            r = rows[-1]
            print(
                f"{scoring:>17}: test perplexity {r['test_perplexity']:8.2f}  "
                f"epoch {r['best_epoch']}  {r['train_tokens_per_second']:9,.0f} tok/s  "
                f"{r['wall_seconds']:6.0f} s",
                flush=True,
            )
            path = save(name, payload(rows, decode, settings, a.budget, name))
    path = save(name, payload(rows, decode, settings, a.budget, name))
    print(json.dumps({"saved": str(path)}))


if __name__ == "__main__":
    main()
