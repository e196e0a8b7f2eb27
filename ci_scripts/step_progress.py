"""Show pipeline steps as they start and end (``run-pipeline --wait``), instead of 20 silent s.

Backends log each step event on the ``ci_scripts.steps`` logger with ``extra={"step_event":
{name, type, status, seconds, cache_hit, failure_reason}}``; :func:`show_steps` prints them on
stderr (stdout stays the command's result): a rich spinner naming the running steps on a
terminal, one plain line per event elsewhere (CI logs, pipes), so logs stay readable.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

LOGGER = "ci_scripts.steps"


def describe(event: dict[str, Any]) -> str:
    """One line for a step event: ``Train (Training) started`` / ``... succeeded in 3.1 s``."""
    name, kind, status = event.get("name"), event.get("type"), event.get("status")
    label = f"{name} ({kind})"
    if status == "Executing":
        return f"{label} started"
    if status == "Skipped":
        return f"{label} skipped (its branch was not taken or a step before it failed)"
    seconds = float(event.get("seconds") or 0.0)
    cached = ", cache hit: outputs of an earlier run reused" if event.get("cache_hit") else ""
    line = f"{label} {str(status).lower()} in {seconds:.1f} s{cached}"
    if event.get("failure_reason"):
        line += f": {event['failure_reason']}"
    return line


class _PlainLines(logging.Handler):
    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "step_event", None)
        if event:
            self.stream.write(f"step {describe(event)}\n")
            self.stream.flush()


class _RichSteps(logging.Handler):
    """A spinner naming the steps that run now; a printed line when one starts or ends."""

    def __init__(self) -> None:
        super().__init__()
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False)
        self.running: list[str] = []
        self.status = self.console.status("starting the pipeline ...")

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "step_event", None)
        if not event:
            return
        name, status = str(event.get("name")), event.get("status")
        if status == "Executing":
            self.running.append(name)
        elif name in self.running:
            self.running.remove(name)
        mark = {"Executing": "[cyan]▶[/]", "Succeeded": "[green]✓[/]", "Failed": "[red]✗[/]"}
        self.console.print(f"{mark.get(str(status), '·')} {describe(event)}", soft_wrap=True)
        waiting = ", ".join(self.running) or "the next step"
        self.status.update(f"running {waiting} ...")


@contextmanager
def show_steps(stream: TextIO | None = None) -> Iterator[None]:
    """While the block runs, print step events on ``stream`` (stderr by default)."""
    stream = stream or sys.stderr
    logger = logging.getLogger(LOGGER)
    handler: logging.Handler = (
        _RichSteps() if stream is sys.stderr and stream.isatty() else _PlainLines(stream)
    )
    previous = (logger.level, logger.propagate)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        if isinstance(handler, _RichSteps):
            with handler.status:
                yield
        else:
            yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous[0])
        logger.propagate = previous[1]
