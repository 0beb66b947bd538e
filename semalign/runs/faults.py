"""A test hook: kill this process with SIGKILL at a named point of training.

Crash-safety tests start a training run with ``SEMALIGN_CRASH_AT=<point>@<where>`` in its
environment; when the run reaches that point it dies at once, as under ``kill -9``, and
the test resumes it. Points: ``mid-epoch@<epoch>`` (after the epoch's first step),
``mid-checkpoint@epoch-NNNN`` (the model written, the optimizer not),
``before-commit@<epoch>`` (the checkpoint complete, ``train_state.json`` not yet),
``before-pointers@<epoch>`` (the state written, the pointers not yet moved). Unset, the
hook costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

VARIABLE = "SEMALIGN_CRASH_AT"


def crash_point(name: str) -> None:
    """SIGKILL this process if ``SEMALIGN_CRASH_AT`` names ``name``."""
    if os.environ.get(VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)
