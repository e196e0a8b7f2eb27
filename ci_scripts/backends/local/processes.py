"""Detached processes of the local backend (routers, model servers): start, check, stop.

Endpoints must outlive the CLI call that deployed them, so every process starts in its own
session (``start_new_session``: no terminal signal reaches it, and its pid is its process group,
which ``stop`` signals as a whole). Each start is recorded in ``.mlops/pids/<name>.json`` with the
kernel's start time of the pid, so ``local down`` finds everything and never signals a pid that
the OS has since given to an unrelated process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ci_scripts.backends.local.state import LocalState, read_json, write_json_atomic

# Popen objects of children started by this process: polling them reaps zombies, which would
# otherwise look alive to kill(pid, 0) until this process exits (tests start servers in-process).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_ticks(pid: int) -> int | None:
    """When the kernel started ``pid`` (field 22 of /proc/<pid>/stat); None off Linux."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[19]) if len(fields) > 19 else None


def spawn(
    state: LocalState,
    name: str,
    command: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    role: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Start ``command`` detached, logging to ``.mlops/logs/<name>.log``; return its record."""
    log_path = state.dir("logs") / f"{name}.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    _CHILDREN[proc.pid] = proc
    record = {
        "name": name,
        "role": role,
        "pid": proc.pid,
        "start_ticks": start_ticks(proc.pid),
        "command": command,
        "log": str(log_path),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        **(extra or {}),
    }
    write_json_atomic(_pid_file(state, name), record)
    state.journal("StartProcess", name, pid=proc.pid)
    return record


def alive(record: dict[str, Any] | None) -> bool:
    """True when the recorded process still runs (and is the one we started)."""
    if not record or not record.get("pid"):
        return False
    pid = int(record["pid"])
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        _CHILDREN.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    ticks = start_ticks(pid)
    if ticks is not None and record.get("start_ticks") not in (None, ticks):
        return False  # the pid was reused by another process
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def stop(state: LocalState, record: dict[str, Any] | None, timeout: float = 5.0) -> None:
    """SIGTERM the process group, SIGKILL after ``timeout``; forget its pid file."""
    stop_many(state, [record] if record else [], timeout)


def stop_many(state: LocalState, found: list[dict[str, Any]], timeout: float = 5.0) -> None:
    """Stop several processes at once: signal them all, then wait (shutdowns overlap)."""
    running = [r for r in found if alive(r)]
    for record in running:
        state.journal("StopProcess", record.get("name", str(record["pid"])), pid=record["pid"])
        _signal_group(int(record["pid"]), signal.SIGTERM)
    _wait_until_gone(running, timeout)
    stubborn = [r for r in running if alive(r)]
    for record in stubborn:
        _signal_group(int(record["pid"]), signal.SIGKILL)
    _wait_until_gone(stubborn, 2.0)
    for record in found:
        _CHILDREN.pop(int(record.get("pid") or 0), None)
        if record.get("name"):
            _pid_file(state, record["name"]).unlink(missing_ok=True)


def records(state: LocalState) -> list[dict[str, Any]]:
    """Every recorded process, running or not."""
    folder = state.home / "pids"
    if not folder.is_dir():
        return []
    found = [read_json(path) for path in sorted(folder.glob("*.json"))]
    return [r for r in found if isinstance(r, dict)]


def stop_all(state: LocalState) -> list[dict[str, Any]]:
    """Stop every recorded process; return those that were running."""
    found = records(state)
    stopped = [r for r in found if alive(r)]
    stop_many(state, found)
    return stopped


def _wait_until_gone(found: list[dict[str, Any]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(alive(r) for r in found) and time.monotonic() < deadline:
        time.sleep(0.02)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _pid_file(state: LocalState, name: str) -> Path:
    return state.dir("pids") / f"{name}.json"
