"""One generic registry of names, for scorings, tasks, poolings, positions, schedules ...

Keeps registration order, refuses duplicates, suggests near misses (readers and renderers
use it too).

>>> colours = Registry("colour")
>>> colours.register("red", 1)
1
>>> colours.get("rde")
Traceback (most recent call last):
...
ValueError: unknown colour 'rde'. Did you mean 'red'? Available: red
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = ["Registry"]


class Registry(Generic[T]):
    """Name -> item, in registration order.

    Args:
      kind: what the items are, for messages (``"scoring"``, ``"task"``).
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T) -> T:
        """Add ``item`` under ``name``; returns it.

        Raises:
          ValueError: if the name is taken.
        """
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        """The item registered as ``name``.

        Raises:
          ValueError: naming the value received, a close match if any, and the choices.
        """
        try:
            return self._items[name]
        except (KeyError, TypeError):
            close = difflib.get_close_matches(str(name), list(self._items), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"unknown {self.kind} {name!r}.{hint} Available: {', '.join(self._items)}"
            ) from None

    def names(self) -> tuple[str, ...]:
        """Registered names, in registration order."""
        return tuple(self._items)

    def items(self) -> tuple[tuple[str, T], ...]:
        """``(name, item)`` pairs, in registration order."""
        return tuple(self._items.items())

    def values(self) -> tuple[T, ...]:
        """Items, in registration order."""
        return tuple(self._items.values())

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, name: str) -> T:
        return self.get(name)
