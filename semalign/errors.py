"""Errors that a user caused and can fix.

Every message is one line: what was wrong, where, what to do. The CLI prints
these without a traceback and exits non-zero; anything else is a bug.
"""


class SemalignError(ValueError):
    """Base class for bad input: a config value, a file, a run folder."""


class DataError(SemalignError):
    """A dataset file or column is missing, empty, unreadable or inconsistent."""


class RunError(SemalignError):
    """A run folder is missing, incomplete or would be overwritten."""
