"""Several processes, one writer: process 0 writes run files, the others wait and read.

With ``--distributed`` every process runs the same training on its share of the devices.
Files are written once: process 0 creates the run folder, the tokenizer, the labels, the
config, the metrics and the events, and every process calls the orbax checkpointer
(which writes each array once). The others wait at a barrier (:func:`barrier`) and read
what process 0 wrote. With one process every helper here is free: no barrier, no
broadcast.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np

from semalign import errors

__all__ = ["barrier", "from_lead", "initialize", "is_lead", "training_mesh"]

#: Bytes of a text :func:`from_lead` shares (a run folder's path fits many times over).
_TEXT_BYTES = 8192


def initialize() -> None:
    """``jax.distributed.initialize`` from the environment.

    JAX reads ``JAX_COORDINATOR_ADDRESS`` (and detects SLURM, Open MPI, Kubernetes and
    Cloud TPU by itself); ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` name the
    process count and this process's rank where no cluster manager does.
    """
    import jax

    count, rank = os.environ.get("JAX_NUM_PROCESSES"), os.environ.get("JAX_PROCESS_ID")
    jax.distributed.initialize(
        num_processes=None if count is None else int(count),
        process_id=None if rank is None else int(rank),
    )


def _processes() -> int:
    import jax

    return jax.process_count()


def is_lead() -> bool:
    """This process writes the run's files (process 0)."""
    import jax

    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Every process waits here until all arrive (nothing with one process)."""
    if _processes() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(f"semalign:{name}")


def _share(text: str) -> str:
    from jax.experimental import multihost_utils

    raw = text.encode("utf-8")[:_TEXT_BYTES]
    buf = np.zeros(_TEXT_BYTES + 4, np.uint8)
    buf[:4] = np.frombuffer(np.uint32(len(raw)).tobytes(), np.uint8)
    buf[4 : 4 + len(raw)] = np.frombuffer(raw, np.uint8)
    got = np.asarray(multihost_utils.broadcast_one_to_all(buf))
    size = int(np.frombuffer(got[:4].tobytes(), np.uint32)[0])
    return got[4 : 4 + size].tobytes().decode("utf-8")


def from_lead(fn: Callable[[], str]) -> str:
    """``fn()`` on process 0, its text on every process; its error raised on every process.

    Process 0 alone runs ``fn`` (creates the run folder, say); the others receive the
    text it returned, or raise the same kind of :class:`~semalign.errors.SemalignError`
    with the same message, so no process waits forever for one that failed.
    """
    if _processes() == 1:
        return fn()
    failure: errors.SemalignError | None = None
    text = ""
    if is_lead():
        try:
            text = "ok:" + fn()
        except errors.SemalignError as err:
            failure, text = err, f"error:{type(err).__name__}:{err}"
    shared = _share(text)
    if failure is not None:
        raise failure
    kind, _, rest = shared.partition(":")
    if kind == "error":
        name, _, message = rest.partition(":")
        raise getattr(errors, name, errors.SemalignError)(message)
    return rest


def training_mesh(mesh: str | None, distributed: bool, *, batch_size: int, heads: int):
    """The ``("data", "model")`` mesh a training asks for (None: one device, no mesh).

    Args:
      mesh: ``--mesh`` (``data=4,model=2``, ``auto``) or None (on one process: as many
        devices as divide ``batch_size`` on ``data``).
      distributed: join the other processes first (``jax.distributed``).
      batch_size: rows per step, which the ``data`` axis must divide.
      heads: attention heads, which the ``model`` axis must divide.
    """
    import jax

    from semalign import sharding

    if distributed:
        initialize()  # coordinator and ranks from the environment
    count = jax.device_count()
    if mesh is None and not distributed:
        # Not asked for: as many devices as divide the batch (host devices per core).
        count = math.gcd(count, batch_size)
    if mesh is None and count == 1:
        return None
    spec = sharding.parse_mesh(mesh, count)
    out = sharding.make_mesh(spec)
    sharding.check_fits(spec, batch_size=batch_size, heads=heads)
    return out
