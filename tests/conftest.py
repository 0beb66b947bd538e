import os
from pathlib import Path

import pytest

# Multi-device tests fork a subprocess with their own XLA_FLAGS; keep the main process lean.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture
def shared_datasets() -> Path:
    path = SHARED / "datasets"
    if not path.is_dir():
        pytest.skip(f"shared datasets not found at {path} (only present in the dev/CI checkout)")
    return path
