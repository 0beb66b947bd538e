"""How workflows report progress: a protocol the CLI renders and tests may ignore."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["Reporter", "SilentReporter"]


class Reporter(Protocol):
    """Receives progress; the CLI renders it, tests and scripts may ignore it."""

    def start(self, info: Mapping[str, Any]) -> None:
        """Run folder, task, data sizes, shapes, parameter count."""

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        """An epoch begins (1-based)."""

    def step(self, step: int, metrics: Mapping[str, float]) -> None:
        """Running train metrics within the epoch (step is 1-based, within the epoch)."""

    def epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """Train and validation metrics of an epoch."""

    def message(self, text: str) -> None:
        """A line worth showing."""


class SilentReporter:
    """Reports nothing."""

    def start(self, info: Mapping[str, Any]) -> None:  # noqa: D102
        pass

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:  # noqa: D102
        pass

    def step(self, step: int, metrics: Mapping[str, float]) -> None:  # noqa: D102
        pass

    def epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:  # noqa: D102
        pass

    def message(self, text: str) -> None:  # noqa: D102
        pass
