"""Compiling a jitted step for the shapes to come, on a background thread.

A run's batches come in a few shapes (one per length bucket), each compiling its own train
and eval step: about 4 s apiece for the default model on a 2-core CPU, 8 buckets, and
until now each compiled when its first batch arrived, with the devices idle meanwhile.
Known ahead (the batch plan lists them), they are compiled on background threads, one per
core, as soon as they are known: XLA compiles without holding the GIL, so while the step
loop waits for the first program the cores compile the next ones side by side, and later
ones compile while the first shapes train. A batch whose program is not ready waits for
the compilation already under way instead of starting a second one.

That pays where the step runs on an accelerator and the host's cores sit idle. On a CPU
the step itself keeps every core busy, so compilations aside only take turns with it: on
2 cores the default IMDB run's first epoch took 79-81 s with and without them, and peak
memory rose by 0.15 GiB (one thread) to 0.4 GiB (two). ``Steps`` uses them off-CPU only.

A thread stops when the queue is empty, and after the compilation it is in when the main
thread has ended (an interrupted run exits after at most one more compilation per thread).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any

import jax

__all__ = ["Precompiler", "signature", "spec"]


def signature(tree: Any) -> Hashable:
    """What a compiled program depends on in ``tree``: its structure, shapes and dtypes."""
    leaves, structure = jax.tree.flatten(tree)
    return structure, tuple((tuple(x.shape), str(x.dtype)) for x in leaves)


def spec(tree: Any, *, placed: bool = False) -> Any:
    """``tree`` as ``jax.ShapeDtypeStruct`` leaves (with each array's sharding if ``placed``)."""

    def one(x):
        where = getattr(x, "sharding", None) if placed else None
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=where)

    return jax.tree.map(one, tree)


class Precompiler:
    """Compiled programs by key, made by priority and submission order on a few threads.

    Args:
      workers: threads compiling at once (the step loop mostly waits for them at the start
        of a run, so as many as there are cores; one program is compiled by one thread).
    """

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self._jobs: dict[Hashable, Future] = {}
        self._queue: queue.PriorityQueue = queue.PriorityQueue()
        self._lock = threading.Lock()
        self._live = 0  # threads running

    def submit(self, key: Hashable, lower: Callable[[], Any], *, priority: int = 0) -> None:
        """Compile ``lower()`` (a ``jax.stages.Lowered``) under ``key``, once per key.

        Lower ``priority`` first, then in submission order (the train steps the epoch
        needs before the eval steps its end needs).
        """
        with self._lock:
            if key in self._jobs:
                return
            future: Future = Future()
            self._jobs[key] = future
            self._queue.put((priority, len(self._jobs), future, lower))
            if self._live < self.workers:
                self._live += 1
                threading.Thread(target=self._work, name="semalign-precompile").start()

    def get(self, key: Hashable) -> Any:
        """The compiled program for ``key``, waiting for it if under way.

        None if never submitted, cancelled or failed: the caller's jit then compiles, and
        raises the error where it happens.
        """
        future = self._jobs.get(key)
        if future is None or future.cancelled():
            return None
        try:
            return future.result()
        except Exception:  # noqa: BLE001 (the jit path reports it)
            return None

    def __contains__(self, key: Hashable) -> bool:
        return key in self._jobs

    def _work(self) -> None:
        main = threading.main_thread()
        while True:
            with self._lock:
                try:
                    _, _, future, lower = self._queue.get_nowait()
                except queue.Empty:
                    self._live -= 1
                    return
            if not main.is_alive():  # the program is ending: compile nothing more
                future.cancel()
                continue
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(lower().compile())
            except BaseException as err:  # noqa: BLE001 (handed to the waiting caller)
                future.set_exception(err)
