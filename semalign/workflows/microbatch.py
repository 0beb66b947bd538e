"""The gradient of a batch accumulated over micro-batches of a few rows (the CPU train step).

On a CPU the activations of two examples stay in cache through the whole forward and
backward pass, where a batch of 32 spills to memory; one host device per core (see
:func:`semalign.sharding.use_cpu_cores`) then runs this loop on each core's share of the
rows. ``benchmarks/README.md`` measures it (about 2-3x the whole-batch step on 2 cores).

Only a loss that is a sum over rows (``TaskSpec.row_sum_losses``: the loss value is
``loss_sum / max(count, 1)``, each row's term depending on that row alone) may be
accumulated: the micro-batches' ``loss_sum`` gradients are summed (over the scan, then
over the devices) and divided by the batch's ``count`` once, which is the gradient of
the whole batch's loss, so the update is the plain step's up to float rounding.

Over several ``data`` devices, a large parameter's summed gradient is reduce-scattered by
rows instead of all-reduced (:func:`semalign.sharding.splits_rows`): each device then
updates only its rows' optimizer moments, and the new rows are gathered.

Dropout: micro-batch ``g`` (counted over the whole batch, device by device, so the draws
do not depend on how many devices share the rows) draws its masks from the model's random
streams with each key folded with ``g`` (``fold_in(key, g)``) and the stream's counter as
the plain step would use it; after the step every counter has advanced as one plain
forward pass advances it, and the keys are unchanged. So a step's masks depend on the
seed, the step and the micro-batch size alone, and a resumed run draws what the
uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

__all__ = [
    "AUTO_ROWS",
    "accumulate",
    "fold_keys",
    "map_rows",
    "plan_micro_batch",
    "with_micro_batch",
]

#: Rows per micro-batch on a CPU when the user does not choose (benchmarks/README.md).
AUTO_ROWS = 2


def _is_key(x: Any) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jax.dtypes.prng_key)


def fold_keys(rest: Any, index: Any) -> Any:
    """``rest`` (a model's non-parameter state) with every random key folded with ``index``."""
    return jax.tree.map(lambda x: jax.random.fold_in(x, index) if _is_key(x) else x, rest)


def plan_micro_batch(
    requested: int | None,
    *,
    sums_over_rows: bool,
    what: str,
    batch_size: int,
    mesh: Any = None,
    backend: str | None = None,
) -> int:
    """Rows per micro-batch of a training (0: the plain whole-batch step).

    Args:
      requested: ``TrainConfig.micro_batch`` (None: automatic, 0: off, N: N rows).
      sums_over_rows: the loss is a sum over rows (``TaskSpec.sums_over_rows``).
      what: the task and loss, in words, for the error message.
      batch_size: rows per step.
      mesh: the training mesh (None: one device).
      backend: JAX's default backend (None: ask JAX).

    Returns:
      Automatic: :data:`AUTO_ROWS` (1 if a device's rows are odd) on a CPU for a loss
      that sums over rows without a ``model`` axis, else 0 (GPU and TPU are unchanged).

    Raises:
      ValueError: an explicit N that the loss, the mesh or the batch cannot take.
    """
    data = 1 if mesh is None else int(mesh.shape["data"])
    model = 1 if mesh is None else int(mesh.shape["model"])
    local = batch_size // data
    if requested is None:
        backend = backend or jax.default_backend()
        if backend != "cpu" or not sums_over_rows or model > 1:
            return 0
        return AUTO_ROWS if local % AUTO_ROWS == 0 else 1
    if requested == 0:
        return 0
    if not sums_over_rows:
        raise ValueError(
            f"--micro-batch {requested}: {what} compares rows within a batch, so its gradient "
            "cannot be accumulated over micro-batches: use --micro-batch 0"
        )
    if model > 1:
        raise ValueError(
            f"--micro-batch {requested} splits rows only: the mesh's model axis of {model} "
            "devices cannot take it; use --micro-batch 0 or a mesh with model=1"
        )
    if local % requested:
        raise ValueError(
            f"--micro-batch {requested} does not divide the {local} rows each of the {data} "
            f"data device(s) holds (batch size {batch_size}): use a divisor of {local}, "
            "or 0 (off)"
        )
    return requested


def with_micro_batch(cfg: Any, spec: Any, loss: str, mesh: Any = None) -> Any:
    """``cfg`` (a ``TrainConfig``) with ``micro_batch`` decided (config.json records it).

    Raises:
      ValueError: an explicit value the task's loss, the mesh or the batch cannot take.
    """
    rows = plan_micro_batch(
        cfg.micro_batch,
        sums_over_rows=spec.sums_over_rows(loss),
        what=f"the {spec.name} task's {loss!r} loss",
        batch_size=cfg.batch_size,
        mesh=mesh,
    )
    return dataclasses.replace(cfg, micro_batch=rows)


def accumulate(
    loss: Callable[[Any, Any], tuple[jax.Array, dict[str, jax.Array]]],
    model: nnx.Module,
    batch: Any,
    *,
    rows: int,
    mesh: Any = None,
) -> tuple[Any, dict[str, jax.Array]]:
    """The summed ``loss_sum`` gradient and sums of ``batch``, micro-batch by micro-batch.

    Traced inside the jitted train step. ``model``'s random counters advance as one plain
    forward pass advances them (its keys stay); its parameters are not touched.

    Args:
      loss: ``(model, batch) -> (value, sums)`` with ``sums["loss_sum"]`` a sum over rows.
      model: the model in train mode.
      batch: a NamedTuple of ``[B, ...]`` arrays (rows first).
      rows: rows per micro-batch.
      mesh: a ``("data", "model")`` mesh with ``model`` 1: each ``data`` device runs the
        loop on its ``B / data`` rows (``shard_map``) and the results are summed.

    Returns:
      ``(grads, sums)``: the gradient of the batch's summed ``loss_sum`` with respect to
      the parameters (an ``nnx.State`` like ``nnx.grad``'s; on a mesh a row-split
      parameter's comes split by rows over ``data``), and the batch's summed sums.
    """
    from semalign import sharding

    graph, params, rest = nnx.split(model, nnx.Param, ...)
    devices = 1 if mesh is None else int(mesh.shape[sharding.DATA])

    def summed(p, r, index, part):
        # Variables made inside this trace (by the fold): the forward pass may update them.
        m = nnx.merge(graph, p, fold_keys(r, index))
        _, sums = loss(m, part)
        return sums["loss_sum"], (sums, nnx.split(m, nnx.Param, ...)[2])

    grad = jax.grad(summed, has_aux=True)

    def local(params, rest, batch):
        size = jax.tree.leaves(batch)[0].shape[0]
        step = math.gcd(rows, size)  # rows divide it (plan_micro_batch); a guard
        n = size // step
        first = 0 if devices == 1 else jax.lax.axis_index(sharding.DATA) * n
        parts = jax.tree.map(lambda x: x.reshape(n, step, *x.shape[1:]), batch)

        def body(carry, xs):
            grads, sums, _ = carry
            i, part = xs
            g, (s, after) = grad(params, rest, first + i, part)
            grads = jax.tree.map(jnp.add, grads, g)
            sums = jax.tree.map(jnp.add, sums, s)
            return (grads, sums, after), None

        zeros = jax.tree.map(jnp.zeros_like, params)
        shapes = jax.eval_shape(
            lambda: summed(params, rest, 0, jax.tree.map(lambda x: x[0], parts))
        )
        sums0 = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes[1][0])
        (grads, sums, after), _ = jax.lax.scan(
            body, (zeros, sums0, rest), (jnp.arange(n, dtype=jnp.int32), parts)
        )
        # Counters as after one forward pass (every micro-batch advanced them alike); keys kept.
        after = jax.tree.map(lambda old, new: old if _is_key(old) else new, rest, after)
        if devices > 1:
            grads = jax.tree.map(lambda g: _reduce(g, devices), grads)
            sums = jax.lax.psum(sums, sharding.DATA)
        return grads, sums, after

    if devices > 1:
        from jax.sharding import PartitionSpec

        rep = PartitionSpec()
        local = jax.shard_map(
            local,
            mesh=mesh,
            in_specs=(rep, rep, PartitionSpec(sharding.DATA)),
            # Row-split gradients come out split by rows (the optimizer updates them so).
            out_specs=(
                jax.tree.map(
                    lambda p: (
                        PartitionSpec(sharding.DATA)
                        if sharding.splits_rows(p.shape, devices)
                        else rep
                    ),
                    params,
                ),
                rep,
                rep,
            ),
            check_vma=False,
        )
    grads, sums, after = local(params, rest, batch)
    nnx.update(model, after)
    return grads, sums


def _reduce(g: jax.Array, devices: int) -> jax.Array:
    """``g`` summed over the ``data`` devices: whole, or its rows split when it splits rows."""
    from semalign import sharding

    if sharding.splits_rows(g.shape, devices):
        return jax.lax.psum_scatter(g, sharding.DATA, scatter_dimension=0, tiled=True)
    return jax.lax.psum(g, sharding.DATA)


def map_rows(
    outputs: Callable[[Any, Any], Any],
    model: nnx.Module,
    batch: Any,
    *,
    rows: int,
    mesh: Any = None,
) -> Any:
    """``outputs(model, batch)`` computed micro-batch by micro-batch (the CPU eval step).

    Traced inside the jitted eval step. Only for outputs made of arrays with rows first
    (each row's depending on that row alone) and scalars that are sums over rows
    (``TaskSpec.row_outputs``): the arrays are put back in row order, the scalars added.
    Same numbers as the whole batch up to float rounding, and on a CPU about 1.2x (length
    128) to 2.4x (length 512) faster: a micro-batch's activations stay in cache
    (``benchmarks/README.md``).

    Args:
      outputs: ``(model, batch) -> outputs`` in eval mode.
      model: the model in eval mode (not updated).
      batch: a NamedTuple of ``[B, ...]`` arrays (rows first).
      rows: rows per micro-batch.
      mesh: a ``("data", "model")`` mesh with ``model`` 1: each ``data`` device maps its
        ``B / data`` rows (``shard_map``); the scalars are summed over the devices.

    Returns:
      What ``outputs(model, batch)`` returns, rows split over ``data`` on a mesh.
    """
    from semalign import sharding

    graph, state = nnx.split(model)
    devices = 1 if mesh is None else int(mesh.shape[sharding.DATA])

    def local(state, batch):
        size = jax.tree.leaves(batch)[0].shape[0]
        step = math.gcd(rows, size)
        n = size // step
        parts = jax.tree.map(lambda x: x.reshape(n, step, *x.shape[1:]), batch)
        out = jax.lax.map(lambda part: outputs(nnx.merge(graph, state), part), parts)
        out = jax.tree.map(
            lambda x: x.reshape(n * step, *x.shape[2:]) if x.ndim > 1 else jnp.sum(x, 0), out
        )
        if devices > 1:
            out = jax.tree.map(lambda x: x if x.ndim else jax.lax.psum(x, sharding.DATA), out)
        return out

    if devices == 1:
        return local(state, batch)
    from jax.sharding import PartitionSpec

    one = jax.eval_shape(
        lambda: outputs(model, jax.tree.map(lambda x: x[: math.gcd(rows, x.shape[0])], batch))
    )
    specs = jax.tree.map(lambda x: PartitionSpec(sharding.DATA) if x.ndim else PartitionSpec(), one)
    return jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(PartitionSpec(), PartitionSpec(sharding.DATA)),
        out_specs=specs,
        check_vma=False,
    )(state, batch)
