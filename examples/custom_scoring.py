"""Register your own attention scoring and train with it, from Python and from the CLI.

The scoring here is a Gaussian kernel with a learnable width per head:

    s(i, j) = -||q_i - k_j||^2 / (2 sigma_h^2)

Registering it (``semalign.attention.scoring.register``) is all semalign needs: training,
``inspect``, ``evaluate`` and ONNX export then work with ``--scoring gaussian`` like with a
built-in one. The command line sees it through ``--plugin`` (or ``SEMALIGN_PLUGINS``)::

    semalign --plugin examples/custom_scoring.py train --scoring gaussian --data reviews.csv

Run:
    python examples/custom_scoring.py --data reviews.csv     # your text,label file
    python examples/custom_scoring.py --quick                # a tiny generated file, seconds
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
from flax import nnx

from semalign.attention import DotForm
from semalign.attention.scoring import Scoring, ScoringSpec, register

SIGMA_INIT = 2.0


class Gaussian(Scoring):
    """``-||q - k||^2 / (2 sigma_h^2)``, sigma learned in log space per head."""

    fusable = True  # it has a dot-product form below, so it runs through the fused kernel

    def __init__(self, *, heads: int, head_dim: int):
        super().__init__(heads=heads, head_dim=head_dim)
        self.log_sigma = nnx.Param(jnp.full((heads,), math.log(SIGMA_INIT), jnp.float32))

    def inverse_variance(self, dtype) -> jax.Array:
        """``1 / sigma_h^2`` per head, ``[heads]``."""
        return jnp.exp(-2.0 * self.log_sigma[...]).astype(dtype)

    def logits(self, q: jax.Array, k: jax.Array) -> jax.Array:
        """``[b, q, h, d], [b, k, h, d] -> [b, h, q, k]``."""
        diff = q[:, :, None] - k[:, None]  # [b, q, k, h, d]
        sq = jnp.sum(jnp.square(diff), axis=-1).transpose(0, 3, 1, 2)  # [b, h, q, k]
        return -0.5 * sq * self.inverse_variance(q.dtype)[None, :, None, None]

    def dot_form(self, q: jax.Array, k: jax.Array) -> DotForm:
        """``q·k / sigma^2 - ||k||^2 / (2 sigma^2)``: the ``||q||^2`` term cancels in softmax."""
        inv = self.inverse_variance(q.dtype)
        kk = jnp.sum(jnp.square(k), axis=-1).transpose(0, 2, 1)  # [b, h, k]
        bias = (-0.5 * kk * inv[None, :, None])[:, :, None, :]  # [b, h, 1, k]
        return DotForm(q=q * inv[None, None, :, None], k=k, scale=1.0, bias=bias)


register(
    ScoringSpec(
        name="gaussian",
        formula="−‖q_i − k_j‖² / (2σ_h²)",
        fused=True,
        parametric=True,
        factory=lambda c: Gaussian(heads=c.heads, head_dim=c.head_dim),
        note="user scoring (examples/custom_scoring.py): learnable σ per head",
    )
)


def check_contract() -> float:
    """Largest gap between softmax(logits) and softmax of the dot-product form."""
    scorer = Gaussian(heads=2, head_dim=4)
    q, k = jax.random.normal(jax.random.key(0), (2, 1, 5, 2, 4))
    form = scorer.dot_form(q, k)
    fused = form.scale * jnp.einsum("bqhd,bkhd->bhqk", form.q, form.k) + form.bias
    gap = jax.nn.softmax(scorer.logits(q, k)) - jax.nn.softmax(fused)
    return float(jnp.max(jnp.abs(gap)))


def sigmas(model) -> list[float]:
    """The learned sigma per head of the first layer of a loaded run."""
    scorer = model.module.encoder.blocks[0].attn.scorers[0]
    return [round(float(s), 6) for s in jnp.exp(scorer.log_sigma[...])]


def main() -> None:
    """Train with the Gaussian scoring through ``semalign.train`` and through the CLI."""
    import semalign

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a CSV / TSV / JSONL file with text,label columns")
    parser.add_argument("--runs-dir", default=None, help="where to write the two runs")
    parser.add_argument("--quick", action="store_true", help="tiny data and model (seconds)")
    args = parser.parse_args()
    work = Path(args.runs_dir or tempfile.mkdtemp(prefix="semalign-scoring-"))
    size = {"epochs": 3}
    if args.quick:
        from semalign.testing import write_reviews_csv

        work.mkdir(parents=True, exist_ok=True)
        args.data = str(write_reviews_csv(work / "reviews.csv", n=64))
        size = dict(epochs=1, vocab_size=64, max_len=32, dim=16, heads=2, batch_size=16)
    if args.data is None:
        parser.error("give --data FILE, or --quick")
    print(f"contract: softmax(logits) vs dot form, max gap {check_contract():.2e}")

    run = semalign.train(
        data=args.data, scoring="gaussian", runs_dir=work, name="lib", tensorboard=False, **size
    )
    print(f"library run: {run.path} test accuracy {run.test.accuracy:.3f}")
    print(f"library sigma: {json.dumps(sigmas(run.load()))} (init {SIGMA_INIT})")

    cli = [sys.executable, "-m", "semalign.cli", "--plugin", __file__, "train"]
    cli += ["--data", args.data, "--scoring", "gaussian", "--runs-dir", str(work)]
    cli += ["--name", "cli", "--no-tensorboard", "--json"]
    for key, value in size.items():
        cli += ["--" + key.replace("_", "-"), str(value)]
    done = subprocess.run(cli, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"the CLI failed: {done.stderr.strip()}")
    result = json.loads(done.stdout)
    print(f"cli run: {result['run']} test accuracy {result['test']['accuracy']:.3f}")
    print(f"cli sigma: {json.dumps(sigmas(semalign.load(result['run'])))}")


if __name__ == "__main__":
    main()
