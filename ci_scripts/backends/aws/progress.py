"""What an aws deploy has changed so far, so an interrupted one says what it left.

Ctrl-C, or SIGTERM/SIGHUP turned into the same KeyboardInterrupt (ci_scripts.interrupts), can
stop a deploy between any two AWS calls or while one is in flight. The deploy records each step
as it happens: a write about to be sent (with what it leaves once AWS takes it), a write that
returned, a state reached (a waiter's InService). On an interrupt the backend turns the record
into ONE line (the CLI prints it and exits 130), e.g.::

    deploy staging interrupted: endpoint churn-staging is updating to version 3 (UpdateEndpoint
    sent); its tags still name version 2 - once it is InService, rerun deploy to repair the record

Nothing in the line is guessed: a write in flight is named as one that may or may not have
taken effect, with both outcomes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from ci_scripts.interrupts import StateReported, interrupted_by

START_AGAIN = "rerun deploy to start again"
CONTINUE = "rerun deploy to continue (it reuses what was created)"
DONE = "nothing to do"


@dataclass(frozen=True)
class Left:
    """What the environment is like at one point of a deploy, and what a rerun does about it."""

    state: str
    advice: str


@dataclass
class DeployProgress:
    """The record of one deploy of ``env``; ``unchanged`` says what it looked like before."""

    env: str
    unchanged: str = ""  # set once the deploy has read what runs
    left: Left | None = None  # the state the last step reached (None: before any change)
    in_flight: tuple[str, Left] | None = None  # a write sent, not yet answered

    def start(self, unchanged: str) -> None:
        """What the resource is before this deploy changes anything (read by the deploy)."""
        self.unchanged = unchanged

    @contextlib.contextmanager
    def preparing(self, operation: str, done: str) -> Iterator[None]:
        """A write that changes nothing the environment serves (a model, a config, alarms):
        ``done`` says what it did ("model m exists")."""
        base = self.left or Left(self.unchanged, CONTINUE)
        after = Left(f"{base.state}; {done}", base.advice)
        with self._sending(operation, after):
            yield
        self.left = after

    @contextlib.contextmanager
    def sending(self, operation: str, state: str, advice: str) -> Iterator[None]:
        """A write that changes what the environment serves; ``state`` is what it is once AWS
        took the write."""
        after = Left(state, advice)
        with self._sending(operation, after):
            yield
        self.left = after

    @contextlib.contextmanager
    def _sending(self, operation: str, after: Left) -> Iterator[None]:
        self.in_flight = (operation, after)
        yield  # an exception leaves it in flight: the line says so
        self.in_flight = None

    def reached(self, state: str, advice: str) -> None:
        """A state the deploy got to without a write of its own (a waiter's InService)."""
        self.left = Left(state, advice)

    def line(self, exc: KeyboardInterrupt) -> str:
        """The one line an interrupt at this point prints."""
        head = f"deploy {self.env} interrupted{interrupted_by(exc)}"
        if self.in_flight is not None:
            operation, after = self.in_flight
            before = self.left or Left(self._nothing_changed(), START_AGAIN)
            # Rerunning is safe either way; when the write would have finished the deploy, what
            # to do is what its loss leaves to do.
            advice = before.advice if after.advice == DONE else after.advice
            return (
                f"{head} while sending {operation}, which may or may not have taken effect: "
                f"if it did, {after.state}; if not, {before.state} - {advice}"
            )
        if self.left is None:
            return f"{head} before any change: {self._nothing_changed()} - {START_AGAIN}"
        return f"{head}: {self.left.state} - {self.left.advice}"

    def _nothing_changed(self) -> str:
        return f"nothing changed ({self.unchanged})" if self.unchanged else "nothing changed"

    def interrupted(self, exc: KeyboardInterrupt) -> StateReported:
        """The interrupt to raise in place of ``exc``; a reported one passes unchanged."""
        if isinstance(exc, StateReported):
            return exc
        nothing = self.left is None and self.in_flight is None
        return StateReported(self.line(exc), unchanged=self.unchanged if nothing else None)
