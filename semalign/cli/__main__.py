"""``python -m semalign.cli``."""

from semalign.cli import main

main()
