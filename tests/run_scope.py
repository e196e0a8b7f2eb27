"""What one pytest run shares across its xdist workers: a folder of its own.

Why: a result that costs tens of seconds (the demo loop, a render) is made once per run, by
whichever worker needs it first, while the others wait on a lock and read it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder every xdist worker of this run shares, and only this run: the parent of the
    workers' own basetemps (``popen-gwN``), in a subfolder named by the run's id (a --basetemp
    folder outlives its run); the basetemp itself without xdist."""
    base = tmp_path_factory.getbasetemp()
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if not (os.environ.get("PYTEST_XDIST_WORKER") and run_id):
        return base
    shared = base.parent / f"shared-{run_id}"
    shared.mkdir(exist_ok=True)
    return shared
