"""The suite on a busy machine: timeouts that wait for slowness, and no process left behind.

- :func:`patient` scales a timeout by how busy the machine is (load average per core, at least
  1) and by ``$CI_SCRIPTS_TEST_TIMEOUT_SCALE``, so a test fails on a hang, not on a slow machine.
- :func:`stop_local_processes` stops every local-backend process (routers, model servers) whose
  repo lies under a folder, found by the mark each carries (``CI_SCRIPTS_LOCAL_REPO``); the
  backend's own rules decide what is signalled (only processes proven to be that repo's).
- :func:`run_and_clean` runs a command tree (the demo) in a process group of its own and, on a
  timeout or any interruption, stops that group and every local process under ``work_dir``.

tests/conftest.py stops what a test's tmp_path holds after each test and what the session's
basetemp holds at its end, whether the test passed, failed or timed out.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

TIMEOUT_SCALE_ENV = "CI_SCRIPTS_TEST_TIMEOUT_SCALE"


def patient(seconds: float) -> float:
    """``seconds`` stretched by the machine's load per core (at least 1x) and by
    ``$CI_SCRIPTS_TEST_TIMEOUT_SCALE`` (default 1)."""
    try:
        load = os.getloadavg()[0] / (os.cpu_count() or 1)
    except OSError:
        load = 1.0
    try:
        scale = float(os.environ.get(TIMEOUT_SCALE_ENV) or 1)
    except ValueError:
        scale = 1.0
    return seconds * max(1.0, load) * max(1.0, scale)


def marked_repos(under: Path) -> set[Path]:
    """Repos under ``under`` that a running local-backend process names as its own."""
    from ci_scripts.backends.local.processes import REPO_MARK

    root = Path(under).resolve()
    prefix = f"{REPO_MARK}=".encode()
    found: set[Path] = set()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for value in environ:
            if value.startswith(prefix):
                repo = Path(value[len(prefix) :].decode(errors="replace"))
                if repo == root or root in repo.parents:
                    found.add(repo)
    return found


def stop_local_processes(under: Path) -> list[int]:
    """Stop every local-backend process of the repos under ``under``; their pids."""
    from ci_scripts.backends.local import processes as procs
    from ci_scripts.backends.local.state import LocalState

    stopped: list[int] = []
    for repo in sorted(marked_repos(under)):
        state = LocalState(repo)
        found = [r for r in procs.discovered(state) if procs.owned(r)]
        with contextlib.suppress(OSError):  # the repo may be gone: no journal to write then
            procs.stop_many(state, found)
        stopped += [r["pid"] for r in found]
    return stopped


def run_and_clean(
    command: list[str], work_dir: Path, timeout: float, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(command)`` in a process group of its own; when it times out or the run
    is interrupted, that group and every local process under ``work_dir`` are stopped before
    the exception goes on (:class:`subprocess.TimeoutExpired` for a timeout)."""
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a group this test created: it may be signalled as a whole
        **kwargs,  # type: ignore[arg-type]
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        stop_local_processes(work_dir)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.communicate(timeout=30)
        raise
    return subprocess.CompletedProcess(command, proc.returncode, out, err)
