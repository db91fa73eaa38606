"""Every error autolog raises on bad input.

Each class derives from :class:`AutologError` and from the built-in exception a
caller would naturally catch (``ValueError``/``TypeError``/``LookupError``), so
``except ValueError`` keeps working for code that does not know autolog.
"""

from __future__ import annotations


class AutologError(Exception):
    """Base class of every error autolog raises."""


class InvalidName(AutologError, ValueError):
    """A key, name or identifier is empty, too long or contains forbidden text."""


class InvalidType(AutologError, TypeError):
    """An argument has the wrong type (an experiment name that is not a str, ...)."""


class InvalidMetric(AutologError, TypeError, ValueError):
    """A metric value or step that is not a number."""


class ParamConflict(AutologError, ValueError):
    """A param was logged again with a different value (params are written once)."""


class InvalidPath(AutologError, ValueError):
    """An artifact path escapes the run's artifact folder or is malformed."""


class ArtifactNotFound(AutologError, ValueError, FileNotFoundError):
    """A local file or folder given to ``log_artifact(s)`` does not exist."""


class InvalidFilter(AutologError, ValueError):
    """A search filter or order_by clause could not be parsed."""


class RunNotFound(AutologError, LookupError, ValueError):
    """No run (or experiment) matches the given id, prefix or name."""


class InvalidState(AutologError, ValueError):
    """The call does not fit the current state (no active run, run already active, ...)."""


class MissingDependency(AutologError, ImportError):
    """An optional package a feature needs is not installed; the message names the extra."""


class InvalidArgument(AutologError, ValueError):
    """An argument has a value outside what the call accepts (a negative limit, an unknown mode)."""


class StoreNotFound(AutologError, FileNotFoundError):
    """A read-only command or open names a folder that holds no autolog store."""


class ReadOnlyStore(AutologError, PermissionError):
    """A write was attempted on a store opened from a read-only folder or mount."""


class CorruptArtifact(InvalidPath):
    """A stored artifact record is unsafe or broken (escaping path, malformed digest, lost blob)."""


class InvalidModel(AutologError, LookupError, ValueError):
    """A run has no saved model, or one another integration's loader must read."""


class StoreLocked(AutologError, TimeoutError):
    """Another process held the store's write lock for longer than ``AUTOLOG_LOCK_TIMEOUT``."""
