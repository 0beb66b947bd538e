"""``semalign export onnx``: a run's whole pipeline as one ONNX graph, checked against JAX.

One pipeline for every task: convert the task's graph (:meth:`Task.onnx_graph
<semalign.tasks.base.Task.onnx_graph>`: token ids and masks in, the task's outputs out;
a classifier's probabilities and logits, optionally the pooled embedding and the
attention weights; a similarity encoder's normalised embedding; a pair classifier's
probabilities from two texts) with symbolic batch and sequence axes (``S <= max_len``),
check it in onnxruntime, write it. Labels, scoring, longest sequence, versions and the
tokenizer ride in the model's metadata, so :mod:`semalign.runtime` needs nothing else.

Conversion is direct, JAX -> ONNX with jax2onnx: the jax2tf -> tf2onnx route no longer
works with current JAX (``notes/onnx-export.md``), and TensorFlow is not needed.

Every export is run in onnxruntime and compared with the JAX model at several shapes
(batch 1, 7, 32; sequence 1, short, max). The model is written only if every output
agrees within the tolerance; the comparison is saved as ``export.json`` in the run.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semalign import __version__
from semalign.errors import SemalignError
from semalign.runs import RunPaths, resolve_run, write_json

__all__ = [
    "DEFAULT_OPSET",
    "DEFAULT_TOLERANCE",
    "ExportError",
    "ExportReport",
    "ParityCheck",
    "check_out_path",
    "check_shapes",
    "example_inputs",
    "export_onnx",
    "metadata",
    "verify",
    "write_model",
]

#: Opset with the native ``Attention`` operator.
DEFAULT_OPSET = 23
#: Largest |onnxruntime - JAX| accepted on any output (fp32; measured ~1e-6).
DEFAULT_TOLERANCE = 1e-4
#: ONNX opsets accepted (jax2onnx 0.17 writes 18 and above; 23 has ``Attention``).
MIN_OPSET, MAX_OPSET = 18, 23


class ExportError(SemalignError):
    """An export that cannot be written or does not match the JAX model."""


@dataclass(frozen=True)
class ParityCheck:
    """onnxruntime vs JAX at one input shape.

    Attributes:
      batch: rows.
      seq: sequence length.
      max_abs_diff: the largest |onnxruntime - JAX| of each output.
    """

    batch: int
    seq: int
    max_abs_diff: dict[str, float]

    @property
    def worst(self) -> tuple[str, float]:
        """The output that differs most and by how much."""
        name = max(self.max_abs_diff, key=self.max_abs_diff.__getitem__)
        return name, self.max_abs_diff[name]

    def to_dict(self) -> dict[str, Any]:  # noqa: D102
        return {"batch": self.batch, "seq": self.seq, "max_abs_diff": dict(self.max_abs_diff)}


@dataclass(frozen=True)
class ExportReport:
    """What ``export_onnx`` wrote and how well it matched.

    Attributes:
      path: the ``.onnx`` file (not written when ``ok`` is false).
      run: the run folder.
      checkpoint: which checkpoint was exported.
      opset: ONNX opset.
      outputs: graph output names.
      checks: one :class:`ParityCheck` per shape.
      tolerance: the largest accepted difference.
      seconds: time spent converting and verifying.
      size_bytes: file size.
      inputs: graph input names.
    """

    path: Path
    run: Path
    checkpoint: str
    opset: int
    outputs: tuple[str, ...]
    checks: tuple[ParityCheck, ...]
    tolerance: float
    seconds: dict[str, float] = field(default_factory=dict)
    size_bytes: int = 0
    inputs: tuple[str, ...] = ("input_ids", "attention_mask")

    @property
    def max_abs_diff(self) -> float:
        """The largest difference over every output and shape."""
        return max((c.worst[1] for c in self.checks), default=0.0)

    @property
    def ok(self) -> bool:
        """Every check within tolerance (NaN fails)."""
        return bool(self.checks) and all(c.worst[1] <= self.tolerance for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``export.json``)."""
        from importlib import metadata as im

        return {
            "ok": self.ok,
            "path": self.path,
            "run": self.run,
            "checkpoint": self.checkpoint,
            "opset": self.opset,
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "tolerance": self.tolerance,
            "max_abs_diff": self.max_abs_diff,
            "checks": [c.to_dict() for c in self.checks],
            "seconds": dict(self.seconds),
            "size_bytes": self.size_bytes,
            "versions": {
                "semalign": __version__,
                **{p: im.version(p) for p in ("jax", "jax2onnx", "onnx", "onnxruntime")},
            },
        }


def check_shapes(max_len: int) -> tuple[tuple[int, int], ...]:
    """``(batch, seq)`` pairs checked: batch 1, 7, 32 x sequence 1, short, ``max_len``."""
    short = max(2, min(8, max_len // 2))
    pairs = ((1, 1), (7, short), (32, short), (1, max_len), (7, max_len))
    return tuple(dict.fromkeys((b, min(s, max_len)) for b, s in pairs))


def example_inputs(batch: int, seq: int, vocab: int, rng: np.random.Generator):
    """Ids with ``[CLS]`` first and right padding of random lengths (row 0 full)."""
    lengths = rng.integers(1, seq + 1, batch)
    lengths[0] = seq
    ids = rng.integers(min(5, vocab - 1), vocab, (batch, seq)).astype(np.int32)
    ids[:, 0] = min(2, vocab - 1)  # [CLS]
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int32)
    return ids * mask, mask


def verify(session, graph, *, shapes: Sequence[tuple[int, int]], vocab: int, seed: int = 0):
    """Compare an onnxruntime session with the JAX forward pass of the same graph.

    Args:
      session: an ``onnxruntime.InferenceSession`` of the exported graph.
      graph: the task's :class:`~semalign.tasks.base.OnnxGraph` of the JAX model it was
        exported from (its ``fn`` is the reference).
      shapes: ``(batch, seq)`` pairs; every text input gets its own random ids.
      vocab: the model's vocabulary size.
      seed: of the random inputs.

    Returns:
      One :class:`ParityCheck` per shape.
    """
    import jax

    reference = jax.jit(graph.fn)
    rng = np.random.default_rng(seed)
    checks = []
    for batch, seq in shapes:
        feed = {}
        for ids_name, mask_name in graph.texts:
            feed[ids_name], feed[mask_name] = example_inputs(batch, seq, vocab, rng)
        got = session.run(list(graph.outputs), feed)
        want = reference(*(feed[name] for name in graph.inputs))
        diffs = {}
        for name, g, w in zip(graph.outputs, got, want, strict=True):
            d = np.abs(np.asarray(g, np.float64) - np.asarray(w, np.float64))
            diffs[name] = float(np.max(d)) if np.all(np.isfinite(d)) else float("nan")
        checks.append(ParityCheck(batch, seq, diffs))
    return tuple(checks)


def metadata(
    *,
    labels: Sequence[str],
    tokenizer,
    model_config,
    max_len: int,
    outputs: Sequence[str],
    task: str,
    inputs: Sequence[str] = ("input_ids", "attention_mask"),
    run: str = "",
    checkpoint: str = "",
    truncation: str = "head",
) -> dict[str, str]:
    """The metadata entries :mod:`semalign.runtime` reads (``semalign.task`` picks the class).

    ``truncation`` is how the run cut a text longer than ``max_len`` (its data config's);
    the runtime cuts the same way.
    """
    scoring = model_config.attention.scoring
    return {
        "semalign.version": __version__,
        "semalign.task": task,
        "semalign.labels": json.dumps(list(labels), ensure_ascii=False),
        "semalign.max_len": str(max_len),
        "semalign.truncation": truncation,
        "semalign.scoring": scoring if isinstance(scoring, str) else ",".join(scoring),
        "semalign.outputs": json.dumps(list(outputs)),
        "semalign.inputs": json.dumps(list(inputs)),
        "semalign.pad_id": "0",
        "semalign.model_config": json.dumps(model_config.to_dict()),
        "semalign.run": run,
        "semalign.checkpoint": checkpoint,
        "semalign.tokenizer": tokenizer.to_str(),
    }


def check_out_path(out: Path, overwrite: bool) -> None:
    """Refuse a folder or an existing file (unless ``overwrite``); make the parent folder.

    Raises:
      ExportError: naming the path and what to do.
    """
    if out.is_dir():
        raise ExportError(f"cannot write '{out}': it is a folder; pass --out with a file name")
    if out.exists() and not overwrite:
        raise ExportError(f"'{out}' already exists: pass --overwrite to replace it")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ExportError(
            f"cannot write '{out}': cannot create folder '{parent}' ({err.strerror or err})"
        ) from None
    if not os.access(parent, os.W_OK):
        raise ExportError(f"cannot write '{out}': folder '{parent}' is not writable")


def write_model(proto, out: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Save an ONNX ``ModelProto`` atomically (temporary file, then rename).

    Raises:
      ExportError: ``out`` exists (and not ``overwrite``), is a folder, or cannot be written.
    """
    import onnx

    out = Path(out)
    check_out_path(out, overwrite)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        os.close(fd)
        onnx.save_model(proto, tmp)
        os.replace(tmp, out)
    except OSError as err:
        raise ExportError(f"cannot write '{out}' ({err.strerror or err})") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
    return out


def export_onnx(
    run: str | os.PathLike[str] | None = None,
    *,
    runs_dir: str | os.PathLike[str] = "runs",
    out: str | os.PathLike[str] | None = None,
    opset: int = DEFAULT_OPSET,
    attention: bool = False,
    embedding: bool = False,
    overwrite: bool = False,
    checkpoint: str = "served",
    tolerance: float = DEFAULT_TOLERANCE,
    shapes: Sequence[tuple[int, int]] | None = None,
) -> ExportReport:
    """Export a run's model to ONNX, verify it in onnxruntime, write it and a report.

    The graph is the run's task's: a classifier gives ids + mask -> ``probabilities``,
    ``logits`` (``embedding`` and ``attention`` on request); a similarity encoder ids +
    mask -> the normalised ``embedding``; a pair classifier two texts' ids and masks
    (one length ``S``) -> ``probabilities``, ``logits``.

    Args:
      run: the run folder; None = the newest under ``runs_dir``.
      runs_dir: where runs live.
      out: the ``.onnx`` file; default ``<run>/model.onnx``.
      opset: ONNX opset (18-23; 23 has the fused ``Attention`` operator).
      attention: add the ``attention`` output ``[B, layers, heads, S, S]``.
      embedding: add the ``embedding`` output ``[B, dim]``.
      overwrite: replace an existing ``out``.
      checkpoint: ``served`` (what training reported), ``best`` or ``last``.
      tolerance: largest |onnxruntime - JAX| accepted.
      shapes: ``(batch, seq)`` pairs to check; default :func:`check_shapes`.

    Returns:
      The report (also saved as ``<run>/export.json``).

    Raises:
      RunError: no run, an incomplete run, a checkpoint that does not fit.
      ExportError: a bad opset, an output the task's graph does not offer, an output
        file that exists or cannot be written, or a parity check that failed (the model
        is then not written).
    """
    from semalign.workflows.loading import run_spec

    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"opset must be in {MIN_OPSET}..{MAX_OPSET}, got {opset}")
    paths: RunPaths = resolve_run(run, runs_dir=runs_dir)
    spec = run_spec(paths)
    if not spec.supports("export"):
        raise ExportError(spec.refusal(str(paths.root), "export", "it has no ONNX graph yet"))
    asked = {"embedding": embedding, "attention": attention}
    for option, flag in (("embedding", "--embedding"), ("attention", "--with-attention")):
        if asked[option] and option not in spec.export_outputs:
            raise ExportError(
                f"run '{paths.root}' is a {spec.name} run: its graph has no extra {option} "
                f"output; drop {flag}"
            )
    out = Path(out) if out is not None else paths.onnx
    check_out_path(out, overwrite)  # fail before the slow part

    from semalign.runtime import open_session
    from semalign.workflows.export.graph import convert
    from semalign.workflows.loading import load_run

    loaded = load_run(paths.root, which=checkpoint)
    task, mcfg = loaded.task_impl, loaded.model_config
    shapes = tuple(shapes) if shapes is not None else check_shapes(loaded.max_len)
    graph = task.onnx_graph(loaded.model, embedding=embedding, attention=attention)
    t0 = time.perf_counter()
    proto = convert(
        loaded.model,
        task=task,
        opset=opset,
        embedding=embedding,
        attention=attention,
        name=paths.name,
    )
    meta = metadata(
        labels=loaded.labels,
        tokenizer=loaded.tokenizer,
        model_config=mcfg,
        max_len=loaded.max_len,
        outputs=graph.outputs,
        task=spec.name,
        inputs=graph.inputs,
        run=paths.name,
        checkpoint=loaded.checkpoint,
        truncation=getattr(loaded.data_config, "truncation", "head"),
    )
    for key, value in {**meta, **graph.metadata}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name, proto.producer_version = "semalign", __version__
    proto.doc_string = f"semalign {mcfg.attention.scoring} {graph.doc} from run {paths.name}"
    t1 = time.perf_counter()

    staging = out.with_name(f".{out.name}.verify")
    write_model(proto, staging, overwrite=True)
    try:
        checks = verify(open_session(staging), graph, shapes=shapes, vocab=mcfg.vocab_size)
        t2 = time.perf_counter()
        report = ExportReport(
            path=out,
            run=paths.root,
            checkpoint=loaded.checkpoint,
            opset=opset,
            outputs=graph.outputs,
            checks=checks,
            tolerance=tolerance,
            seconds={"convert": round(t1 - t0, 3), "verify": round(t2 - t1, 3)},
            size_bytes=staging.stat().st_size,
            inputs=graph.inputs,
        )
        write_json(paths.export_report, report.to_dict())
        if not report.ok:
            bad = next(c for c in checks if not c.worst[1] <= tolerance)
            name, diff = bad.worst
            raise ExportError(
                f"parity check failed: onnxruntime differs from JAX by {diff:.3g} "
                f"(tolerance {tolerance:g}) on '{name}' at batch {bad.batch} x seq "
                f"{bad.seq}; nothing written, details in {paths.export_report}"
            )
        if out.exists() and not overwrite:  # appeared while we worked
            raise ExportError(f"'{out}' already exists: pass --overwrite to replace it")
        os.replace(staging, out)
    finally:
        if staging.exists():
            staging.unlink()
    return report
