"""SIGTERM and SIGHUP as Ctrl-C, while a change to what serves is half made.

Python's default for SIGTERM ends the process at once, skipping the ``except``/``finally`` blocks
that put an endpoint back (the local routes, the aws shadow test's config); a CI runner
cancelling a job (GitHub sends SIGINT, then SIGTERM), ``kill`` or a closed terminal must leave
it as cleanly as Ctrl-C does. Both backends use this one mechanism.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


class SignalInterrupt(KeyboardInterrupt):
    """The KeyboardInterrupt a SIGTERM or SIGHUP becomes inside :func:`termination_interrupts`."""

    def __init__(self, what: str, signal_name: str) -> None:
        super().__init__(f"{what} interrupted by {signal_name}")
        self.signal_name = signal_name


class StateReported(KeyboardInterrupt):
    """An interrupt whose message already says what the interrupted work left behind (the CLI
    prints it as is and exits 130). ``unchanged`` (what runs) is set when the work had changed
    nothing yet, so a caller that changed something first can say so instead."""

    def __init__(self, line: str, unchanged: str | None = None) -> None:
        super().__init__(line)
        self.unchanged = unchanged


def interrupted_by(exc: KeyboardInterrupt) -> str:
    """`` by SIGTERM`` (or SIGHUP) for a signal turned into an interrupt; empty for Ctrl-C."""
    return f" by {exc.signal_name}" if isinstance(exc, SignalInterrupt) else ""


@contextlib.contextmanager
def termination_interrupts(what: str = "deploy") -> Iterator[None]:
    """While the block runs, SIGTERM and SIGHUP raise KeyboardInterrupt like Ctrl-C does.

    Signal handlers can only be set in the main thread; elsewhere (a deploy run from a worker
    thread) nothing changes. The previous handlers come back afterwards.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, _frame: Any) -> None:
        raise SignalInterrupt(what, signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
