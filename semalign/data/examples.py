"""Labelled text examples: the one container every reader returns."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from semalign.errors import DataError


@dataclass(frozen=True)
class Examples:
    """Texts with one string label each, in a fixed order.

    Labels are strings (``"pos"``, ``"3"``, ``"sports"``); any number of
    classes. Lists are accepted and stored as tuples.

    Attributes:
        texts: The texts, ``N`` of them.
        labels: The label of each text, ``N`` of them.

    Raises:
        DataError: If ``texts`` and ``labels`` differ in length or hold
            something other than strings.

    >>> ex = Examples(texts=("good", "bad", "fine"), labels=("pos", "neg", "pos"))
    >>> len(ex), ex.classes
    (3, ('neg', 'pos'))
    >>> ex.label_ids().tolist()
    [1, 0, 1]

    """

    texts: tuple[str, ...]
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "texts", tuple(self.texts))
        object.__setattr__(self, "labels", tuple(self.labels))
        if len(self.texts) != len(self.labels):
            raise DataError(
                f"Examples got {len(self.texts)} texts but {len(self.labels)} labels; "
                "give exactly one label per text"
            )
        for field, values in (("texts", self.texts), ("labels", self.labels)):
            bad = next((i for i, v in enumerate(values) if not isinstance(v, str)), None)
            if bad is not None:
                raise DataError(
                    f"Examples.{field}[{bad}] is {type(values[bad]).__name__}, not str; "
                    "convert texts and labels to strings"
                )

    def __len__(self) -> int:
        return len(self.texts)

    @functools.cached_property
    def classes(self) -> tuple[str, ...]:
        """The distinct labels, sorted; position ``i`` is class id ``i``."""
        return tuple(sorted(set(self.labels)))

    def subset(self, indices: Sequence[int] | np.ndarray) -> Examples:
        """Select the examples at ``indices``, in that order.

        Args:
            indices: Integer positions ``[M]``; repeats are allowed.

        Returns:
            A new ``Examples`` of length ``M``.

        """
        idx = [int(i) for i in indices]
        return Examples(
            texts=tuple(self.texts[i] for i in idx),
            labels=tuple(self.labels[i] for i in idx),
        )

    def label_ids(self, classes: Sequence[str] | None = None) -> np.ndarray:
        """Labels as class ids.

        Args:
            classes: The class names; id ``i`` is ``classes[i]``. Defaults to
                ``self.classes``. Pass the training split's classes when
                encoding a validation or test split.

        Returns:
            ``[N]`` int32 class ids.

        Raises:
            DataError: If a label is not in ``classes``.

        """
        names = self.classes if classes is None else tuple(classes)
        index = {name: i for i, name in enumerate(names)}
        unknown = sorted(set(self.labels) - index.keys())
        if unknown:
            raise DataError(
                f"labels {unknown} are not among the known classes {list(names)}; "
                "every label must also occur in the training data"
            )
        return np.fromiter((index[y] for y in self.labels), dtype=np.int32, count=len(self))


def check_trainable(examples: Examples, where: str) -> None:
    """Check that ``examples`` can train a classifier.

    Args:
        examples: The training examples.
        where: What they are, for the message (a path, ``"the training split"``).

    Raises:
        DataError: If there are no examples or fewer than two classes.

    """
    if len(examples) == 0:
        raise DataError(f"{where} holds no examples; give it at least two labelled texts")
    if len(examples.classes) < 2:
        raise DataError(
            f"{where} has a single class {examples.classes[0]!r} ({len(examples)} examples); "
            "a classifier needs at least 2 classes, check the label column"
        )
