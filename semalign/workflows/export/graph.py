"""The exported graph: a task's model written in operators onnxruntime runs fast.

The model's own forward pass exports as it is (``kernel="model"``), but onnxruntime runs
it 2-4x slower than ``jax.jit`` on a CPU: XLA fuses the masked softmax into one loop,
onnxruntime runs each of its six element-wise passes over ``[batch, heads, q, k]`` on its
own, and ``Einsum`` is slow there. ``kernel="onnxruntime"`` swaps each attention layer for
:class:`OnnxAttention`, which has the same parameters and the same numbers, written as

* scorings with a dot-product form (``dot``, ``general``, ``cosine``, ``l2``,
  ``differential``): one ONNX ``Attention`` operator (opset >= 23; ``MatMul`` + ``Softmax``
  + ``MatMul`` below it), the mask as an additive bias;
* scorings whose weights mix several softmaxes of dot-product forms
  (``diff-transformer``: ``Σ_m c_m softmax(form_m)``): the M softmaxes as one over M x
  heads stacked heads (one logits ``MatMul``, one ``Softmax``), the ``c_m`` combination
  of the weights, one ``MatMul`` with ``V``; when the forms are linear in q and k
  (``Scoring.linear_forms``), the stacked forms' projections are folded into the q and k
  weights and run from ``x`` in the loop, with no ``Transpose``;
* other scorings whose weights are a softmax of logits (``l1``, ``additive``): their
  logits, an additive mask bias, one ``Softmax``, one ``MatMul``;
* scorings with their own weights and no such forms: their ``weights`` as written.

The stacked softmaxes, and the softmax of logits of a scoring that asks for it
(``Scoring.export_per_example``: ``l1``, ``additive``), run one example at a time
(``lax.map``, an ONNX ``Loop``): onnxruntime writes every intermediate out in full, and one
example's ``[heads, q, k]`` (``l1``: ``[heads, d, q, k]``, ``additive``: ``[heads, a, q,
k]``) stays in cache where the whole batch's does not (batch 32 x 128: see
benchmarks/README.md, ONNX vs JAX). Per-position work (``additive``'s projections) runs
once on the batch, outside the loop (``Scoring.split_logits``); the stacked forms'
projections run in it, as small ``MatMul``s that replace the batch's slices, concats and
transposes (measured faster, benchmarks/README.md).

A query row with no visible key gets zeros, as in :func:`semalign.attention.attend`: the
output is multiplied by a ``[batch, q, 1, 1]`` row flag instead of masking the big
tensor twice. Every export is checked against the JAX model (:mod:`semalign.workflows.export.onnx`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
from flax import nnx

from semalign.attention import MASK_VALUE, Capture, DotForm, build_mask, row_has_keys
from semalign.attention.scoring import Scoring
from semalign.nn.layers import MultiHeadAttention
from semalign.workflows.export.onnx import DEFAULT_OPSET

KERNELS = ("onnxruntime", "model")


def _softmax_of_logits(scorer: Scoring) -> bool:
    # Scorings whose weights are softmax(logits) keep Scoring.weights; the others
    # (diff-transformer) override it and are exported through their own weights.
    return type(scorer).weights is Scoring.weights


def _weighted_sum(weights: jax.Array, v: jax.Array) -> jax.Array:
    """``[b, h, q, k] x [b, k, h, d] -> [b, q, h, d]`` as one batched ``MatMul``."""
    return jnp.matmul(weights, v.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)


def _form_logits(scorer: Scoring, q: jax.Array, k: jax.Array) -> jax.Array:
    """Softmax-equivalent logits ``[b, h, q, k]`` of a dot-form scoring, via ``MatMul``."""
    form = scorer.dot_form(q, k)
    logits = jnp.matmul(form.q.transpose(0, 2, 1, 3), form.k.transpose(0, 2, 3, 1))
    logits = logits * form.scale
    return logits if form.bias is None else logits + form.bias


def _split_logits(scorer: Scoring, q: jax.Array, k: jax.Array):
    """The logits the export computes, as ``fn(q', k')`` (:meth:`Scoring.split_logits`).

    A dot-form scoring's are its ``MatMul`` form; the others' their own split.
    """
    if scorer.fusable:
        return partial(_form_logits, scorer), q, k
    return scorer.split_logits(q, k)


def _per_example(fn, bias: jax.Array | None, *xs: jax.Array) -> jax.Array:
    """``fn(*xs, bias)`` one example at a time (``lax.map``: an ONNX ``Loop``).

    ``xs`` are ``[b, ...]``, ``bias`` is ``[b or 1, ...]`` (shared by every example when
    its batch axis is 1) or None (``fn(*xs)``); ``fn`` takes and gives batches of one.
    Same numbers as one call.
    """
    xs = tuple(x[:, None] for x in xs)  # [b, 1, ...]: no reshaping inside the loop
    if bias is None:
        out = jax.lax.map(lambda a: fn(*a), xs)
    elif _shared(bias):
        out = jax.lax.map(lambda a: fn(*a, bias), xs)
    else:
        out = jax.lax.map(lambda a: fn(*a), (*xs, bias[:, None]))
    return out[:, 0]


def _shared(bias: jax.Array) -> bool:
    return isinstance(bias.shape[0], int) and bias.shape[0] == 1


def _softmax_matmul(logits_fn, q: jax.Array, k: jax.Array, vt: jax.Array, bias: jax.Array):
    """``softmax(logits_fn(q, k) + bias) · vt``: weights ``[b, h, q, k]`` -> ``[b, h, q, d_v]``."""
    w = jax.nn.softmax(logits_fn(q, k).astype(jnp.float32) + bias, axis=-1)
    return jnp.matmul(w.astype(vt.dtype), vt)


def softmax_attention(logits_fn, q: jax.Array, k: jax.Array, v: jax.Array, bias):
    """``softmax(logits_fn(q, k) + bias) V`` one example at a time: ``[b, q, h, d_v]``.

    ``logits_fn``: ``q, k -> [b, h, q, k]`` (a scoring's logits, :func:`_split_logits`:
    ``q``, ``k`` any per-position tensors with the batch axis first); ``v``:
    ``[b, k, h, d_v]``; ``bias``: ``[b or 1, 1, q or 1, k]``.
    """
    out = _per_example(partial(_softmax_matmul, logits_fn), bias, q, k, v.transpose(0, 2, 1, 3))
    return out.transpose(0, 2, 1, 3)


def _stackable(scorer: Scoring, forms) -> bool:
    """Several linear forms of one width, no bias: one softmax over their stacked heads."""
    widths = {f.q.shape[-1] for f, _ in forms} | {f.k.shape[-1] for f, _ in forms}
    return (
        scorer.linear_forms
        and len(forms) > 1
        and len(widths) == 1
        and all(f.bias is None for f, _ in forms)
    )


def _rows(linear: nnx.Linear, cols: slice, heads: int, dtype) -> jax.Array:
    """A projection's weights over the rows ``[x, 1, key bias]``: ``[1, dim + 2, heads, d]``.

    The ``1`` row carries the projection's bias, the key-bias row is zero.
    """
    w = linear.kernel[...][:, cols].astype(dtype)
    w = jnp.concatenate([w, linear.bias[...][None, cols].astype(dtype), jnp.zeros_like(w[:1])])
    return w.reshape(1, w.shape[0], heads, -1)


def _folded_projections(a: MultiHeadAttention, scorer: Scoring, start: int, count: int, dtype):
    """The stacked forms' q, k and the values as weights on ``[x, 1, key bias]`` rows.

    ``fq [M·h, dim + 2, d' + 1]`` (the forms' scales in it; its last column is the ``1``
    row), ``fkt [M·h, d' + 1, dim + 2]`` (its last row is the key bias), ``wv [h, dim + 2,
    d_v]``, ``coef [1, M]``. ``x' @ fq`` then ``fkt @ x'ᵀ`` give one example's stacked
    logits with the key bias already added (``scorer.linear_forms``: the forms of the
    projected weights are the projections of the forms).
    """
    cols = slice(start * a.head_dim, (start + count) * a.head_dim)
    wq, wk = (_rows(p, cols, count, dtype) for p in (a.query, a.key))
    forms = scorer.dot_forms(wq, wk)
    rows = wq.shape[1]
    fq = jnp.concatenate([f.q * jnp.asarray(f.scale, dtype) for f, _ in forms], axis=2)[0]
    fk = jnp.concatenate([f.k for f, _ in forms], axis=2)[0]  # [dim + 2, M·h, d']
    unit = jnp.eye(rows, dtype=dtype)[:, None, :]  # [dim + 2, 1, dim + 2]
    stacked = fq.shape[1]
    fq = jnp.concatenate([fq, jnp.broadcast_to(unit[:, :, rows - 2, None], (rows, stacked, 1))], -1)
    fk = jnp.concatenate([fk, jnp.broadcast_to(unit[:, :, rows - 1, None], (rows, stacked, 1))], -1)
    wv = _rows(a.value, cols, count, dtype)[0].transpose(1, 0, 2)
    coef = jnp.stack([jnp.asarray(c, jnp.float32) for _, c in forms])[None]
    return fq.transpose(1, 0, 2), fk.transpose(1, 2, 0), wv, coef


def stacked_softmaxes(a: MultiHeadAttention, scorer: Scoring, x, bias, start: int, count: int):
    """``Σ_m c_m softmax(form_m) V`` of heads ``start:start + count``, one example at a time.

    ``x [b, S, dim]``, ``bias [b or 1, 1, S or 1, S]`` or None (no mask) ->
    ``[b, S, count, d_v]``. The loop
    (``lax.map``, an ONNX ``Loop``) takes ``x' = [x, 1, key bias]`` and its transpose and
    runs only ``MatMul``s and one ``Softmax``: the projections of the stacked forms (scales
    and the key-padding bias folded in, :func:`_folded_projections`; no ``Transpose``),
    one ``MatMul`` for the ``M·h`` logits, one ``Softmax``, the ``c_m`` sum of the weights
    as one ``[1, M] @ [M, h·q·k]`` ``MatMul``, the values and one ``MatMul`` with them
    over ``h`` heads. A query-dependent mask (causal, local) is added to the logits.
    """
    fq, fkt, wv, coef = _folded_projections(a, scorer, start, count, x.dtype)
    b, length = x.shape[0], x.shape[1]
    key_bias = bias is not None and bias.shape[2] == 1 and not _shared(bias)
    column = bias[:, 0, 0, :, None] if key_bias else jnp.zeros((b, length, 1), jnp.float32)
    xa = jnp.concatenate([x, jnp.ones_like(x[..., :1]), column.astype(x.dtype)], axis=-1)

    def one(xe: jax.Array, xte: jax.Array, bias: jax.Array | None = None) -> jax.Array:
        logits = jnp.matmul(jnp.matmul(xe, fq), jnp.matmul(fkt, xte)).astype(jnp.float32)
        w = jax.nn.softmax(logits if bias is None else logits + bias, axis=-1)  # [M·h, q, k]
        w = jnp.matmul(coef, w.reshape(coef.shape[1], -1))  # Σ_m c_m w_m: [1, h·q·k]
        w = w.reshape(count, length, length).astype(x.dtype)
        return jnp.matmul(w, jnp.matmul(xe, wv))  # [h, q, d_v]

    xs = (xa, xa.transpose(0, 2, 1))
    if bias is None or key_bias:
        out = jax.lax.map(lambda t: one(*t), xs)
    elif _shared(bias):
        out = jax.lax.map(lambda t: one(*t, bias[0]), xs)
    else:
        out = jax.lax.map(lambda t: one(*t), (*xs, bias[:, 0, None]))
    return out.transpose(0, 2, 1, 3)


def _native(form: DotForm, v: jax.Array, bias: jax.Array):
    """One fused attention call (ONNX ``Attention`` at opset >= 23): ``[b, q, h, d_v]``."""
    q_len, k_len = form.q.shape[1], form.k.shape[1]
    if form.k.shape[-1] < v.shape[-1]:  # DIFF-Transformer's halves: widen q and k with zeros
        pad = ((0, 0), (0, 0), (0, 0), (0, v.shape[-1] - form.k.shape[-1]))
        form = DotForm(q=jnp.pad(form.q, pad), k=jnp.pad(form.k, pad), scale=form.scale)
    # nnx.dot_product_attention scales by 1/sqrt(width); fold the form's own scale in.
    factor = form.scale * math.sqrt(form.q.shape[-1])
    fq = form.q if factor == 1.0 else form.q * jnp.asarray(factor, form.q.dtype)
    if form.bias is not None:
        bias = bias + form.bias
    # onnxruntime wants the mask's query axis spelled out.
    bias = jnp.broadcast_to(bias, (bias.shape[0], bias.shape[1], q_len, k_len))
    d_v, width = v.shape[-1], form.k.shape[-1]
    if width > d_v:  # differential widens q and k; the converter wants v as wide
        v = jnp.pad(v, ((0, 0), (0, 0), (0, 0), (0, width - d_v)))
    out = nnx.dot_product_attention(fq, form.k, v.astype(fq.dtype), bias=bias.astype(fq.dtype))
    return out[..., :d_v] if width > d_v else out


class OnnxAttention(nnx.Module):
    """A :class:`MultiHeadAttention` (self-attention) in onnxruntime-friendly operators.

    Holds the wrapped layer, so its parameters are the trained ones. Dropout is off.

    Args:
      inner: the layer to stand in for.
      native: use the fused ``Attention`` operator for dot-form scorings.

    """

    def __init__(self, inner: MultiHeadAttention, *, native: bool = True):
        self.inner = inner
        self.native = native

    def __call__(
        self, x: jax.Array, valid: jax.Array | None = None, *, capture: bool = False
    ) -> tuple[jax.Array, Capture | None]:
        """``[batch, len, dim], [batch, len] -> ([batch, len, dim], Capture or None)``."""
        a = self.inner

        def split(y: jax.Array) -> jax.Array:
            return y.reshape(*y.shape[:-1], a.heads, a.head_dim)

        qkv: list[jax.Array] = []  # the projections, made when a head group needs them

        def projections() -> list[jax.Array]:
            if not qkv:
                qkv.extend(split(p(x)) for p in (a.query, a.key, a.value))
            return qkv

        length = x.shape[1]
        mask = build_mask(
            length, length, key_valid=valid, causal=a.config.causal, window=a.config.window
        )
        if mask is None:
            bias = jnp.zeros((1, 1, 1, length), jnp.float32)
            keep = None
        else:
            bias = jnp.where(mask, 0.0, MASK_VALUE).astype(jnp.float32)
            keep = row_has_keys(mask, length)  # [b, q, 1, 1]
        outs, caps = [], []
        for (_, start, count), scorer in zip(a.groups, a.scorers, strict=True):
            logits = w = None
            # Shapes only (adds nothing to the graph): which form this scoring exports as.
            shape = jax.ShapeDtypeStruct((*x.shape[:2], count, a.head_dim), x.dtype)
            forms = jax.eval_shape(scorer.dot_forms, shape, shape) if scorer.fusable else ()
            stacked = not capture and _stackable(scorer, forms)
            if not stacked:  # the stacked forms project x themselves
                qh, kh, vh = (t[:, :, start : start + count] for t in projections())
            if stacked:
                out = stacked_softmaxes(a, scorer, x, None if mask is None else bias, start, count)
            elif scorer.fusable and self.native and not capture:
                # Σ_m c_m softmax(form_m) V: one fused operator per softmax term.
                out = None
                for form, c in scorer.dot_forms(qh, kh):
                    o = _native(form, vh, bias)
                    o = o if isinstance(c, float) and c == 1.0 else o * c.astype(o.dtype)
                    out = o if out is None else out + o
            elif not _softmax_of_logits(scorer):
                logits, w = scorer.weights(qh, kh, mask)
                out = _weighted_sum(w, vh)
            elif not capture and scorer.export_per_example:
                out = softmax_attention(*_split_logits(scorer, qh, kh), vh, bias)
            else:
                fn, qs, ks = _split_logits(scorer, qh, kh)
                logits = fn(qs, ks)
                w = jax.nn.softmax(logits.astype(jnp.float32) + bias, axis=-1)
                out = _weighted_sum(w.astype(vh.dtype), vh)
                if keep is not None:  # a row with no key: zeros, as attend() gives
                    w = w * keep.transpose(0, 2, 1, 3)
            if keep is not None:
                out = out * keep.astype(out.dtype)
            outs.append(scorer.finalize(out))
            caps.append((logits, w))
        out = outs[0] if len(outs) == 1 else jnp.concatenate(outs, axis=2)
        y = a.out(out.reshape(*out.shape[:2], -1))
        if not capture:
            return y, None
        # The logits of a dot-form scoring are its softmax-equivalent form (per-row
        # constants dropped); only the weights are exported.
        return y, Capture(
            logits=jnp.concatenate([c[0] for c in caps], axis=1),
            weights=jnp.concatenate([c[1] for c in caps], axis=1),
        )


def _task(task):
    if task is None:
        from semalign import tasks

        return tasks.get(tasks.DEFAULT_TASK).load()
    return task


def export_model(model, *, task=None, kernel: str = "onnxruntime"):
    """A copy of ``model`` built for export: explicit, unchunked attention, eval mode.

    The chunked CPU path (``lax.map``) cannot take a symbolic batch and the fused path
    exports its fully-masked-row handling as extra passes, so the copy is built with
    ``fused=False, batch_chunk=0`` and gets ``model``'s state (same structure).

    Args:
      model: a trained model of ``task``.
      task: the model's task (:class:`semalign.tasks.base.Task`); None: classification.
      kernel: ``"onnxruntime"`` swaps the encoder's self-attention for
        :class:`OnnxAttention`; ``"model"`` keeps the model's own attention (the graph as
        the model is written).

    Raises:
      ValueError: an unknown kernel.
    """
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
    cfg = model.config
    attention = dataclasses.replace(cfg.attention, fused=False, batch_chunk=0)
    copy = _task(task).build(cfg.replace(attention=attention), rngs=nnx.Rngs(0))
    nnx.update(copy, nnx.state(model))
    copy.eval()
    if kernel == "onnxruntime":
        for block in copy.encoder.blocks:
            block.attn = OnnxAttention(block.attn)
    return copy


def forward_fn(model, *, task=None, embedding: bool = False, attention: bool = False):
    """The exported pipeline of ``model``: ``(ids, mask, ...) -> outputs`` of its task's graph."""
    return _task(task).onnx_graph(model, embedding=embedding, attention=attention).fn


def load_converters() -> None:
    """Import jax2onnx's JAX and Flax converters, not its Equinox ones.

    On its first conversion jax2onnx imports every plugin it ships; the Equinox ones
    compile dozens of JAX functions at import, 13 of the 15 s of a first export measured
    here, and semalign needs none of them. This uses jax2onnx 0.17 internals (the version
    is pinned below 0.18); if they change, jax2onnx imports everything as before.
    """
    try:
        from jax2onnx.plugins import plugin_system as ps

        if ps._already_imported_plugins:
            return
        root = Path(ps.__file__).parent
        for tree in ("jax", "flax"):
            ps._import_tree(root / tree, f"jax2onnx.plugins.{tree}")
        ps._already_imported_plugins = True
    except (ImportError, AttributeError):  # pragma: no cover - a jax2onnx without them
        return


def convert(
    model,
    *,
    task=None,
    opset: int = DEFAULT_OPSET,
    embedding: bool = False,
    attention: bool = False,
    kernel: str = "onnxruntime",
    name: str = "semalign",
):
    """Trace ``model`` into an ONNX ``ModelProto`` with symbolic batch and sequence axes.

    Args:
      model: a trained model (not modified).
      task: its task (:class:`semalign.tasks.base.Task`); None: classification.
      opset: ONNX opset; 23 and above get the fused ``Attention`` operator.
      embedding: add the pooled embedding output (where the task offers it).
      attention: add the attention weights output (explicit weights, no fused operator).
      kernel: see :func:`export_model`.
      name: the graph's name.

    Returns:
      An ``onnx.ModelProto``: every input int32 ``[B, S]`` (``S <= max_len``; the texts
      of a pair share ``S``), the outputs of the task's graph.
    """
    from jax2onnx import to_onnx

    task = _task(task)
    # jax2onnx's IR serializer logs a warning for every untyped constant.
    logging.getLogger("onnx_ir").setLevel(logging.ERROR)
    load_converters()
    graph = task.onnx_graph(
        export_model(model, task=task, kernel=kernel), embedding=embedding, attention=attention
    )
    b, s = jax.export.symbolic_shape("B, S", constraints=(f"S <= {model.config.max_len}",))
    spec = jax.ShapeDtypeStruct((b, s), jnp.int32)
    return to_onnx(
        graph.fn,
        [spec] * len(graph.inputs),
        model_name=name,
        opset=opset,
        input_names=list(graph.inputs),
        output_names=list(graph.outputs),
        normalization_mode="prefer_native" if kernel == "onnxruntime" else "auto",
    )
