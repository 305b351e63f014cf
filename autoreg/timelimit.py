"""The per-trial time limit: a trial that runs too long is stopped and failed.

The limit is a ``SIGALRM`` timer (``signal.setitimer``) whose handler raises
:class:`TrialTimeout` in the main thread, wherever the trial's Python code is: in a fit loop, a
``time.sleep``, a plugin's own code. Native code that never returns to the interpreter (one long
BLAS or solver call) is stopped only when it does return. Where there is no ``SIGALRM``
(Windows) or the search runs outside the main thread, nothing can interrupt a trial: a trial over
the limit is then failed when it ends, and :func:`interrupts` says so beforehand.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time

#: How often the timer fires again after the limit, should the trial's code swallow the first
#: interruption (an ``except BaseException`` that carries on).
REFIRE_SECONDS = 0.5


class TrialTimeout(Exception):
    """A trial ran past its time limit."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        super().__init__(f"exceeded the per-trial time limit of {seconds:g} s")


class _Expired(BaseException):
    """What the timer raises inside the trial's code: not an ``Exception``, so that a plugin's
    ``except Exception`` cannot swallow it (as with Ctrl-C). It leaves the limited block as a
    :class:`TrialTimeout`, whose ``__cause__`` it is."""


def interrupts() -> bool:
    """Whether a running trial can be interrupted here: ``SIGALRM`` exists and this is the
    main thread (where Python runs signal handlers)."""
    return (hasattr(signal, "setitimer") and hasattr(signal, "SIGALRM")
            and threading.current_thread() is threading.main_thread())


class _State:
    __slots__ = ("on", "deadline", "outer_due", "outer_interval", "outer_handler", "seconds")


@contextlib.contextmanager
def time_limit(seconds: float | None):
    """Raise :class:`TrialTimeout` in the code under this block once it has run ``seconds``.

    Yields a ``check()`` function that raises it too once the time is up (the only way to
    stop where :func:`interrupts` is false). Any ``SIGALRM`` handler and timer set before are
    restored afterwards; a timer of theirs due during the block still runs their handler.
    """
    if seconds is None:
        yield lambda: None
        return
    start = time.monotonic()
    deadline = start + seconds

    def check() -> None:
        if time.monotonic() >= deadline:
            raise TrialTimeout(seconds)

    if not interrupts():
        yield check
        return
    state = _State()
    state.on, state.deadline, state.seconds = True, deadline, seconds
    state.outer_handler = None

    def arm(now: float) -> None:
        due = min(state.deadline, state.outer_due if state.outer_due is not None else math.inf)
        signal.setitimer(signal.ITIMER_REAL, max(due - now, 1e-4))

    def on_alarm(signum, frame):
        if not state.on:
            return
        now = time.monotonic()
        if state.outer_due is not None and now >= state.outer_due - 1e-3:
            # The timer set before this trial is due: its handler runs as it would have.
            state.outer_due = now + state.outer_interval if state.outer_interval else None
            _call(state.outer_handler, signum, frame)
        if now >= state.deadline - 1e-3:
            signal.setitimer(signal.ITIMER_REAL, REFIRE_SECONDS)
            raise _Expired()
        arm(now)

    # The timer set before is stopped (and remembered) before the handler changes, so that
    # each handler only ever sees its own timer fire.
    outer_delay, state.outer_interval = signal.setitimer(signal.ITIMER_REAL, 0)
    state.outer_due = start + outer_delay if outer_delay > 0 else None
    state.outer_handler = signal.signal(signal.SIGALRM, on_alarm)
    try:
        arm(time.monotonic())
        yield check
    except _Expired as exc:
        raise TrialTimeout(seconds) from exc
    finally:
        # First of all: from here the handler does nothing, should the timer fire now.
        state.on = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL if state.outer_handler is None
                      else state.outer_handler)  # None: a handler set outside Python
        if state.outer_due is not None:
            signal.setitimer(signal.ITIMER_REAL, max(state.outer_due - time.monotonic(), 1e-4),
                             state.outer_interval)


def _call(handler, signum, frame) -> None:
    """Do what ``handler`` (as ``signal.signal`` returned it) does for ``signum``."""
    if callable(handler):
        handler(signum, frame)
    elif handler == signal.SIG_DFL:
        # SIGALRM's default action ends the process; let it.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
