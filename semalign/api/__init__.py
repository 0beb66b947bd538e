"""The library face: ``semalign.load`` and ``semalign.train`` (beside the CLI, layer 7).

>>> import semalign
>>> run = semalign.train(data="reviews.csv", scoring="cosine", epochs=1)  # doctest: +SKIP
>>> semalign.load(run).predict(["a fine film"]).predictions[0].label  # doctest: +SKIP

Importing this package does not import JAX; loading or training a run does.
"""

from semalign.api.model import METHODS, Model, Unsupported
from semalign.api.run import Run, load
from semalign.api.train import train

__all__ = ["METHODS", "Model", "Run", "Unsupported", "load", "train"]
