"""Ground layer: run folders (the unit users pass around) and their checkpoints."""

from semalign.runs.folder import (
    DEFAULT_REQUIRE,
    RunPaths,
    create_run,
    default_run_name,
    exported_model,
    newest_run,
    open_run,
    read_json,
    resolve_run,
    write_json,
)

__all__ = [
    "DEFAULT_REQUIRE",
    "RunPaths",
    "create_run",
    "default_run_name",
    "exported_model",
    "newest_run",
    "open_run",
    "read_json",
    "resolve_run",
    "write_json",
]
