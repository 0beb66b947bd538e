"""One device mesh with axes ``("data", "model")`` and one table from logical axes to it.

Model code names logical axes on its parameters (``embed``, ``heads``, ``mlp``, ...);
:data:`LOGICAL_RULES` maps each to a mesh axis or to replication. Batches are split on
``data``; attention heads and MLP hidden units on ``model`` (tensor parallelism). The
same code runs on one CPU (a 1×1 mesh), on GPUs and on TPU slices (after
``jax.distributed.initialize``); tests fake 8 CPU devices with
``XLA_FLAGS=--xla_force_host_platform_device_count=8``.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from semalign.errors import SemalignError

DATA, MODEL = "data", "model"
AXES = (DATA, MODEL)

#: Logical axis -> mesh axis (None: replicated). The only place this mapping lives.
LOGICAL_RULES: Mapping[str, str | None] = {
    "batch": DATA,
    "heads": MODEL,
    "mlp": MODEL,
    "embed": None,
    "vocab": None,
    "length": None,
    "classes": None,
}


class MeshError(SemalignError):
    """A mesh that does not fit the devices, the batch or the model."""


#: The XLA flag that splits the host (CPU) into that many JAX devices.
HOST_DEVICES_FLAG = "--xla_force_host_platform_device_count"


def cpu_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _chosen_host_devices() -> int | None:
    # The host device count the environment sets (JAX's variable wins over XLA's flag).
    if os.environ.get("JAX_NUM_CPU_DEVICES", "").strip().isdigit():
        return int(os.environ["JAX_NUM_CPU_DEVICES"])
    found = re.search(HOST_DEVICES_FLAG + r"=(\d+)", os.environ.get("XLA_FLAGS", ""))
    return int(found.group(1)) if found else None


def cli_host_devices() -> None:
    """The command line's start: one host device per core, unless the user set XLA_FLAGS.

    Only the environment changes (JAX is not imported); ``JAX_NUM_CPU_DEVICES`` set by
    the user is kept too.
    """
    if "XLA_FLAGS" not in os.environ and _chosen_host_devices() is None:
        os.environ["XLA_FLAGS"] = f"{HOST_DEVICES_FLAG}={cpu_cores()}"


def use_cpu_cores(count: int | None = None) -> int:
    """One JAX CPU device per core, as ``semalign train`` sets up: the fast CPU train step.

    The micro-batched train step (:mod:`semalign.workflows.microbatch`) runs on each
    core's share of the rows when the host is split into one device per core; call this
    before JAX starts its backends (before the first computation). Without ``count``, a
    host device count the environment sets (``XLA_FLAGS`` or ``JAX_NUM_CPU_DEVICES``)
    is kept.

    Args:
      count: devices to make (None: :func:`cpu_cores`).

    Returns:
      The host device count JAX will use.

    Raises:
      MeshError: JAX has already started its backends (one line saying so).
    """
    chosen = _chosen_host_devices()
    requested, count = count, count or chosen or cpu_cores()
    jax = sys.modules.get("jax")
    if jax is not None:
        from jax._src import xla_bridge

        if xla_bridge.backends_are_initialized():
            have = len(jax.devices("cpu"))
            if count == have:
                return have
            raise MeshError(
                f"use_cpu_cores() came too late: JAX has already started with {have} CPU "
                f"device(s); call it before the first JAX computation"
            )
    if requested is None and chosen:
        return chosen
    if jax is not None:
        jax.config.update("jax_num_cpu_devices", count)
        return count
    os.environ["JAX_NUM_CPU_DEVICES"] = str(count)  # JAX reads it when it starts
    return count


@dataclass(frozen=True)
class MeshSpec:
    """Mesh shape: ``data`` × ``model`` devices."""

    data: int
    model: int = 1

    def __post_init__(self):
        if self.data < 1 or self.model < 1:
            raise MeshError(f"mesh axes must be >= 1, got data={self.data}, model={self.model}")

    @property
    def size(self) -> int:
        """Devices used."""
        return self.data * self.model

    def __str__(self) -> str:
        return f"data={self.data},model={self.model}"


_PART = re.compile(r"^\s*(data|model)\s*=\s*(\d+)\s*$")


def parse_mesh(text: str | None, device_count: int) -> MeshSpec:
    """``"auto"``/None -> all devices on ``data``; ``"data=4,model=2"`` -> that shape.

    Raises:
      MeshError: naming the text when it is not of that form.
    """
    if text is None or text.strip() == "auto":
        return MeshSpec(data=device_count, model=1)
    sizes = {}
    for part in text.split(","):
        m = _PART.match(part)
        if not m:
            raise MeshError(f"--mesh takes 'auto' or 'data=N,model=M', got {text!r}")
        sizes[m.group(1)] = int(m.group(2))
    return MeshSpec(data=sizes.get(DATA, 1), model=sizes.get(MODEL, 1))


def make_mesh(spec: MeshSpec, devices: Sequence[Any] | None = None):
    """A ``jax.sharding.Mesh`` of ``spec`` over the first ``spec.size`` devices.

    Raises:
      MeshError: when the mesh needs more devices than exist.
    """
    import jax
    import numpy as np

    devices = list(jax.devices() if devices is None else devices)
    if spec.size > len(devices):
        raise MeshError(
            f"mesh {spec} needs {spec.size} devices but only {len(devices)} are available: "
            "use a smaller --mesh or 'auto'"
        )
    grid = np.array(devices[: spec.size], dtype=object).reshape(spec.data, spec.model)
    return jax.sharding.Mesh(grid, AXES)


def check_fits(spec: MeshSpec, *, batch_size: int, heads: int) -> None:
    """The global batch must split over ``data`` and the heads over ``model``.

    Raises:
      MeshError: naming the numbers.
    """
    if batch_size % spec.data:
        raise MeshError(
            f"batch size {batch_size} does not divide over the data axis of {spec.data} "
            f"devices: use a batch size that is a multiple of {spec.data}"
        )
    if heads % spec.model:
        raise MeshError(
            f"{heads} heads do not split over the model axis of {spec.model} devices: "
            f"use a number of heads that is a multiple of {spec.model}"
        )


def logical_spec(names: Sequence[str | None] | None):
    """PartitionSpec of an array whose axes carry these logical names."""
    from jax.sharding import PartitionSpec

    if not names:
        return PartitionSpec()
    return PartitionSpec(*(LOGICAL_RULES.get(n) if n else None for n in names))


def state_shardings(state: Any, mesh) -> Any:
    """NamedSharding for every leaf of an NNX state from its ``sharding_names``.

    Leaves without names (optimizer counters, random streams, scoring parameters) are
    replicated. Optimizer moments carry their parameter's names, so they shard alike.
    """
    import jax
    import numpy as np
    from flax import nnx
    from jax.sharding import NamedSharding, PartitionSpec

    def one(var):
        meta = var.get_metadata() if isinstance(var, nnx.Variable) else {}
        # flax stores the names given as ``sharding_names`` under ``out_sharding``.
        names = meta.get("out_sharding", meta.get("sharding_names"))
        value = var[...] if isinstance(var, nnx.Variable) else var
        spec = (
            logical_spec(names)
            if names is not None and np.ndim(value) == len(names)
            else (PartitionSpec())
        )
        return NamedSharding(mesh, spec)

    return jax.tree.map(one, state, is_leaf=lambda x: isinstance(x, nnx.Variable))


#: Parameters of at least this many elements get the row-split update on a micro-batched
#: ``data`` mesh (:func:`splits_rows`).
ROW_SPLIT_MIN_SIZE = 1 << 16


def splits_rows(shape: Sequence[int], devices: int) -> bool:
    """Whether a parameter of ``shape`` is updated row-split over ``devices`` data devices.

    Its summed gradient is reduce-scattered by rows instead of all-reduced, each device
    holds and updates its rows' optimizer moments, and the new rows are gathered: the
    same update, but no device computes the whole of it. Only large arrays whose rows
    divide evenly: the 20,000-row embedding's update was the step's largest fixed cost,
    made whole by every device (benchmarks/README.md).

    Args:
      shape: the parameter's shape.
      devices: size of the ``data`` axis.
    """
    return (
        devices > 1
        and len(shape) >= 1
        and shape[0] % devices == 0
        and math.prod(shape) >= ROW_SPLIT_MIN_SIZE
    )


def row_split_moments(shardings: Any, opt_state: Any, mesh) -> Any:
    """``shardings`` of an optimizer state with :func:`splits_rows` leaves split over ``data``.

    Args:
      shardings: :func:`state_shardings` of ``opt_state``.
      opt_state: an NNX optimizer state (moments shaped like their parameters).
      mesh: the ``("data", "model")`` mesh.

    Returns:
      The same tree, :func:`splits_rows` leaves ``P("data")``. The micro-batched step
      runs on a mesh whose ``model`` axis is 1, so no leaf was split before.
    """
    import jax
    import numpy as np
    from flax import nnx
    from jax.sharding import NamedSharding, PartitionSpec

    devices = int(mesh.shape[DATA])

    def one(where, var):
        shape = np.shape(var[...] if isinstance(var, nnx.Variable) else var)
        if not splits_rows(shape, devices):
            return where
        return NamedSharding(mesh, PartitionSpec(DATA))

    return jax.tree.map(one, shardings, opt_state)


def batch_sharding(mesh):
    """Leading (batch) axis split over ``data``."""
    from jax.sharding import NamedSharding, PartitionSpec

    return NamedSharding(mesh, PartitionSpec(DATA))


def replicated(mesh):
    """Every device holds the whole array."""
    from jax.sharding import NamedSharding, PartitionSpec

    return NamedSharding(mesh, PartitionSpec())


@dataclass(frozen=True)
class DeviceReport:
    """What ``semalign devices`` shows.

    Attributes:
      backend: JAX's default backend.
      spec: the mesh that training would use.
      processes: JAX processes.
      devices: ``(id, platform, kind, process, (data, model) position or None)`` each.
    """

    backend: str
    spec: MeshSpec
    processes: int
    devices: tuple[tuple[int, str, str, int, tuple[int, int] | None], ...]


def describe_devices(mesh: str | None = None) -> DeviceReport:
    """The devices JAX sees and where the mesh ``mesh`` puts them.

    Raises:
      MeshError: a mesh that does not parse or does not fit the devices.
    """
    import jax

    spec = parse_mesh(mesh, jax.device_count())
    built = make_mesh(spec)
    positions = [(i, j) for i in range(spec.data) for j in range(spec.model)]
    where = {d.id: pos for pos, d in zip(positions, built.devices.flat, strict=True)}
    rows = tuple(
        (d.id, d.platform, d.device_kind, d.process_index, where.get(d.id)) for d in jax.devices()
    )
    return DeviceReport(jax.default_backend(), spec, jax.process_count(), rows)
