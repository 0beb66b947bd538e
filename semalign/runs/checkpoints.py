"""Orbax checkpoints of any NNX state (model, optimizer, random streams): best and last.

Layout under ``run/checkpoints/``: one directory per saved epoch (``epoch-0003``) holding
one orbax item per named object (``model``, ``optimizer``), and ``pointers.json`` naming
which epoch is ``last``, which is ``best`` and, once training finished, which is ``served``:
the weights training reported on validation and test (``best``, or ``last`` with
``--no-restore-best``), which evaluate / predict load by default. Items restore
independently, so inference loads the model without knowing the optimizer that trained
it. Orbax writes each directory atomically; the pointer file is replaced atomically
after it; directories no pointer names are removed last. A crash at any moment leaves a
loadable pair.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from semalign.errors import RunError

POINTERS = "pointers.json"
#: The pointer names :func:`restore` accepts; ``served`` falls back to ``best`` in runs
#: that never finished (or were written before it existed).
WHICH = ("served", "best", "last")


def _is_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def _to_storable(tree: Any) -> Any:
    # orbax stores plain arrays; typed PRNG keys travel as their raw key data.
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)


def _from_storable(stored: Any, like: Any) -> Any:
    return jax.tree.map(
        lambda s, ref: (
            jax.random.wrap_key_data(s, impl=jax.random.key_impl(ref)) if _is_key(ref) else s
        ),
        stored,
        like,
    )


def _abstract(x: Any) -> jax.ShapeDtypeStruct:
    # Restore straight into the target's sharding: a checkpoint written on one mesh
    # loads onto another.
    sharding = getattr(x, "sharding", None)
    return jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=sharding)


def _checkpointer():
    import orbax.checkpoint as ocp

    return ocp.StandardCheckpointer()


def _same(tree: Any) -> Any:
    return tree


def read_pointers(directory: Path) -> dict[str, str]:
    """``{"last": "epoch-0003", "best": "epoch-0002"}``; empty when nothing is saved."""
    path = Path(directory) / POINTERS
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise RunError(f"checkpoint pointers {path} are unreadable ({err}): retrain") from None


class CheckpointWriteError(RunError):
    """A checkpoint could not be written (a full disk, a lost mount); nothing points at it.

    Attributes:
      tag: the checkpoint that failed (``epoch-0003``).
      reason: the system's words (``No space left on device``).
      good: the newest complete checkpoint (``last``), None when there is none.
    """

    def __init__(self, tag: str, reason: str, good: str | None):
        self.tag, self.reason, self.good = tag, reason, good
        kept = f"{good} is still the last good one" if good else "no checkpoint is saved yet"
        super().__init__(f"could not write checkpoint {tag} ({reason}); {kept}")


def _io_failure(err: BaseException) -> str | None:
    # The words of a failed write: an OSError, or tensorstore's error (orbax raises it as
    # a ValueError naming the os_error_code) for the files under the checkpoint.
    if isinstance(err, OSError):
        return err.strerror or str(err)
    text = str(err)
    if isinstance(err, ValueError) and "os_error_code" in text:
        return text.rsplit(": ", 1)[-1].split(" [os_error_code")[0]
    return None


def write(directory: Path, tag: str, items: dict[str, Any], *, primary: bool = True) -> None:
    """Write each ``nnx.state(obj)`` under ``tag``; no pointer moves (:func:`point`).

    Orbax writes each item into a temporary folder and renames it when complete, so a
    crash leaves either a whole item or none.

    Raises:
      CheckpointWriteError: the files could not be written (the partial folder is removed).
    """
    from semalign.runs.faults import crash_point

    directory = Path(directory).resolve()
    ckptr = _checkpointer()
    try:
        for i, (name, obj) in enumerate(items.items()):
            if i:
                crash_point(f"mid-checkpoint@{tag}")
            pure = _to_storable(nnx.to_pure_dict(nnx.state(obj)))
            ckptr.save(directory / tag / name, pure, force=True)
        ckptr.wait_until_finished()
    except (OSError, ValueError) as err:
        reason = _io_failure(err)
        if reason is None:
            raise
        with contextlib.suppress(Exception):
            ckptr.wait_until_finished()  # items still being written land before removal
        if primary:
            shutil.rmtree(directory / tag, ignore_errors=True)
        raise CheckpointWriteError(tag, reason, read_pointers(directory).get("last")) from None


def point(directory: Path, tag: str, *, best: bool, primary: bool = True) -> None:
    """Point ``last`` (and ``best``) at ``tag``; remove checkpoints no pointer names.

    On several processes only the primary writes, and every process waits until it has.
    """
    directory = Path(directory).resolve()
    if primary:
        pointers = read_pointers(directory)
        pointers["last"] = tag
        if best or "best" not in pointers:
            pointers["best"] = tag
        _write_pointers(directory, pointers)
        _remove_unnamed(directory, pointers)
    _barrier("checkpoint pointers")


def save(
    directory: Path, tag: str, items: dict[str, Any], *, best: bool, primary: bool = True
) -> None:
    """Save each ``nnx.state(obj)`` under ``tag`` and point ``last`` (and ``best``) at it.

    Args:
      directory: the run's ``checkpoints/`` folder.
      tag: directory name for this save (``epoch-0003``).
      items: name -> NNX object (``{"model": model, "optimizer": opt}``).
      best: also mark it as the best so far.
      primary: this process writes the pointer file (on several hosts every process
        calls :func:`save`, orbax coordinates the arrays, process 0 the pointers).

    Raises:
      CheckpointWriteError: the files could not be written; the pointers are untouched.
    """
    write(directory, tag, items, primary=primary)
    point(directory, tag, best=best, primary=primary)


def agree(directory: Path, last: str, best: str) -> None:
    """Point ``last`` and ``best`` at these tags (a resumed run's committed state).

    A run killed between writing its state and moving the pointers left them one epoch
    behind; this puts them where the state says. Tags that do not exist are left alone.
    """
    directory = Path(directory).resolve()
    pointers = read_pointers(directory)
    wanted = {k: t for k, t in (("last", last), ("best", best)) if (directory / t).is_dir()}
    if all(pointers.get(k) == t for k, t in wanted.items()):
        return
    pointers.update(wanted)
    _write_pointers(directory, pointers)
    _remove_unnamed(directory, pointers)


def _remove_unnamed(directory: Path, pointers: dict[str, str]) -> None:
    keep = set(pointers.values())
    for child in directory.iterdir():
        if child.is_dir() and child.name.startswith("epoch-") and child.name not in keep:
            shutil.rmtree(child, ignore_errors=True)


def _barrier(name: str) -> None:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(f"semalign:{name}")


def _write_pointers(directory: Path, pointers: dict[str, str]) -> None:
    tmp = directory / (POINTERS + ".tmp")
    tmp.write_text(json.dumps(pointers, indent=2))
    os.replace(tmp, directory / POINTERS)


def serve(directory: Path, which: str) -> str:
    """Point ``served`` at the ``best`` or ``last`` checkpoint; returns its tag."""
    directory = Path(directory).resolve()
    pointers = read_pointers(directory)
    pointers["served"] = pointers[which]
    _write_pointers(directory, pointers)
    return pointers[which]


def resolve(directory: Path, which: str) -> str:
    """The tag ``which`` (``served``, ``best`` or ``last``) names.

    Raises:
      RunError: an unknown name, or no such checkpoint.
    """
    if which not in WHICH:
        raise RunError(f"checkpoint must be one of {', '.join(WHICH)}, got {which!r}")
    pointers = read_pointers(Path(directory).resolve())
    if which == "served" and "served" not in pointers:
        which = "best"
    if which not in pointers:
        raise RunError(
            f"no '{which}' checkpoint in {directory}: the run never finished an epoch; "
            "retrain it or pick another with --run"
        )
    return pointers[which]


def restore(
    directory: Path,
    items: dict[str, Any],
    which: str = "best",
    *,
    layouts: Sequence[tuple[Callable[[Any], Any], Callable[[Any], Any]]] = (),
) -> str:
    """Load the named items of the ``which`` checkpoint in place; returns the tag restored.

    ``which``: ``served`` (what training reported; ``best`` when the run has no such
    pointer), ``best`` or ``last``.

    ``layouts`` read checkpoints stored in another tree layout (an older semalign): each
    ``(to_stored, from_stored)`` maps today's pure-dict tree to a stored one and back;
    they are tried in order when the stored tree does not match today's.

    Raises:
      RunError: when there is no such checkpoint or it does not fit ``obj``.
    """
    directory = Path(directory).resolve()
    tag = resolve(directory, which)
    ckptr = _checkpointer()
    for name, obj in items.items():
        state = nnx.state(obj)
        native = nnx.to_pure_dict(state)
        error = None
        for to_stored, from_stored in ((_same, _same), *layouts):
            like = to_stored(native)
            abstract = jax.tree.map(_abstract, _to_storable(like))
            try:
                stored = ckptr.restore(directory / tag / name, abstract)
            except (ValueError, KeyError, FileNotFoundError) as err:
                error = error or err
                continue
            nnx.replace_by_pure_dict(state, from_stored(_from_storable(stored, like)))
            break
        else:
            raise RunError(
                f"checkpoint {directory / tag / name} does not match this model "
                f"({type(error).__name__}): was config.json edited? retrain or restore it"
            ) from None
        nnx.update(obj, state)
    return tag
