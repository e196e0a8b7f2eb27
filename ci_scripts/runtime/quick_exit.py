"""End a process that has done its work without tearing its interpreter down.

Why: a Python process that imported pandas, scikit-learn and scipy spends 0.3-0.5 s of CPU in
its normal exit freeing every module and object one by one (on this project's machines: 2.5 s
for import-then-exit against 2.1 s when the teardown is skipped), and a forked child pays more,
as each freed object copies a page it shared with its parent. Nobody needs that work: the OS
reclaims a dead process's memory at once. The local backend ends many such processes: every
pipeline step forked by the warm interpreter (7-10 per run), both processes of every model server
it stops, the runtime's cold jobs; the CLI ends this way too. Skipping the teardown made a local
pipeline run about 30% cheaper.

What a normal exit does that matters is still done, in the same order: non-daemon threads are
waited for, ``atexit`` handlers run (``logging.shutdown`` among them), then every file object
still open for writing is flushed (a file a step forgot to close keeps what it wrote, as the
teardown would have kept it), and only then ``os._exit``. multiprocessing ends its forked
children the same way (``os._exit`` after the target returns).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import io
import os
import sys
import threading
from typing import NoReturn

_WRITERS = (io.BufferedWriter, io.BufferedRandom, io.TextIOWrapper)


def exit_status(code: object) -> int:
    """The status ``sys.exit(code)`` gives the OS: None is 0, an int itself, anything else is
    printed to stderr (a message) and is 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def end_process(status: int) -> NoReturn:
    """Exit with ``status`` (modulo 256, as ``sys.exit`` gives it to the OS) after what a normal
    exit keeps (see the module docstring)."""
    threading._shutdown()  # type: ignore[attr-defined]  # joins non-daemon threads, as exit does
    atexit._run_exitfuncs()
    flush_open_files()
    os._exit(status & 0xFF)


def flush_open_files() -> None:
    """Flush every file object still open for writing (stdout and stderr last)."""
    standard = (sys.stdout, sys.stderr)
    for obj in gc.get_objects():
        if isinstance(obj, _WRITERS) and obj not in standard:
            with contextlib.suppress(Exception):  # closed, read-only or broken: nothing to keep
                if not obj.closed:
                    obj.flush()
    for stream in standard:
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.flush()
