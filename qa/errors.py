"""The errors a user can meet. The CLI prints ``str(error)`` on one line and exits 1."""

from __future__ import annotations


class QAError(Exception):
    """Base class: a message that says what went wrong and what to do."""


class InputError(QAError, ValueError):
    """A question, an option or an input file that cannot be used as given."""


class CorpusError(QAError):
    """The corpus cannot be indexed (missing, empty, nothing readable)."""


class IndexNotFoundError(QAError):
    """No index at the given path."""


class IndexMismatchError(QAError):
    """The index on disk does not fit this version, this encoder or itself."""


class IndexBusyError(QAError):
    """Another process is updating the index."""
