"""ONNX export of a similarity run's :class:`~semalign.pair_models.PairEncoder`.

The graph goes from ``input_ids`` and ``attention_mask`` (int32 ``[B, S]``, symbolic
``B`` and ``S <= max_len``) to the pooled, L2-normalised ``embedding`` ``[B, dim]``: the
cosine of two texts is the dot product of two graph outputs. It reuses the classifier
export's pieces (:mod:`semalign.workflows.export`): the onnxruntime-friendly attention layer, the
converter set-up, the atomic writer and the metadata; the export is checked against the
JAX forward pass in onnxruntime at several shapes before anything is written.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from semalign.runs import read_json, resolve_run
from semalign.workflows.export.onnx import (
    DEFAULT_OPSET,
    DEFAULT_TOLERANCE,
    INPUT_NAMES,
    ExportError,
    ExportReport,
    ParityCheck,
    check_out_path,
    check_shapes,
    example_inputs,
    metadata,
    write_model,
)

__all__ = ["EMBEDDING_OUTPUT", "export_pair_encoder"]

#: The graph's one output.
EMBEDDING_OUTPUT = "embedding"


def _export_copy(model):
    """A copy with explicit, unchunked attention in onnxruntime-friendly operators."""
    from flax import nnx

    from semalign.pair_models import PairEncoder
    from semalign.workflows.export._graph import OnnxAttention

    cfg = model.config
    attention = dataclasses.replace(cfg.attention, fused=False, batch_chunk=0)
    copy = PairEncoder(cfg.replace(attention=attention), rngs=nnx.Rngs(0))
    nnx.update(copy, nnx.state(model))
    copy.eval()
    for block in copy.blocks:
        block.attn = OnnxAttention(block.attn)
    return copy


def _embedding_fn(model):
    def fn(input_ids, attention_mask):
        return model(input_ids, attention_mask > 0).embedding

    return fn


def export_pair_encoder(
    run: str | os.PathLike[str] | None = None,
    *,
    runs_dir: str | os.PathLike[str] = "runs",
    out: str | os.PathLike[str] | None = None,
    opset: int = DEFAULT_OPSET,
    overwrite: bool = False,
    checkpoint: str = "best",
    tolerance: float = DEFAULT_TOLERANCE,
    shapes: Sequence[tuple[int, int]] | None = None,
) -> ExportReport:
    """Export a similarity run's encoder to ONNX, verify it in onnxruntime, write it.

    Args:
      run: the run folder; None = the newest under ``runs_dir``.
      runs_dir: where runs live.
      out: the ``.onnx`` file; default ``<run>/model.onnx``.
      opset: ONNX opset (23 has the fused ``Attention`` operator).
      overwrite: replace an existing ``out``.
      checkpoint: ``best`` or ``last``.
      tolerance: largest |onnxruntime − JAX| accepted.
      shapes: ``(batch, seq)`` pairs to check; default
        :func:`semalign.workflows.export.check_shapes`.

    Returns:
      The :class:`~semalign.workflows.export.onnx.ExportReport` (also saved as
      ``<run>/export.json``); its one output is ``embedding``.

    Raises:
      RunError: no run, or an incomplete one.
      ExportError: not a similarity run, an existing output, or a failed parity check
        (then nothing is written).
    """
    import jax
    import jax.numpy as jnp
    from jax2onnx import to_onnx

    from semalign.runs import write_json
    from semalign.runtime import open_session
    from semalign.workflows.export._graph import load_converters
    from semalign.workflows.loading import load_run

    paths = resolve_run(run, runs_dir=runs_dir)
    task = read_json(paths.config).get("task", "classification")
    if task != "similarity":
        raise ExportError(f"run '{paths.root}' is a {task} run: this exports similarity runs")
    out = Path(out) if out is not None else paths.onnx
    check_out_path(out, overwrite)
    loaded = load_run(paths.root, which=checkpoint)
    mcfg = loaded.model_config
    max_len = min(loaded.data_config.max_len, mcfg.max_len)
    t0 = time.perf_counter()
    logging.getLogger("onnx_ir").setLevel(logging.ERROR)  # a warning per untyped constant
    load_converters()
    b, s = jax.export.symbolic_shape("B, S", constraints=(f"S <= {mcfg.max_len}",))
    spec = jax.ShapeDtypeStruct((b, s), jnp.int32)
    proto = to_onnx(
        _embedding_fn(_export_copy(loaded.model)),
        [spec, spec],
        model_name=paths.name,
        opset=opset,
        input_names=list(INPUT_NAMES),
        output_names=[EMBEDDING_OUTPUT],
        normalization_mode="prefer_native",
    )
    meta = metadata(
        task="similarity",
        labels=(),
        tokenizer=loaded.tokenizer,
        model_config=mcfg,
        max_len=max_len,
        outputs=(EMBEDDING_OUTPUT,),
        run=paths.name,
        checkpoint=loaded.checkpoint,
    )
    meta["semalign.normalized"] = json.dumps(True)
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    t1 = time.perf_counter()

    staging = out.with_name(f".{out.name}.verify")
    write_model(proto, staging, overwrite=True)
    try:
        session = open_session(staging)
        reference = jax.jit(_embedding_fn(loaded.model))
        rng = np.random.default_rng(0)
        checks = []
        for batch, seq in tuple(shapes) if shapes is not None else check_shapes(max_len):
            ids, mask = example_inputs(batch, seq, mcfg.vocab_size, rng)
            (got,) = session.run([EMBEDDING_OUTPUT], {"input_ids": ids, "attention_mask": mask})
            d = np.abs(np.asarray(got, np.float64) - np.asarray(reference(ids, mask), np.float64))
            diff = float(d.max()) if np.all(np.isfinite(d)) else float("nan")
            checks.append(ParityCheck(batch, seq, {EMBEDDING_OUTPUT: diff}))
        report = ExportReport(
            path=out,
            run=paths.root,
            checkpoint=loaded.checkpoint,
            opset=opset,
            outputs=(EMBEDDING_OUTPUT,),
            checks=tuple(checks),
            tolerance=tolerance,
            seconds={"convert": round(t1 - t0, 3), "verify": round(time.perf_counter() - t1, 3)},
            size_bytes=staging.stat().st_size,
        )
        write_json(paths.export_report, report.to_dict())
        if not report.ok:
            raise ExportError(
                f"parity check failed: onnxruntime differs from JAX by "
                f"{report.max_abs_diff:.3g} (tolerance {tolerance:g}); nothing written, "
                f"details in {paths.export_report}"
            )
        os.replace(staging, out)
    finally:
        if staging.exists():
            staging.unlink()
    return report
