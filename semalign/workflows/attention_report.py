"""What ``semalign inspect`` shows, as data: frozen numpy arrays, nothing printed.

:class:`AttentionReport` holds one :class:`TextAttention` per text; :func:`rollout` is
attention rollout (Abnar & Zuidema 2020). Per layer it averages the heads' ``|weights|``
and renormalises the rows, so that a DIFF-Transformer head, whose weights
``softmax₁ − λ·softmax₂`` can be negative and whose rows sum to ``1 − λ``, enters as a
distribution of attention magnitude; for softmax scorings ``|A| = A`` and the rows already
sum to 1, so this is the textbook rule. The residual connection is added as
``0.5·A + 0.5·I`` (rows renormalised again) and the layers are multiplied, the first on
the right. No JAX here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from semalign.config import AttentionConfig

__all__ = [
    "ROLLOUT_RULE",
    "AttentionReport",
    "MaskFill",
    "TextAttention",
    "frozen",
    "is_signed",
    "rollout",
]


def is_signed(name: str) -> bool:
    """Whether the scoring ``name`` gives weights that can be negative (registry flag)."""
    from semalign.attention import scoring  # lazy: reports are read and rendered without JAX

    return scoring.get(name).signed


#: How :func:`rollout` combines heads and layers, in words (saved with dumps).
ROLLOUT_RULE = (
    "per layer: mean over heads of |weights|, rows renormalised; then 0.5*A + 0.5*I, rows "
    "renormalised; product over layers, first layer on the right (Abnar & Zuidema 2020)"
)


def frozen(a: np.ndarray) -> np.ndarray:
    """A contiguous read-only view: reports are handed out, never edited."""
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class MaskFill:
    """What a masked language model predicts for one ``[MASK]`` token.

    Attributes:
      position: the token's index in the text (``[CLS]`` is 0).
      tokens: the ``k`` most probable tokens, most probable first.
      ids: ``[k]`` int32 their ids.
      probabilities: ``[k]`` float32 their probabilities.
    """

    position: int
    tokens: tuple[str, ...]
    ids: np.ndarray
    probabilities: np.ndarray


@dataclass(frozen=True, eq=False)
class TextAttention:
    """Attention of one text, padding removed (``L`` = its token count).

    Attributes:
      text: the text as given.
      tokens: ``L`` token strings, ``[CLS]`` first.
      ids: ``[L]`` int32 token ids.
      dropped: tokens cut off beyond the model's length (0 when the text fit).
      probabilities: ``[classes]`` float32 class probabilities.
      label: the predicted class name.
      logits: ``[layers, heads, L, L]`` float32 raw scores of the selected layers and
        heads (queries down, keys across), before masking.
      weights: ``[layers, heads, L, L]`` float32 attention weights; rows of softmax
        scorings sum to 1 over visible keys, DIFF-Transformer rows to ``1 − λ``.
      mask: ``[L, L]`` bool, True where query ``i`` may see key ``j`` (causal and
        local-window masks; all True without them).
      rollout: ``[L, L]`` float32 attention rollout over all layers and heads, or None.
      fills: one :class:`MaskFill` per ``[MASK]`` token of a masked language model's
        text (``probabilities`` and ``label`` are then the first one's); else empty.
    """

    text: str
    tokens: tuple[str, ...]
    ids: np.ndarray
    dropped: int
    probabilities: np.ndarray
    label: str
    logits: np.ndarray
    weights: np.ndarray
    mask: np.ndarray
    rollout: np.ndarray | None = None
    fills: tuple[MaskFill, ...] = ()

    @property
    def length(self) -> int:
        """Token count ``L``."""
        return len(self.tokens)

    @property
    def predicted(self) -> int:
        """Index of the predicted class."""
        return int(np.argmax(self.probabilities))


@dataclass(frozen=True, eq=False)
class AttentionReport:
    """What :func:`attention` returns and every renderer draws.

    Attributes:
      run: the run's name (``"model"`` for a bare model).
      checkpoint: which checkpoint was loaded, None for a bare model.
      labels: class names, index order.
      head_scorings: the scoring of every head of the model.
      attention_config: the model's attention config (scoring, masks, …).
      num_layers: layers of the model.
      layers: indices of the layers held in ``logits`` / ``weights``, 0-based.
      heads: indices of the heads held, 0-based.
      texts: one :class:`TextAttention` per text.
    """

    run: str
    checkpoint: str | None
    labels: tuple[str, ...]
    head_scorings: tuple[str, ...]
    attention_config: AttentionConfig
    num_layers: int
    layers: tuple[int, ...]
    heads: tuple[int, ...]
    texts: tuple[TextAttention, ...]

    @property
    def num_heads(self) -> int:
        """Heads per layer of the model."""
        return len(self.head_scorings)

    @property
    def scoring(self) -> str:
        """The scoring as configured: ``dot`` or one name per head, ``dot,cosine``."""
        names = self.head_scorings
        return names[0] if len(set(names)) == 1 else ",".join(names)

    @property
    def signed(self) -> bool:
        """Whether a held head's weights can be negative (a DIFF-Transformer head)."""
        return any(is_signed(self.head_scorings[h]) for h in self.heads)

    @property
    def has_rollout(self) -> bool:
        """Whether the texts carry a rollout."""
        return bool(self.texts) and self.texts[0].rollout is not None

    def config_dict(self) -> dict[str, Any]:
        """The attention config as a JSON-ready dict."""
        out = dataclasses.asdict(self.attention_config)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def rollout(weights: np.ndarray) -> np.ndarray:
    """Attention rollout of one text (see the module docstring for the rule).

    Args:
      weights: ``[layers, heads, L, L]`` weights of every layer and head of one text,
        padding removed.

    Returns:
      ``[L, L]`` float32; row ``i`` says how much each input token flows into the
      final state of token ``i``; rows sum to 1.

    >>> rollout(np.full((1, 1, 2, 2), 0.5)).tolist()  # one layer: 0.5·A + 0.5·I
    [[0.75, 0.25], [0.25, 0.75]]
    """
    w = np.abs(np.asarray(weights, np.float64))
    if w.ndim != 4 or w.shape[-1] != w.shape[-2]:
        raise ValueError(f"weights must be [layers, heads, L, L], got shape {w.shape}")
    n = w.shape[-1]
    eye = np.eye(n)

    def rows(a: np.ndarray) -> np.ndarray:
        s = a.sum(-1, keepdims=True)
        return np.divide(a, s, out=np.zeros_like(a), where=s > 0)

    out = eye
    for layer in w:
        a = rows(layer.mean(axis=0))
        out = rows(0.5 * a + 0.5 * eye) @ out
    return out.astype(np.float32)
