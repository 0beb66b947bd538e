"""Attention kernels: every scoring against ``jax.nn.dot_product_attention``, in one process.

    python benchmarks/attention.py                       # L 128, 512, 2048; batch 8, 4 heads, d 64
    python benchmarks/attention.py --lengths 128,512     # a subset
    python benchmarks/attention.py --quick               # smoke run (the test suite runs it)
    python benchmarks/attention.py --together            # fwd and fwd+bwd in the same rounds

For every registered scoring, the forward and the forward+backward (gradient of
``sum(out * g)`` with respect to q, k, v and the scoring's parameters) are compiled ahead of
time (``jit(...).lower(...).compile()``, compile time and ``memory_analysis()`` temporary
bytes recorded), run once (warm-up, timed apart), then timed in rounds: within a round every
kernel of one sequence length runs in turn, the reference ``jax.nn.dot_product_attention``
among them (order rotated each round), so load from other processes falls on all of them
alike. Ratios are medians of per-round ratios to the reference; ``block_until_ready`` stops
every clock.

Paths timed per scoring:

* ``fused``: ``attend(..., fused=True)``, the scoring's dot-product form through
  ``jax.nn.dot_product_attention`` (only scorings that have one);
* ``explicit``: the library's CPU default, ``attend(..., fused=False, chunk=2)``: the scores
  materialised two examples at a time under ``lax.map`` + ``jax.checkpoint``;
* extras for ``dot``: the whole-batch explicit path (``chunk=0``) and bfloat16 inputs.

A kernel whose single forward call takes longer than ``--max-call-s`` is timed by that one
call only, and its forward+backward (about 4-20x longer) is not timed; its memory is still
reported (compilation only).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import _common
import jax
import jax.numpy as jnp
from flax import nnx

from semalign.attention import attend, build_mask, scoring

FUSED_GOAL = 1.15  # every fused scoring at most this many times the reference


@dataclass(frozen=True)
class Kernel:
    """One attention implementation to time.

    Attributes:
      name: label in tables.
      scoring: registry name, or None for the reference.
      fused: ``attend(fused=...)``.
      chunk: ``attend(chunk=...)``.
      dtype: input dtype.

    """

    name: str
    scoring: str | None
    fused: bool = False
    chunk: int = 2
    dtype: str = "float32"

    @property
    def path(self) -> str:
        if self.scoring is None:
            return "reference"
        return "fused" if self.fused else ("explicit" if self.chunk else "explicit, whole batch")


def kernels(names: tuple[str, ...], quick: bool) -> list[Kernel]:
    out = [Kernel("jax.nn.dot_product_attention", None)]
    for name in names:
        if scoring.get(name).fused:
            out.append(Kernel(f"{name} fused", name, fused=True, chunk=0))
        out.append(Kernel(f"{name} explicit", name))
    if "dot" in names and not quick:
        out.append(Kernel("dot explicit chunk=0", "dot", chunk=0))
        out.append(Kernel("dot explicit bf16", "dot", dtype="bfloat16"))
    return out


def compile_pair(kernel: Kernel, args: tuple, heads: int, head_dim: int, key_block: int):
    """``(forward, forward+backward)`` compiled, with their compile seconds."""
    if kernel.scoring is None:
        state = {}

        def forward(state, q, k, v, mask):
            del state
            return jax.nn.dot_product_attention(q, k, v, mask=mask)

    else:
        scorer = scoring.build(
            kernel.scoring,
            scoring.BuildContext(
                heads=heads, head_dim=head_dim, rngs=nnx.Rngs(0), key_block=key_block
            ),
        )
        graph, state = nnx.split(scorer)

        def forward(state, q, k, v, mask):
            out, _ = attend(
                nnx.merge(graph, state), q, k, v, mask, fused=kernel.fused, chunk=kernel.chunk
            )
            return out

    def loss(state, q, k, v, mask, g):
        return jnp.sum(forward(state, q, k, v, mask).astype(jnp.float32) * g)

    dtype = jnp.dtype(kernel.dtype)
    q, k, v, mask, g = args
    q, k, v = (x.astype(dtype) for x in (q, k, v))
    fwd_args = (state, q, k, v, mask)
    out = []
    for fn, fargs in (
        (forward, fwd_args),
        (jax.grad(loss, argnums=(0, 1, 2, 3)), (*fwd_args, g)),
    ):
        t = time.perf_counter()
        compiled = jax.jit(fn).lower(*fargs).compile()
        out.append((compiled, fargs, time.perf_counter() - t))
    return out


def call_time(compiled, args, n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        result = compiled(*args)
    jax.block_until_ready(result)
    return (time.perf_counter() - t) / n


def measure(entries: list[dict], a: argparse.Namespace, label: str) -> None:
    """Warm up each entry, then time all of them in rotated rounds (in place)."""
    for e in entries:
        e["warmup_s"] = call_time(e["compiled"], e["args"], 1)
        e["calls"] = max(1, math.ceil(a.min_round_s / max(e["warmup_s"], 1e-6)))
        e["times"], e["loads"] = [], []
    timed = [e for e in entries if e["warmup_s"] <= a.max_call_s]
    for e in entries:
        if e not in timed:
            e["single_call"] = True
    start = time.perf_counter()
    rounds = 0
    while timed and rounds < a.rounds:
        k = rounds % len(timed)
        for e in timed[k:] + timed[:k]:
            before = os.getloadavg()[0]
            e["times"].append(call_time(e["compiled"], e["args"], e["calls"]))
            e["loads"].append((before, os.getloadavg()[0]))
        rounds += 1
        if rounds >= a.min_rounds and time.perf_counter() - start > a.budget_s:
            break
    print(f"  {label}: {rounds} rounds in {time.perf_counter() - start:.0f} s", flush=True)
    for e in entries:
        if not e["times"]:  # too slow for rounds: the warm-up call is the only figure
            e["times"] = [e["warmup_s"]]


def run_length(length: int, names: tuple[str, ...], a: argparse.Namespace) -> list[dict]:
    b, h, d = a.batch, a.heads, a.head_dim
    keys = jax.random.split(jax.random.key(0), 5)
    q, k, v, g = (jax.random.normal(key, (b, length, h, d)) for key in keys[:4])
    lengths = jax.random.randint(keys[4], (b,), length // 2, length + 1)
    valid = jnp.arange(length)[None, :] < lengths[:, None]
    mask = build_mask(length, length, key_valid=valid)  # [b, 1, 1, L] padding mask
    args = (q, k, v, mask, g)
    rows = []
    fwd_entries, bwd_entries = [], []
    for kern in kernels(names, a.quick):
        (fc, fargs, fs), (bc, bargs, bs) = compile_pair(kern, args, h, d, a.key_block)
        row = {
            "length": length,
            "kernel": kern.name,
            "scoring": kern.scoring,
            "path": kern.path,
            "dtype": kern.dtype,
            "compile_s": {"forward": round(fs, 2), "forward_backward": round(bs, 2)},
            "temp_bytes": {
                "forward": fc.memory_analysis().temp_size_in_bytes,
                "forward_backward": bc.memory_analysis().temp_size_in_bytes,
            },
        }
        rows.append(row)
        fwd_entries.append({"row": row, "compiled": fc, "args": fargs})
        bwd_entries.append({"row": row, "compiled": bc, "args": bargs})
    if a.together:  # one forward call first, to leave out the slow kernels' backward
        for e in fwd_entries:
            e["warmup_s"] = call_time(e["compiled"], e["args"], 1)
    else:
        measure(fwd_entries, a, f"L={length} forward")
    # The backward costs several forwards: leave out kernels whose forward was already slow.
    slow = [e for e in fwd_entries[1:] if e["warmup_s"] * 4 > a.max_call_s]
    keep = [be for fe, be in zip(fwd_entries, bwd_entries, strict=True) if fe not in slow]
    if a.together:
        measure(fwd_entries + keep, a, f"L={length} forward and forward+backward")
    else:
        measure(keep, a, f"L={length} forward+backward")
    for fe, be in zip(fwd_entries, bwd_entries, strict=True):
        if a.together and be in keep:  # same rounds: the ratio is paired round by round
            ratios = [b / f for f, b in zip(fe["times"], be["times"], strict=True)]
            fe["row"]["forward_backward_over_forward"] = round(statistics.median(ratios), 3)
    for direction, entries in (("forward", fwd_entries), ("forward_backward", keep)):
        ref = entries[0]
        for e in entries:
            med = statistics.median(e["times"])
            paired = [x / r for x, r in zip(e["times"], ref["times"], strict=False)]
            e["row"][direction] = {
                "median_ms": round(med * 1e3, 3),
                "warmup_ms": round(e["warmup_s"] * 1e3, 3),
                "rounds_ms": [round(x * 1e3, 3) for x in e["times"]],
                "calls_per_round": e["calls"],
                "x_reference": round(statistics.median(paired), 3) if paired else None,
                "single_call": e.get("single_call", False),
                "load_before_after": e["loads"],
            }
    for fe in slow:
        fe["row"]["forward_backward"] = {
            "skipped": f"forward alone took {fe['warmup_s']:.1f} s (--max-call-s {a.max_call_s})"
        }
    ref_temp = rows[0]["temp_bytes"]
    for row in rows:
        row["temp_x_reference"] = {
            key: round(row["temp_bytes"][key] / max(ref_temp[key], 1), 3) for key in ref_temp
        }
    return rows


def goals(rows: list[dict], a: argparse.Namespace) -> dict:
    """Check the issue's goals against the rows."""
    fused = {}
    for row in rows:
        if row["path"] != "fused":
            continue
        fb = row.get("forward_backward", {})
        fused[f"{row['kernel']} L={row['length']}"] = {
            "forward_x": row["forward"]["x_reference"],
            "forward_backward_x": fb.get("x_reference"),
            "met": all(
                x is not None and x <= FUSED_GOAL
                for x in (row["forward"]["x_reference"], fb.get("x_reference"))
            ),
        }
    l1 = {}
    l1_rows = [r for r in rows if r["scoring"] == "l1"]
    ref = {r["length"]: r for r in rows if r["scoring"] is None}
    for r in l1_rows:
        length = r["length"]
        l2d = a.batch * a.heads * length * length * a.head_dim * 4  # an [b, h, L, L, d] f32
        l1[f"L={length}"] = {
            "temp_mib": r["temp_bytes"]["forward_backward"] / 2**20,
            "reference_temp_mib": ref[length]["temp_bytes"]["forward_backward"] / 2**20,
            "x_reference": r["temp_x_reference"]["forward_backward"],
            "fraction_of_L2d_tensor": round(r["temp_bytes"]["forward_backward"] / l2d, 4),
        }
    lengths = sorted(r["length"] for r in l1_rows)
    growth = {}
    for lo, hi in zip(lengths, lengths[1:], strict=False):
        t = {r["length"]: r["temp_bytes"]["forward_backward"] for r in l1_rows}
        growth[f"{lo}->{hi}"] = round(math.log(t[hi] / t[lo]) / math.log(hi / lo), 2)
    return {
        "fused_at_most_1.15x_reference": {
            "met": all(v["met"] for v in fused.values()) if fused else None,
            "cases": fused,
        },
        "l1_temp_memory_O(L^2)": {
            # O(L^2) and not O(L^2 d): at the longest length the temporaries are a small
            # fraction of one [b, h, L, L, d] tensor, and they grow at most like L^2.
            "met": (
                l1[f"L={lengths[-1]}"]["fraction_of_L2d_tensor"] < 0.125
                and all(x <= 2.2 for x in growth.values())
            )
            if l1
            else None,
            "per_length": l1,
            "growth_exponent": growth,
        },
    }


def fmt_x(block: dict) -> str:
    if "skipped" in block:
        return "skipped"
    star = "*" if block["single_call"] else ""
    return f"{block['median_ms']:9.2f}{star} {block['x_reference']:5.2f}x"


def print_table(rows: list[dict]) -> None:
    print(
        f"\n{'L':>5s} {'kernel':30s} {'forward ms':>10s} {'x ref':>6s}"
        f" {'fwd+bwd ms':>11s} {'x ref':>6s} {'temp MiB f/fb':>16s} {'x ref':>11s}"
    )
    for r in rows:
        mib = r["temp_bytes"]
        mem = f"{mib['forward'] / 2**20:7.1f}/{mib['forward_backward'] / 2**20:7.1f}"
        tx = r["temp_x_reference"]
        paired = r.get("forward_backward_over_forward")
        print(
            f"{r['length']:5d} {r['kernel']:30s} {fmt_x(r['forward']):>17s}"
            f" {fmt_x(r['forward_backward']):>18s} {mem:>16s}"
            f" {tx['forward']:5.2f}/{tx['forward_backward']:5.2f}"
            + ("" if paired is None else f"  fwd+bwd/fwd {paired:.2f}")
        )
    print("  * one call only (too slow for rounds); skipped: forward+backward not timed")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: L=64, dot and l1, 2 rounds")
    p.add_argument("--lengths", default="128,512,2048")
    p.add_argument("--scorings", default=",".join(scoring.available()))
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--key-block", type=int, default=128, help="BuildContext.key_block")
    p.add_argument("--rounds", type=int, default=7, help="most rounds per length")
    p.add_argument("--min-rounds", type=int, default=3)
    p.add_argument("--budget-s", type=float, default=60.0, help="stop adding rounds after this")
    p.add_argument("--min-round-s", type=float, default=0.2, help="calls per kernel per round")
    p.add_argument("--max-call-s", type=float, default=15.0)
    p.add_argument(
        "--together",
        action="store_true",
        help="time forward and forward+backward in the same rounds (their ratio paired)",
    )
    p.add_argument("--out", default=None, help="result name (default attention[_quick])")
    p.add_argument("--results-dir", help="write the JSON here instead of benchmarks/results")
    a = p.parse_args()
    if a.quick:
        a.lengths, a.scorings = "64", "dot,l1"
        a.batch, a.rounds, a.min_rounds, a.min_round_s = 2, 2, 2, 0.02
    if a.results_dir:
        _common.RESULTS = Path(a.results_dir)
    names = tuple(a.scorings.split(","))
    for name in names:
        scoring.get(name)
    t0 = time.perf_counter()
    rows = []
    for length in (int(x) for x in a.lengths.split(",")):
        print(f"L={length}: compiling ...", flush=True)
        rows += run_length(length, names, a)
    result = goals(rows, a)
    print_table(rows)
    print(f"\nfused scorings <= {FUSED_GOAL}x reference: {result['fused_at_most_1.15x_reference']}")
    print(f"l1 temporary memory O(L^2): {result['l1_temp_memory_O(L^2)']}")
    payload = {
        "settings": {
            "batch": a.batch,
            "heads": a.heads,
            "head_dim": a.head_dim,
            "key_block": a.key_block,
            "mask": "padding, valid lengths uniform in [L/2, L]",
            "reference": "jax.nn.dot_product_attention (implementation=None), same mask",
            "backward": "grad of sum(out * g) w.r.t. q, k, v and scoring parameters",
            "max_call_s": a.max_call_s,
            "backend": jax.default_backend(),
        },
        "rows": rows,
        "goals": result,
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    path = _common.save(a.out or ("attention_quick" if a.quick else "attention"), payload)
    print(f"\nwrote {path} ({payload['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
