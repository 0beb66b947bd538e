"""What a task is, without JAX: the CLI lists tasks and builds their data configs from it.

A :class:`TaskSpec` names the task, the data it reads, the metric training selects on
(and its direction), the losses it accepts, what the other workflows can do with its
runs, and where its implementation lives (:class:`semalign.tasks.base.Task`, imported
only when a workflow needs it).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CAPABILITIES", "TaskSpec"]

#: What a workflow may ask of a task's runs.
CAPABILITIES = ("predict", "embed", "inspect", "align", "export", "generate")
#: The command that does each capability, as a refusal suggests it.
COMMANDS = {
    "predict": 'semalign predict "a text"',
    "embed": 'semalign embed "a text"',
    "inspect": 'semalign inspect "a text"',
    "align": 'semalign inspect "a text" --pair "another text"',
    "export": "semalign export onnx",
    "generate": 'semalign generate "a prompt"',
}


@dataclass(frozen=True)
class TaskSpec:
    """A registered task.

    Attributes:
      name: the ``--task`` value.
      summary: one line for ``semalign tasks`` and ``--help``.
      columns: the data roles one example has (``text``, ``label``; ``text_a``,
        ``text_b``, ``score``).
      metric: the validation number training selects on (``accuracy``, ``spearman``).
      higher_is_better: that number's direction.
      losses: the ``--loss`` values it accepts; the first is the default.
      capabilities: which of :data:`CAPABILITIES` its runs support.
      export_outputs: optional ONNX outputs ``export onnx`` may add (``embedding``,
        ``attention``).
      test_key: the key of ``metric`` in the test line of ``metrics.jsonl`` when it is
        not ``metric`` itself (similarity: ``spearman_cosine``).
      data_config: the class of its ``config.json`` ``"data"`` section.
      data_from_options: the command line's options -> its data config (raises
        ``DataError`` / ``ValueError`` with one line on bad input).
      implementation: ``"module:attribute"`` of its :class:`~semalign.tasks.base.Task`.
      row_sum_losses: the losses (of ``losses``) that are a sum over rows: each row's term
        depends on that row alone, the loss value is ``loss_sum / max(count, 1)`` of its
        sums, so its gradient can be accumulated over micro-batches (the CPU train
        step). Losses that compare rows within a batch (CoSENT) are left out.
      options: the task-only options of ``semalign train`` it reads (``stream``,
        ``whole_word_masking``, ``temperature``); another task given one refuses it.
      row_outputs: the losses whose evaluation outputs hold only arrays with rows first,
        each row's depending on that row alone, and scalars that are sums over rows; the
        CPU eval step may then run micro-batch by micro-batch
        (:func:`semalign.workflows.microbatch.map_rows`).
      defaults: ``semalign train`` option values this task takes where none was given
        (``--max-len``, ``--truncation``, ``--bigram-buckets``); the rest fall back to
        :data:`semalign.workflows.options.OPTION_DEFAULTS`.
    """

    name: str
    summary: str
    columns: tuple[str, ...]
    metric: str
    higher_is_better: bool
    losses: tuple[str, ...]
    capabilities: frozenset[str]
    data_config: type
    data_from_options: Callable[[Mapping[str, Any]], Any]
    implementation: str
    export_outputs: frozenset[str] = field(default_factory=frozenset)
    test_key: str | None = None
    row_sum_losses: frozenset[str] = field(default_factory=frozenset)
    row_outputs: frozenset[str] = field(default_factory=frozenset)
    options: frozenset[str] = field(default_factory=frozenset)
    defaults: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self):
        unknown = set(self.capabilities) - set(CAPABILITIES)
        if unknown:
            raise ValueError(f"task {self.name!r}: unknown capabilities {sorted(unknown)}")
        if stray := set(self.row_sum_losses) - set(self.losses):
            raise ValueError(f"task {self.name!r}: row_sum_losses {sorted(stray)} not in losses")
        if stray := set(self.row_outputs) - set(self.losses):
            raise ValueError(f"task {self.name!r}: row_outputs {sorted(stray)} not in losses")

    def sums_over_rows(self, loss: str) -> bool:
        """Whether ``loss`` is a sum over rows (its gradient accumulates over micro-batches)."""
        return loss in self.row_sum_losses

    @property
    def test_metric(self) -> str:
        """The key of the selection metric in a run's test line (``metrics.jsonl``)."""
        return self.test_key or self.metric

    def supports(self, capability: str) -> bool:
        """Whether runs of this task can do ``capability`` (see :data:`CAPABILITIES`)."""
        return capability in self.capabilities

    def refusal(self, run: str, capability: str, why: str) -> str:
        """One line refusing ``capability`` to a run, naming what its runs can do instead.

        Example: ``run 'x' is a mlm run: it has no embeddings; its runs can do `semalign
        inspect "a text"`, `semalign export onnx`, `semalign evaluate` and serve as
        `semalign train --init-from x`.``
        """
        uses = [f"`{COMMANDS[c]}`" for c in CAPABILITIES if c != capability and self.supports(c)]
        uses.append("`semalign evaluate`")
        return (
            f"run {run!r} is a {self.name} run: {why}; its runs can do {', '.join(uses)} and "
            f"serve as `semalign train --init-from {run}`"
        )

    def check_loss(self, name: str | None) -> str:
        """The loss to use (None: the default).

        Raises:
          ValueError: naming the received value and the choices.
        """
        if name is None:
            return self.losses[0]
        if name not in self.losses:
            raise ValueError(
                f"--loss {name!r} does not fit task {self.name!r}; choose one of "
                f"{', '.join(self.losses)}"
            )
        return name

    def load(self) -> Any:
        """The task's implementation (imports JAX)."""
        module, _, attribute = self.implementation.partition(":")
        return getattr(importlib.import_module(module), attribute)
