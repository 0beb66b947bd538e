"""Layer 4: tasks as plugins on one encoder trunk.

Each task is one folder (``classification/``, ``similarity/``, ``pair_classification/``):
a JAX-free ``spec.py`` registered here, and a ``task.py`` with its data roles, model
(trunk + head), losses, metrics, outputs and ONNX graph. Workflows receive a task from
:data:`TASKS` and never name one. Adding a task is one folder and one line below.

>>> from semalign import tasks
>>> tasks.names()
('classification', 'similarity', 'pair-classification', 'causal-lm', 'mlm', 'rtd', 'contrastive')
"""

from __future__ import annotations

from semalign.registry import Registry
from semalign.tasks.spec import CAPABILITIES, TaskSpec

__all__ = ["CAPABILITIES", "DEFAULT_TASK", "TASKS", "TaskSpec", "get", "names", "register"]

TASKS: Registry[TaskSpec] = Registry("task")
#: The task of a run whose ``config.json`` names none (semalign 0.1.0 classifiers).
DEFAULT_TASK = "classification"


def register(spec: TaskSpec) -> TaskSpec:
    """Add a task.

    Raises:
      ValueError: if the name is taken.
    """
    return TASKS.register(spec.name, spec)


def get(name: str) -> TaskSpec:
    """The task registered as ``name``.

    Raises:
      ValueError: naming the value, a close match, and the choices.
    """
    return TASKS.get(name)


def names() -> tuple[str, ...]:
    """Registered task names, in registration order."""
    return TASKS.names()


# One line per task: importing its spec registers it.
from semalign.tasks.classification import spec as _classification  # noqa: E402, F401, I001
from semalign.tasks.similarity import spec as _similarity  # noqa: E402, F401
from semalign.tasks.pair_classification import spec as _pair_classification  # noqa: E402, F401
from semalign.tasks.causal_lm import spec as _causal_lm  # noqa: E402, F401
from semalign.tasks.mlm import spec as _mlm  # noqa: E402, F401
from semalign.tasks.rtd import spec as _rtd  # noqa: E402, F401
from semalign.tasks.contrastive import spec as _contrastive  # noqa: E402, F401
