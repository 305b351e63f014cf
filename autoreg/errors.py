"""The errors a user is meant to read. The CLI prints them as one line."""

from __future__ import annotations


class AutoRegError(Exception):
    """Base of every error autoreg raises on purpose."""

    exit_code = 1


class UsageError(AutoRegError, ValueError):
    """An option or argument that cannot be used as given."""

    exit_code = 2


class DataError(AutoRegError, ValueError):
    """Data that cannot be read or searched."""

    exit_code = 2


class PluginError(AutoRegError, RuntimeError):
    """A technique plugin that cannot be loaded or is not usable."""


class StudyError(AutoRegError, RuntimeError):
    """A study that does not exist, clashes with the request, or holds nothing usable."""


class ExportFormatError(AutoRegError, ValueError):
    """A file that is not a valid autoreg compact export."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name if it has none."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
