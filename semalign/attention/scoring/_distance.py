"""Distance family: negative squared L2 (``l2``) and negative L1 (``l1``)."""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp

from semalign.attention import DotForm, query_key_dots
from semalign.attention.scoring._base import FunctionScoring
from semalign.attention.scoring._blocks import (
    SCORE_BLOCK,
    map_key_blocks,
    scan_key_blocks,
    split_keys,
    split_scores,
    sum_by_coordinate,
)
from semalign.attention.scoring._registry import BuildContext, ScoringSpec, register


def l2_logits(q: jax.Array, k: jax.Array) -> jax.Array:
    """``s(i, j) = −‖q_i − k_j‖² / √d`` at matmul cost (‖q‖² + ‖k‖² − 2q·k).

    ``[b, q, h, d], [b, k, h, d] -> [b, h, q, k]``.
    """
    qq = jnp.sum(jnp.square(q), axis=-1)  # [b, q, h]
    kk = jnp.sum(jnp.square(k), axis=-1)  # [b, k, h]
    qk = query_key_dots(q, k)
    sq = qq.transpose(0, 2, 1)[..., None] + kk.transpose(0, 2, 1)[:, :, None, :] - 2.0 * qk
    return -sq / math.sqrt(q.shape[-1])


def l2_dot_form(q: jax.Array, k: jax.Array) -> DotForm:
    """``2q·k/√d − ‖k‖²/√d``; the ``−‖q‖²`` term is constant per row and cancels."""
    scale = 1.0 / math.sqrt(q.shape[-1])
    kk = jnp.sum(jnp.square(k), axis=-1).transpose(0, 2, 1)[:, :, None, :]  # [b, h, 1, k]
    return DotForm(q=2.0 * q, k=k, scale=scale, bias=-kk * scale)


def l1_naive(q: jax.Array, k: jax.Array) -> jax.Array:
    """``s(i, j) = −Σ|q_i − k_j| / √d`` materialising ``[b, q, k, h, d]``."""
    diff = jnp.abs(q[:, :, None] - k[:, None])  # [b, q, k, h, d]
    return -jnp.sum(diff, axis=-1).transpose(0, 3, 1, 2) / math.sqrt(q.shape[-1])


def l1_logits(q: jax.Array, k: jax.Array, *, block: int = 128) -> jax.Array:
    """``−Σ|q_i − k_j| / √d`` computed in key blocks (memory O(L·block·d)).

    The backward pass is written by hand (:func:`_l1_bwd`): autodiff's own costs 6–12
    forwards. ``[b, q, h, d], [b, k, h, d] -> [b, h, q, k]``.
    """
    if not isinstance(k.shape[1], int):  # symbolic length: an export (see l1_min_form)
        return l1_min_form(q, k)
    return _l1_blocked(q, k, block)


def l1_min_form(q: jax.Array, k: jax.Array) -> jax.Array:
    """The same scores by ``|x − y| = x + y − 2·min(x, y)``, laid out ``[b, h, d, q, k]``.

    The form the exported graph uses: onnxruntime runs its broadcast ``Min`` and a
    ``ReduceSum`` over the middle axis about 1.6x faster than ``Sub`` + ``ReduceL1`` over
    ``[b, q, k, h, d]`` (measured at batch 32 x 128). Same numbers up to float rounding.
    ``[b, q, h, d], [b, k, h, d] -> [b, h, q, k]``.
    """
    c = 1.0 / math.sqrt(q.shape[-1])
    qt = q.transpose(0, 2, 3, 1)[..., None]  # [b, h, d, q, 1]
    kt = k.transpose(0, 2, 3, 1)[..., None, :]  # [b, h, d, 1, k]
    # Sums over d from the same tensors: no more reshapes (each is a few graph nodes).
    sq, sk = jnp.sum(qt, axis=2) * c, jnp.sum(kt, axis=2) * c  # [b, h, q, 1], [b, h, 1, k]
    return jnp.sum(jnp.minimum(qt, kt), axis=2) * (2.0 * c) - (sq + sk)


def l1_by_coordinate(q: jax.Array, k: jax.Array) -> jax.Array:
    """``−Σ|q_i − k_j| / √d`` one coordinate at a time (:func:`sum_by_coordinate`).

    ``[b, q, h, d], [b, k, h, d] -> [b, h, q, k]``.
    """
    total = sum_by_coordinate(lambda _, x, y: jnp.abs(x - y), q, k)
    return -total / math.sqrt(q.shape[-1])


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def _l1_blocked(q: jax.Array, k: jax.Array, block: int) -> jax.Array:
    return map_key_blocks(l1_by_coordinate, q, k, block)


def _l1_fwd(q: jax.Array, k: jax.Array, block: int):
    return _l1_blocked(q, k, block), (q, k)


def _l1_bwd(block: int, res: tuple[jax.Array, jax.Array], g: jax.Array):
    """``dq_i = −Σ_j g_ij sign(q_i − k_j)/√d``, ``dk_j = Σ_i g_ij sign(q_i − k_j)/√d``.

    At a tie (``q_i = k_j`` in a coordinate) the sign is +1, as JAX's own ``|x|'`` at 0.
    Heads of :data:`LANE_MIN_WIDTH` or more coordinates whose running sums fit
    :data:`LANE_ELEMENTS` take :func:`sign_sums` twice (queries against keys, keys
    against queries); others one ``[b, q, block, h, d]`` term per step of a block walk.
    """
    q, k = res
    scale = 1.0 / math.sqrt(q.shape[-1])
    g = g.astype(q.dtype)
    lanes = min(block, SCORE_BLOCK)
    if q.shape[-1] >= LANE_MIN_WIDTH and max(q.size, k.size) * lanes <= LANE_ELEMENTS:
        dq = sign_sums(q, k, g, lanes, ties=1.0)
        # sign(q_i − k_j) = −sign(k_j − q_i) except at a tie, where both count +1 here.
        dk = sign_sums(k, q, jnp.swapaxes(g, -1, -2), lanes, ties=-1.0)
        return -scale * dq, -scale * dk

    def step(dq, kb, gb):
        sign = jnp.where(q[:, :, None] - kb[:, None] >= 0, scale, -scale)
        t = gb.transpose(0, 2, 3, 1)[..., None] * sign
        return dq - jnp.sum(t, axis=2), jnp.sum(t, axis=1)

    return scan_key_blocks(step, jnp.zeros_like(q), k, g, block, q.size)


#: :func:`sign_sums` pays from this head width up: at ``[2, 250, 4, 16]`` (the CPU train
#: step's micro-batch at D64H4) l1's backward took 0.56x the block walk's time, at d = 64
#: 0.58x, but at d = 2 (D16H8) 1.6x (benchmarks/README.md).
LANE_MIN_WIDTH = 8
#: ... and while its running sums (``[b, h, d, L, lanes]``) stay cache-sized: at
#: ``[16, 250, 4, 16]`` (2²¹ elements) the two took the same time.
LANE_ELEMENTS = 1 << 20


def sign_sums(x: jax.Array, y: jax.Array, g: jax.Array, lanes: int, ties: float) -> jax.Array:
    """``Σ_j g_ij · sign(x_i − y_j)`` per coordinate, a tie counting ``ties`` (±1).

    Walks ``y`` ``lanes`` positions at a time and keeps one running sum per lane,
    ``[b, h, d, m, lanes]``: each step is one select-and-add that XLA fuses in place, with
    no ``[m, n, d]`` term materialised and no reduction until the end (on a CPU the block
    walk's two reductions per step cost about as much again). ``[b, m, h, d], [b, n, h,
    d], [b, h, m, n] -> [b, m, h, d]``.
    """
    b, m, h, d = x.shape
    xt = x.transpose(0, 2, 3, 1)[..., None]  # [b, h, d, m, 1]
    counts = jnp.greater_equal if ties > 0 else jnp.greater

    def step(acc, blocks):
        yb, gb = blocks  # [b, lanes, h, d], [b, h, m, lanes]; padding has g = 0
        yt = yb.transpose(0, 2, 3, 1)[:, :, :, None, :]  # [b, h, d, 1, lanes]
        gb = gb[:, :, None]
        return acc + jnp.where(counts(xt, yt), gb, -gb), None

    acc = jnp.zeros((b, h, d, m, lanes), x.dtype)
    acc, _ = jax.lax.scan(step, acc, (split_keys(y, lanes), split_scores(g, lanes)))
    return jnp.sum(acc, axis=-1).transpose(0, 3, 1, 2)


_l1_blocked.defvjp(_l1_fwd, _l1_bwd)


def _build_l1(c: BuildContext) -> FunctionScoring:
    def logits(q: jax.Array, k: jax.Array) -> jax.Array:
        return l1_logits(q, k, block=c.key_block)

    # Exported one example at a time: in onnxruntime at batch 32 x 128 the attention alone
    # ran ~2x faster, the whole classifier 1.5x (benchmarks/README.md, ONNX vs JAX).
    return FunctionScoring(
        logits, None, heads=c.heads, head_dim=c.head_dim, export_per_example=True
    )


register(
    ScoringSpec(
        name="l2",
        formula="−‖q_i − k_j‖² / √d",
        fused=True,
        parametric=False,
        factory=lambda c: FunctionScoring(
            l2_logits, l2_dot_form, heads=c.heads, head_dim=c.head_dim
        ),
        note="matmul form; --tie-qk ties W_q = W_k (Lipschitz, Kim et al. 2021)",
    )
)
register(
    ScoringSpec(
        name="l1",
        formula="−Σ|q_i − k_j| / √d",
        fused=False,
        parametric=False,
        factory=_build_l1,
        note="no matmul form; computed in key blocks",
    )
)
