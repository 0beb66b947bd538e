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
    """
    directory = Path(directory).resolve()
    ckptr = _checkpointer()
    for name, obj in items.items():
        pure = _to_storable(nnx.to_pure_dict(nnx.state(obj)))
        ckptr.save(directory / tag / name, pure, force=True)
    ckptr.wait_until_finished()
    if not primary:
        return
    pointers = read_pointers(directory)
    pointers["last"] = tag
    if best or "best" not in pointers:
        pointers["best"] = tag
    _write_pointers(directory, pointers)
    keep = set(pointers.values())
    for child in directory.iterdir():
        if child.is_dir() and child.name.startswith("epoch-") and child.name not in keep:
            shutil.rmtree(child, ignore_errors=True)


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
