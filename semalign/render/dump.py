"""JSON and NPZ dumps: every number needed to redraw the attention elsewhere.

Both hold, per text: the tokens and ids, the prediction (label and class
probabilities), the visibility mask and, per selected layer and head, the raw scores
(``logits``) and the weights, plus the rollout when asked for; and once: the run, the
checkpoint, the labels, the scoring of every head, the attention config and which layers
and heads were kept. Floats are the model's float32 values, exactly.

NPZ keys (``np.load(path)`` works without pickle)::

    meta                 0-d str: the JSON document without the arrays
    labels, head_scorings, layers, heads
    text<i>/tokens       [L] str            text<i>/ids            [L] int32
    text<i>/probabilities [classes]         text<i>/mask           [L, L] bool
    text<i>/logits       [layers, heads, L, L] float32
    text<i>/weights      [layers, heads, L, L] float32
    text<i>/rollout      [L, L] float32 (with --rollout)
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from semalign.render._files import write_bytes

if TYPE_CHECKING:
    from semalign.workflows.introspect import AttentionReport

#: Identifies the layout of a dump; bumped when it changes.
FORMAT = "semalign-attention/1"


def _header(report: AttentionReport) -> dict[str, Any]:
    from semalign.workflows.introspect import ROLLOUT_RULE

    return {
        "format": FORMAT,
        "run": report.run,
        "checkpoint": report.checkpoint,
        "labels": list(report.labels),
        "scoring": report.scoring,
        "head_scorings": list(report.head_scorings),
        "attention_config": report.config_dict(),
        "num_layers": report.num_layers,
        "num_heads": report.num_heads,
        "layers": list(report.layers),
        "heads": list(report.heads),
        "rollout_rule": ROLLOUT_RULE if report.has_rollout else None,
    }


def _prediction(report: AttentionReport, t) -> dict[str, Any]:
    out = {
        "label": t.label,
        "index": t.predicted,
        "probabilities": {
            name: float(p) for name, p in zip(report.labels, t.probabilities, strict=True)
        },
    }
    if t.fills:  # a masked language model: the top tokens at each [MASK]
        out["masks"] = [
            {
                "position": f.position,
                "top": [
                    {"token": tok, "id": int(i), "probability": float(p)}
                    for tok, i, p in zip(f.tokens, f.ids, f.probabilities, strict=True)
                ],
            }
            for f in t.fills
        ]
    return out


def to_dict(report: AttentionReport) -> dict[str, Any]:
    """The report as JSON-ready Python objects (nested lists for arrays)."""
    out = _header(report)
    out["texts"] = [
        {
            "text": t.text,
            "tokens": list(t.tokens),
            "ids": t.ids.tolist(),
            "dropped_tokens": t.dropped,
            "prediction": _prediction(report, t),
            "mask": t.mask.tolist(),
            "logits": t.logits.tolist(),
            "weights": t.weights.tolist(),
            "rollout": None if t.rollout is None else t.rollout.tolist(),
        }
        for t in report.texts
    ]
    return out


def json_text(report: AttentionReport) -> str:
    """:func:`to_dict` as JSON text (float32 values round-trip exactly)."""
    return json.dumps(to_dict(report), ensure_ascii=False)


def write_json(report: AttentionReport, paths: Sequence[Path]) -> None:
    """Write :func:`json_text` to the one path."""
    (path,) = paths
    write_bytes(path, (json_text(report) + "\n").encode("utf-8"))


def to_arrays(report: AttentionReport) -> dict[str, np.ndarray]:
    """The report as named numpy arrays (the NPZ layout of the module docstring)."""
    meta = _header(report)
    meta["texts"] = [
        {"text": t.text, "dropped_tokens": t.dropped, "prediction": _prediction(report, t)}
        for t in report.texts
    ]
    arrays: dict[str, np.ndarray] = {
        "meta": np.asarray(json.dumps(meta, ensure_ascii=False)),
        "labels": np.asarray(report.labels, dtype=str),
        "head_scorings": np.asarray(report.head_scorings, dtype=str),
        "layers": np.asarray(report.layers, dtype=np.int32),
        "heads": np.asarray(report.heads, dtype=np.int32),
    }
    for i, t in enumerate(report.texts):
        arrays[f"text{i}/tokens"] = np.asarray(t.tokens, dtype=str)
        arrays[f"text{i}/ids"] = t.ids
        arrays[f"text{i}/probabilities"] = t.probabilities
        arrays[f"text{i}/mask"] = t.mask
        arrays[f"text{i}/logits"] = t.logits
        arrays[f"text{i}/weights"] = t.weights
        if t.rollout is not None:
            arrays[f"text{i}/rollout"] = t.rollout
    return arrays


def write_npz(report: AttentionReport, paths: Sequence[Path]) -> None:
    """Write :func:`to_arrays` as one compressed NPZ file."""
    (path,) = paths
    buffer = io.BytesIO()  # a file object: np.savez would append .npz to a bare name
    np.savez_compressed(buffer, **to_arrays(report))
    write_bytes(path, buffer.getvalue())
