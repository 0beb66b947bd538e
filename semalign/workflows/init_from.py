"""Start a new run from another run's trunk (``--init-from RUN``), for any task.

The source run's ``encoder`` (token and bigram embeddings, positions, blocks, final norm)
and its tokenizer are copied into the new run; the task's head starts fresh. A trunk
that does not fit the new run's model (width, depth, heads, scoring, vocabulary,
positions, length) is refused with one line naming the mismatch, and so is a source
pretrained on the same data split another way (its training texts would be in the new
run's test split). The new run's ``config.json`` records the source (path, checkpoint,
a sha256 of the trunk's parameters); a resumed run keeps that record and never copies
the trunk again. Importing this module loads no JAX (the CLI reads
:func:`source_options`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semalign.config import ModelConfig
from semalign.errors import RunError
from semalign.runs import RunPaths, open_run, read_json

__all__ = [
    "Source",
    "check_resume_changes",
    "copy_trunk",
    "open_source",
    "run_extras",
    "source_options",
]

#: ``(model config field, its --option)`` that the trunk's parameters depend on.
_TRUNK = (
    ("vocab_size", "vocab-size"),
    ("dim", "dim"),
    ("layers", "layers"),
    ("mlp_ratio", "mlp-ratio"),
    ("positions", "positions"),
    ("max_len", "max-len"),
    ("bigram_buckets", "bigram-buckets"),
)
_ATTENTION = (("heads", "heads"), ("head_scorings", "scoring"), ("tie_qk", "tie-qk"))
#: Data fields that make the tokenizer (the vocabulary comes with it).
_TOKENIZER = (("tokenizer", "tokenizer"), ("vocab_size", "vocab-size"), ("lowercase", "lowercase"))


@dataclass(frozen=True)
class Source:
    """An opened source run.

    Attributes:
      paths: its run folder.
      tokenizer: its tokenizer (copied into the new run).
      model_config: its model config.
      checkpoint: the checkpoint directory the trunk was read from (``epoch-0007``).
      trunk: the trunk's parameters (an ``nnx.State`` of the source's ``encoder``).
    """

    paths: RunPaths
    tokenizer: Any
    model_config: ModelConfig
    checkpoint: str
    trunk: Any

    def record(self, trunk_sha256: str) -> dict[str, str]:
        """``config.json``'s ``init_from`` entry."""
        return {
            "run": str(self.paths.root),
            "checkpoint": self.checkpoint,
            "trunk_sha256": trunk_sha256,
        }


def _configs(path: str | Path) -> tuple[RunPaths, dict]:
    paths = open_run(path, require=("config", "tokenizer", "checkpoints"))
    return paths, read_json(paths.config)


def source_options(path: str | Path) -> dict[str, Any]:
    """The command-line options (by parameter name) that the source fixes.

    The CLI fills the options a user did not type from these, so ``--init-from RUN``
    alone builds a model that fits the trunk.

    Raises:
      RunError: no run there, or an incomplete one.
    """
    _, raw = _configs(path)
    model, data = raw["model"], raw["data"]
    attention = model.get("attention", {})
    scoring = attention.get("scoring", "dot")
    return {
        "dim": model["dim"],
        "layers": model["layers"],
        "mlp_ratio": model["mlp_ratio"],
        "positions": model["positions"],
        "bigram_buckets": model.get("bigram_buckets", 0),
        "max_len": model["max_len"],
        "heads": attention.get("heads", 4),
        "scoring": scoring if isinstance(scoring, str) else ",".join(scoring),
        "tie_qk": attention.get("tie_qk", False),
        "vocab_size": data["vocab_size"],
        "tokenizer": data.get("tokenizer", "wordpiece"),
        "split_seed": data.get("split_seed", 0),
    }


def _mismatch(root: Path, what: str, option: str, theirs: Any, ours: Any) -> RunError:
    show = (lambda v: ",".join(v)) if isinstance(theirs, tuple) else str
    return RunError(
        f"--init-from {root}: its trunk has {what} {show(theirs)}, this run asks "
        f"{show(ours)}: drop --{option} or pass --{option} {show(theirs)}"
    )


def open_source(path: str | Path, model: ModelConfig, data: Any, *, which: str = "served"):
    """Open the source run and check that its trunk fits ``model`` and ``data``.

    Args:
      path: the source run folder.
      model: the new run's model config (the task's, ``vocab_size`` any value: the
        vocabulary comes with the tokenizer, checked through ``data``).
      data: the new run's data config.
      which: the source checkpoint to copy (``served``, ``best``, ``last``).

    Returns:
      A :class:`Source`.

    Raises:
      RunError: no run there, or one line naming the first mismatch.
    """
    from flax import nnx

    from semalign import tasks
    from semalign.data import load_tokenizer
    from semalign.nn.encoder import LEGACY_LAYOUTS
    from semalign.runs import checkpoints
    from semalign.workflows.loading import read_configs

    paths, raw = _configs(path)
    theirs, their_data, _ = read_configs(paths)
    root = paths.root
    for field, option in _TOKENIZER:
        a, b = getattr(their_data, field, None), getattr(data, field, None)
        if a != b:
            raise _mismatch(root, f"tokenizer {field}", option, a, b)
    ours = model.replace(vocab_size=theirs.vocab_size, max_len=data.max_len)
    for field, option in _TRUNK:
        if getattr(theirs, field) != getattr(ours, field):
            raise _mismatch(root, field, option, getattr(theirs, field), getattr(ours, field))
    for field, option in _ATTENTION:
        a, b = getattr(theirs.attention, field), getattr(ours.attention, field)
        if a != b:
            raise _mismatch(root, f"attention {field}", option, a, b)
    same_text = their_data.source == data.source
    if same_text and getattr(their_data, "split_seed", 0) != getattr(data, "split_seed", 0):
        raise RunError(
            f"--init-from {root} was trained on the training split of {data.source} with "
            f"split seed {their_data.split_seed}; this run splits it with seed "
            f"{data.split_seed}, so its test texts would include texts the trunk saw: "
            f"pass --split-seed {their_data.split_seed}"
        )
    tokenizer = load_tokenizer(paths.tokenizer)
    spec = tasks.get(raw.get("task", tasks.DEFAULT_TASK))
    donor = spec.load().build(theirs, rngs=nnx.Rngs(0))
    tag = checkpoints.restore(paths.checkpoints, {"model": donor}, which, layouts=LEGACY_LAYOUTS)
    return Source(paths, tokenizer, theirs, tag, _trunk_state(donor))


def _trunk_state(model):
    from flax import nnx

    return nnx.state(model.encoder, nnx.Param)


def trunk_sha256(model) -> str:
    """sha256 over the trunk's parameters (paths, dtypes, shapes and bytes)."""
    import jax
    import numpy as np

    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_leaves_with_path(_trunk_state(model)):
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{jax.tree_util.keystr(path)}|{a.dtype}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def copy_trunk(model, source: Source) -> dict[str, str]:
    """Load the source's trunk into ``model.encoder``; the rest of ``model`` is untouched.

    Returns:
      The ``init_from`` record for ``config.json``.
    """
    from flax import nnx

    nnx.update(model.encoder, source.trunk)
    return source.record(trunk_sha256(model))


def run_extras(run: RunPaths, record: dict[str, str] | None) -> dict[str, Any]:
    """The ``config.json`` extras of a run: the new ``init_from`` record, or the saved one."""
    if record is None and run.config.is_file():
        record = read_json(run.config).get("init_from")
    return {} if record is None else {"init_from": record}


def check_resume_changes(changes) -> None:
    """Refuse a resumed plan that changes how the trunk trains.

    Args:
      changes: ``(field, saved, new)`` of each changed train field.

    Raises:
      RunError: ``freeze_encoder`` or ``encoder_lr_scale`` changed (the optimizer
        state is laid out by them, so the saved one would not fit).
    """
    for field, old, new in changes:
        if field in ("freeze_encoder", "encoder_lr_scale"):
            option = "--" + field.replace("_", "-")
            raise RunError(
                f"{option} cannot change on --resume ({old} -> {new}): the saved optimizer "
                "state is laid out by it; train a new run with --init-from instead"
            )
