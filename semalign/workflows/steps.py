"""Jitted train and eval steps for any task (graph traversal happens once, at trace).

``TrainState`` is ``(model_state, optimizer_state)``; the train step donates it, so the
parameters are updated in place in device memory. A batch is any NamedTuple of arrays
(its rows the leading axis): on a mesh every array is split over ``data``, so the
shardings follow the batch's structure and every task runs on every mesh.

With ``micro_batch`` rows (a loss that sums over rows; the CPU default, see
:mod:`semalign.workflows.microbatch`) the gradient is accumulated over micro-batches of
that many rows inside the one jitted step, each ``data`` device looping over its own rows;
the update is the whole-batch step's up to float rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

Metrics = dict[str, jax.Array]

__all__ = ["Steps", "strong_types", "weight_penalty"]


def weight_penalty(model: nnx.Module, l1: float, l2: float) -> jax.Array | float:
    """``l1·Σ|W| + l2·ΣW²`` over the model's weight matrices (parameters of rank >= 2).

    Biases, norms' scales and scalar scoring parameters (τ, λ) are not penalised.
    """
    if not (l1 or l2):
        return 0.0
    mats = [p[...] for _, p in nnx.iter_graph(model) if isinstance(p, nnx.Param) and p.ndim >= 2]
    return l1 * sum(jnp.sum(jnp.abs(w)) for w in mats) + l2 * sum(
        jnp.sum(jnp.square(w)) for w in mats
    )


def strong_types(tree: Any) -> Any:
    """``tree`` with every weakly typed array made strong (same dtype and values).

    A parameter created from a Python float (``jnp.full(n, 0.5)``) is weakly typed until
    its first update makes it strong; the changed input type would compile the train
    step again, and its optimizer moments once more. Plugins are free to make one.
    """
    return jax.tree.map(
        lambda x: jnp.asarray(x, x.dtype) if getattr(x, "weak_type", False) else x, tree
    )


def _put(tree: Any, shardings: Any) -> Any:
    """``jax.device_put(tree, shardings)``, also onto devices of other processes.

    With several processes a host value (every process holds the same one: the same
    seed, the same checkpoint) becomes a global array from the pieces this process's
    devices hold; arrays already global are resharded.
    """
    if jax.process_count() == 1:
        return jax.device_put(tree, shardings)

    def one(x, where):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return jax.device_put(x, where)
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            raw = one(jax.random.key_data(x), where)
            return jax.random.wrap_key_data(raw, impl=jax.random.key_impl(x))
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, where, lambda index: host[index])

    # ``shardings`` is a prefix of ``tree`` (one sharding per variable).
    return jax.tree.map(
        lambda where, sub: jax.tree.map(lambda x: one(x, where), sub), shardings, tree
    )


class Steps:
    """Compiled steps for one model + optimizer and a task's objective.

    Args:
      model: the model (its train/eval mode is captured per step).
      optimizer: an ``nnx.Optimizer`` over ``nnx.Param``; None for evaluation only
        (:meth:`train` then refuses).
      loss: ``(model, batch) -> (loss, device sums)`` (:meth:`semalign.tasks.base.Task.loss`).
      outputs: ``(model, batch) -> outputs`` in eval mode.
      l1: L1 penalty on weight matrices.
      l2: L2 penalty on weight matrices.
      mesh: a ``("data", "model")`` mesh; the state is placed by its logical axis names
        (``semalign.sharding``) and batches are split over ``data``. None: one device.
      micro_batch: rows per micro-batch (0: the whole batch at once); only for a loss
        that sums over rows (``TaskSpec.sums_over_rows``), with ``model`` 1 on the mesh
        (:func:`semalign.workflows.microbatch.plan_micro_batch` picks it).
      eval_micro_batch: rows per micro-batch of the eval step (0: the whole batch); only
        for outputs by rows (``TaskSpec.row_outputs``; :meth:`for_task` takes
        ``micro_batch`` then).
      compile_aside: :meth:`precompile` compiles each new batch shape's steps on
        background threads. None: only where the default backend is an accelerator (the
        host's cores are free while it trains); on a CPU the step already keeps every core
        busy, and on 2 cores it measured no faster and up to 0.4 GiB heavier.
    """

    def __init__(
        self,
        model: nnx.Module,
        optimizer: nnx.Optimizer | None,
        *,
        loss: Callable[[Any, Any], tuple[jax.Array, Metrics]] | None = None,
        outputs: Callable[[Any, Any], Any],
        l1: float = 0.0,
        l2: float = 0.0,
        mesh: Any = None,
        micro_batch: int = 0,
        eval_micro_batch: int = 0,
        compile_aside: bool | None = None,
    ):
        if micro_batch < 0 or eval_micro_batch < 0:
            raise ValueError(f"micro batches must be >= 0, got {micro_batch}, {eval_micro_batch}")
        self.micro_batch, self.eval_micro_batch = micro_batch, eval_micro_batch
        model.train()
        self.train_def, model_state = nnx.split(model)
        model.eval()
        self.eval_def, _ = nnx.split(model)
        self.opt_def, opt_state = nnx.split(optimizer) if optimizer is not None else (None, None)
        self.state = strong_types((model_state, opt_state))
        self.loss, self.outputs = loss, outputs
        self.l1, self.l2 = l1, l2
        self.mesh = mesh
        self._compiled = None  # a Precompiler once precompile() is called
        if compile_aside is None:
            compile_aside = jax.default_backend() != "cpu"
        self.compile_aside = compile_aside
        if mesh is None:
            self._train = jax.jit(self._train_step, donate_argnums=0)
            self._eval = jax.jit(self._eval_step)
            return
        from semalign import sharding

        state_sh = sharding.state_shardings(self.state, mesh)
        if micro_batch and opt_state is not None:
            # The accumulated gradient of a large parameter comes split by rows
            # (``sharding.splits_rows``): its moments are held and updated so.
            state_sh = (state_sh[0], sharding.row_split_moments(state_sh[1], opt_state, mesh))
        self.state = _put(self.state, state_sh)
        rows, rep = sharding.batch_sharding(mesh), sharding.replicated(mesh)
        # ``rows`` is a prefix of any batch structure: every array is split by rows.
        self._train = jax.jit(
            self._train_step,
            donate_argnums=0,
            in_shardings=(state_sh, rows),
            out_shardings=(state_sh, rep),
        )
        # Several processes: outputs come back whole to each, for the host-side report.
        whole = {"out_shardings": rep} if jax.process_count() > 1 else {}
        self._eval = jax.jit(self._eval_step, in_shardings=(state_sh[0], rows), **whole)

    @classmethod
    def for_task(
        cls, task, model: nnx.Module, optimizer: nnx.Optimizer | None, *, loss=None, data=None, **kw
    ) -> Steps:
        """Steps with ``task``'s objective (``loss``: one of its losses, None: the default).

        ``data`` is the task's data config where its objective reads one (a similarity
        score range); other keywords go to :class:`Steps`.
        """
        name = task.spec.check_loss(loss)
        if name in task.spec.row_outputs:
            kw.setdefault("eval_micro_batch", kw.get("micro_batch", 0))
        return cls(
            model, optimizer, loss=task.loss(name, data), outputs=task.outputs(name, data), **kw
        )

    def _train_step(self, state: Any, batch: Any):
        model = nnx.merge(self.train_def, state[0])
        optimizer = nnx.merge(self.opt_def, state[1])

        if self.micro_batch:
            grads, sums = self._accumulated(model, batch)
        else:

            def objective(model):
                value, sums = self.loss(model, batch)
                return value + weight_penalty(model, self.l1, self.l2), sums

            grads, sums = nnx.grad(objective, has_aux=True)(model)
        optimizer.update(model, grads)
        metrics = {**sums, "grad_norm": optax.global_norm(grads)}
        return (nnx.state(model), nnx.state(optimizer)), metrics

    def _accumulated(self, model: nnx.Module, batch: Any):
        """``(grads, sums)`` of the objective, accumulated over micro-batches."""
        from semalign.workflows.microbatch import accumulate

        summed, sums = accumulate(self.loss, model, batch, rows=self.micro_batch, mesh=self.mesh)
        count = jnp.maximum(sums["count"], 1.0)  # value = loss_sum / max(count, 1)
        grads = jax.tree.map(lambda g: g / count, summed)
        if self.l1 or self.l2:
            penalty = nnx.grad(lambda m: weight_penalty(m, self.l1, self.l2))(model)
            grads = jax.tree.map(jnp.add, grads, penalty)
        return grads, sums

    def _eval_step(self, model_state: Any, batch: Any):
        model = nnx.merge(self.eval_def, model_state)
        if self.eval_micro_batch:
            from semalign.workflows.microbatch import map_rows

            return map_rows(self.outputs, model, batch, rows=self.eval_micro_batch, mesh=self.mesh)
        return self.outputs(model, batch)

    def precompile(self, batch: Any) -> None:
        """Compile the train and eval steps for ``batch``'s shapes on a background thread.

        Later batches of those shapes run the programs made there (waiting for one under
        way), so a run that knows its shapes ahead compiles them while its first shapes
        train (:mod:`semalign.workflows.precompile`). Without ``compile_aside``, and with
        several processes, each shape compiles when its first batch comes.
        """
        if not self.compile_aside or jax.process_count() > 1:
            return
        from semalign.workflows.precompile import Precompiler, signature, spec

        if self._compiled is None:
            from semalign.sharding import cpu_cores

            # One compilation per core (a few: each holds a program's memory while it runs).
            self._compiled = Precompiler(workers=min(cpu_cores(), 4))
        key = signature(batch)
        if ("eval", key) in self._compiled:
            return
        shapes = spec(batch)
        state = spec(self.state, placed=True)  # read now: the train step donates the state
        if self.opt_def is not None and self.loss is not None:
            self._compiled.submit(("train", key), lambda: self._train.lower(state, shapes))
        lower = lambda: self._eval.lower(state[0], shapes)  # noqa: E731
        self._compiled.submit(("eval", key), lower, priority=1)

    def _program(self, kind: str, batch: Any, jitted: Callable) -> Callable:
        if self._compiled is None:
            return jitted
        from semalign.workflows.precompile import signature

        return self._compiled.get((kind, signature(batch))) or jitted

    def _place(self, batch: Any) -> Any:
        if self.mesh is None or jax.process_count() == 1:
            return batch  # jit's in_shardings split host arrays over the mesh
        # Several processes: every one holds the same global batch (same data, same seed)
        # and hands over the rows its own devices hold, wherever the mesh puts them.
        from semalign import sharding

        rows = sharding.batch_sharding(self.mesh)

        def local(a):
            a = np.asarray(a)
            return jax.make_array_from_callback(a.shape, rows, lambda index: a[index])

        return jax.tree.map(local, batch)

    def train(self, batch: Any) -> Metrics:
        """One optimisation step; returns device-side sums (no host sync)."""
        if self.opt_def is None or self.loss is None:
            raise RuntimeError("these steps were built without an optimizer: evaluation only")
        step = self._program("train", batch, self._train)
        self.state, metrics = step(self.state, self._place(batch))
        return metrics

    def evaluate(self, batch: Any) -> Any:
        """The task's eval outputs for one batch (device arrays, no host sync)."""
        return self._program("eval", batch, self._eval)(self.state[0], self._place(batch))

    def sync(self, model: nnx.Module, optimizer: nnx.Optimizer | None = None) -> None:
        """Write the compiled state back into the Python objects (for saving)."""
        nnx.update(model, self.state[0])
        if optimizer is not None:
            nnx.update(optimizer, self.state[1])

    def set_model(self, model: nnx.Module) -> None:
        """Take the model's state from the Python object (after restoring the best)."""
        state = nnx.state(model)
        if self.mesh is not None:
            from semalign import sharding

            state = _put(state, sharding.state_shardings(state, self.mesh))
        self.state = (state, self.state[1])
