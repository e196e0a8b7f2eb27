"""The single error type, and the one place that turns it into a one-line message and an exit code.

Import direction: cli -> commands -> backends/base <- aws | local; every layer may raise CIError and
the CLI (and ``ci_scripts local ...``) wrap their commands in :func:`one_line_errors`.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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


# The local backend's state folder (ci_scripts.backends.local.state.STATE_DIR, named here so this
# module imports nothing of a backend).
LOCAL_STATE_DIR = ".mlops"


def describe_os_error(exc: OSError) -> str:
    """``<file>: <reason>``, and for the local backend's state what to do about it."""
    path = str(exc.filename)
    reason = exc.strerror or str(exc)
    line = f"{path}: {reason}"
    if exc.filename2:
        line += f" (-> {exc.filename2})"
    if LOCAL_STATE_DIR not in Path(path).parts:
        return line
    if isinstance(exc, PermissionError) or exc.errno == errno.EROFS:
        where = f"the local backend's state ({LOCAL_STATE_DIR}/)"
        return f"{line}; {where} is not writable: make it writable and run again"
    return f"{line}; the local state is damaged: run `ci_scripts local reset`"


class DriftError(CIError):
    """Desired state (git) and running state differ; exit code 3 so callers can tell it apart."""

    exit_code = 3


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn expected failures into ``error: <one line>`` on stderr and the error's exit code.

    Unexpected AWS errors (botocore ClientError and friends) also become one line naming the
    operation and the AWS error code, and a file the machine refuses (read-only, not a folder,
    no space: an OSError naming its file) one line naming the file; anything else is a bug and
    keeps its traceback.
    """
    # Imported here, not at module level: every process that raises CIError imports this module
    # (the router, model servers, pipeline steps), and only the CLI needs typer (~70 ms).
    import typer

    try:
        yield
    except CIError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt as exc:
        # Ctrl-C, or SIGTERM/SIGHUP where a command turned them into one (interrupts.py): the
        # message says what the interrupted work left behind, when the code that knows set it.
        typer.echo(f"error: {exc or 'interrupted'}", err=True)
        raise typer.Exit(130) from None
    except OSError as exc:
        if exc.filename is None:
            raise
        typer.echo(f"error: {describe_os_error(exc)}", err=True)
        raise typer.Exit(1) from None
    except Exception as exc:
        if not type(exc).__module__.startswith(("botocore", "boto3")):
            raise
        from ci_scripts.backends.aws.errors import describe_aws_error

        typer.echo(f"error: {describe_aws_error(exc)}", err=True)
        raise typer.Exit(1) from None
