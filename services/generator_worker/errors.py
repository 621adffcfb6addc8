"""Errors of the generator worker.

    WorkerError                 (root; never raised itself)
    ├── BadMessage              the message is not a slot range: dropped, never retried
    ├── JobStopped              the job was cancelled or failed: stop working on it
    ├── ProviderMissing         the job's provider no longer exists: the job fails
    └── DependencyUnavailable   the task store, the registry or Redis cannot be reached:
                                the message is retried later (dramatiq Retry)

Messages never contain a secret: they end up in logs.
"""

from __future__ import annotations


class WorkerError(Exception):
    """Root of the errors the worker raises on purpose."""


class BadMessage(WorkerError):
    """Raised when a message body is not a valid slot range."""


class JobStopped(WorkerError):
    """Raised when the job was cancelled or failed (by this or another worker) while being filled."""


class DependencyUnavailable(WorkerError):
    """Raised when a call to the task store, the registry or Redis failed in a way worth retrying later."""


class ProviderMissing(WorkerError):
    """Raised when the registry no longer knows the job's provider."""
