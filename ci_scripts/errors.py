"""The single error type the CLI turns into a one-line message and a non-zero exit."""

from __future__ import annotations


class CIError(Exception):
    """A failure the user can act on.

    The message names the resource (file, JSON path, ARN, endpoint...) and the reason, on one line.
    The CLI prints ``error: <message>`` to stderr and exits with ``exit_code``.
    """

    exit_code = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(" ".join(message.split()))
        if exit_code is not None:
            self.exit_code = exit_code


class DriftError(CIError):
    """Desired state (git) and running state differ; exit code 3 so callers can tell it apart."""

    exit_code = 3
