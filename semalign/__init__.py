"""semalign: text classification and semantic alignment with pluggable attention scoring.

Importing the top-level package is cheap: it does not import JAX. Import the
submodules (``semalign.tasks``, ``semalign.workflows``, ``semalign.attention.scoring``, ...)
for the library.
"""

__version__ = "0.2.0"
