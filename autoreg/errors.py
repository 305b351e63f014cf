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


class Terminated(KeyboardInterrupt):
    """SIGTERM (a cluster stopping a job, ``kill``): stop as cleanly as on Ctrl-C."""


def stop_on_sigterm() -> None:
    """Make SIGTERM raise :class:`Terminated` in the main thread, like Ctrl-C raises
    KeyboardInterrupt, so a stopped job abandons its trial cleanly and records what it has."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):
        raise Terminated()

    signal.signal(signal.SIGTERM, handler)
