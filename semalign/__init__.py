"""semalign: text classification and semantic alignment with pluggable attention scoring.

Importing the top-level package is cheap: it does not import JAX. Import the
submodules (``semalign.attention.scoring``, ``semalign.models``, ...) for the library.
"""

__version__ = "0.1.0"
