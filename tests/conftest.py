import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Multi-device tests fork a subprocess with their own XLA_FLAGS; keep the main process lean.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# Compiling, not computing, is most of this suite's CPU time: the tests build many small
# models of the same shapes, in this process and in the CLI subprocesses they start. One
# compilation cache for the session (inherited by every subprocess and xdist worker) compiles
# each identical computation once, and less XLA optimisation halves the rest; measured on
# test_train.py + test_causal_lm.py: 347 -> 184 CPU-seconds. Numbers are compared with fixed
# tolerances either way; the benchmarks and users keep the default optimisation.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="semalign-tests-jax-cache-")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
# Tests train tokenizers and encode texts afresh (CLI subprocesses included); the cache of
# them has its own tests (test_token_cache.py), which turn it on in a temporary folder.
os.environ.setdefault("SEMALIGN_DATA_CACHE", "0")
FAST_XLA = "--xla_backend_optimization_level=0"
if FAST_XLA not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_XLA}".strip()

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture
def shared_datasets() -> Path:
    path = SHARED / "datasets"
    if not path.is_dir():
        pytest.skip(f"shared datasets not found at {path} (only present in the dev/CI checkout)")
    return path
