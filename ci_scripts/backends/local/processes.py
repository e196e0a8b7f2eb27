"""Detached processes of the local backend (routers, model servers): start, check, stop.

Endpoints must outlive the CLI call that deployed them, so every process starts in its own
session (``start_new_session``: no terminal signal reaches it, and its pid is its process group
and its session, which ``stop`` signals as a whole). Each start is recorded in
``.mlops/pids/<name>.json`` with what proves later that the pid is still that process: the
kernel's start time of the pid (``start_ticks``, /proc on Linux; off Linux, ``start_stamp``: the
start time ``ps -o lstart=`` shows, to the second).

The pid files can be lost (``rm -rf .mlops``, ``git clean -fdx``) or damaged, so each process
also carries its own mark: ``CI_SCRIPTS_LOCAL_REPO=<repo root>`` (and its name and environment)
in its environment, which ``/proc/<pid>/environ`` shows to the same user. :func:`discovered` finds
this repo's processes from those marks alone.

Nothing is signalled unless it is proven to be this repo's (:func:`owned`): a child this process
still holds, or a pid whose start time matches its record and, on Linux, whose environment holds
this repo's mark. A record that proves nothing (no start time: written where /proc was missing,
or damaged) is forgotten, never trusted; a process whose pid the OS gave to someone else fails
the start-time check. A whole process group is signalled only when its leader is such a process
and leads the session :func:`spawn` created for it (pid == process group == session); anything
else gets a signal to that one pid, at most.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ci_scripts.backends.local.state import LocalState, read_json, write_json_atomic
from ci_scripts.errors import CIError

# The marks every spawned process carries in its environment (see the module docstring).
REPO_MARK = "CI_SCRIPTS_LOCAL_REPO"
NAME_MARK = "CI_SCRIPTS_LOCAL_PROCESS"
ENV_MARK = "CI_SCRIPTS_LOCAL_ENV"

# Popen objects of children started by this process: polling them reaps zombies, which would
# otherwise look alive to kill(pid, 0) until this process exits (tests start servers in-process).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}

STDERR_TAIL_LINES = 12  # of a failed step's or server's log, quoted in its one-line error


def tail(path: Path, lines: int = STDERR_TAIL_LINES) -> str:
    """The last non-blank lines of a log, joined on one line (errors are one line).

    Here, beside the processes that write the logs, so reading an endpoint's state does not
    import the pipeline step runner (``local_steps``) for it.
    """
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no output)"
    kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(kept)[-1500:] or "(empty)"


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


def start_stamp(pid: int) -> str | None:
    """Where there is no /proc (macOS): the start time ``ps`` shows for ``pid``, to the second.

    Weaker than Linux's proof (no environment mark is read: macOS shows another process's
    environment only through ``ps -E``, which is not portable), but a pid reused within the same
    second by an unrelated process is what it would take to mistake one for ours.
    """
    try:
        done = subprocess.run(
            ["ps", "-o", "lstart=", "-p", str(pid)],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    stamp = " ".join(done.stdout.split())
    return stamp if done.returncode == 0 and stamp else None


_HAS_PROC = Path("/proc/self/stat").exists()


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def dies_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` for a child that must not outlive the process that waits for it (a
    pipeline step, a batch transform): on Linux the kernel sends it SIGKILL when its parent
    dies, even by ``kill -9`` (``prctl(PR_SET_PDEATHSIG)``); a parent already gone by the time
    the child sets it is checked too.

    None where there is no prctl (macOS): there, a step whose CLI was killed runs on until it
    ends or its own timeout (``MaxRuntimeInSeconds``) stops it; Ctrl-C and SIGTERM still stop it
    with the CLI (``subprocess.run`` kills its child on the way out).
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def set_parent_death_signal() -> None:  # runs in the child, between fork and exec
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os.kill(os.getpid(), signal.SIGKILL)

    return set_parent_death_signal


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
    marks = {REPO_MARK: str(state.root), NAME_MARK: name}
    marks[ENV_MARK] = str((extra or {}).get("env", ""))
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env={**env, **marks},
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
        "start_stamp": None if _HAS_PROC else start_stamp(proc.pid),
        "repo": str(state.root),
        "group": True,  # start_new_session: this process leads a session and group of its own
        "command": command,
        "log": str(log_path),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        **(extra or {}),
    }
    write_json_atomic(_pid_file(state, name), record)
    state.journal("StartProcess", name, pid=proc.pid)
    return record


def exists(pid: int) -> bool:
    """Is there a process ``pid`` (not a zombie), whoever's it is? (Reaps our own children.)"""
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        _CHILDREN.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    with contextlib.suppress(OSError, IndexError):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def owned(record: dict[str, Any] | None) -> bool:
    """True only when the recorded process runs and is proven to be the one recorded.

    Proof is a child this process started and still holds (its pid cannot be reused before it
    is reaped), or the recorded start time of the pid, and on Linux this repo's mark in the
    process's environment too. A record without a start time proves nothing: False.
    """
    if not isinstance(record, dict):
        return False
    try:
        pid = int(record.get("pid") or 0)
    except (TypeError, ValueError):
        return False
    if pid <= 0:
        return False
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        _CHILDREN.pop(pid, None)
        return False
    if not exists(pid):
        return False
    if _HAS_PROC:
        ticks = start_ticks(pid)
        return ticks is not None and record.get("start_ticks") == ticks and _marked(pid, record)
    stamp = start_stamp(pid)
    return stamp is not None and record.get("start_stamp") == stamp


def alive(record: dict[str, Any] | None) -> bool:
    """True when the recorded process still runs and is the one we started (:func:`owned`)."""
    return owned(record)


def _marked(pid: int, record: dict[str, Any]) -> bool:
    """Does ``pid``'s environment carry the repo mark (the record's repo, when it names one)?"""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False  # gone, or another user's: not ours either way
    repo = record.get("repo")
    if repo:
        return f"{REPO_MARK}={repo}".encode() in environ
    return any(v.startswith(f"{REPO_MARK}=".encode()) for v in environ)


def stop(state: LocalState, record: dict[str, Any] | None, timeout: float = 5.0) -> None:
    """SIGTERM the process group, SIGKILL after ``timeout``; forget its pid file."""
    stop_many(state, [record] if record else [], timeout)


def stop_many(state: LocalState, found: list[dict[str, Any]], timeout: float = 5.0) -> None:
    """Stop several processes at once: signal them all, then wait (shutdowns overlap)."""
    running = [r for r in found if owned(r)]
    for record in running:
        # Stopping matters more than its trail: a read-only .mlops still gets its processes
        # stopped (the journal line and the pid file stay behind then; a stale record proves
        # nothing later, see owned()).
        with contextlib.suppress(OSError):
            state.journal("StopProcess", record.get("name", str(record["pid"])), pid=record["pid"])
        _signal(record, signal.SIGTERM)
    _wait_until_gone(running, timeout)
    stubborn = [r for r in running if owned(r)]
    for record in stubborn:
        _signal(record, signal.SIGKILL)
    _wait_until_gone(stubborn, 2.0)
    for record in found:
        with contextlib.suppress(TypeError, ValueError):
            _CHILDREN.pop(int(record.get("pid") or 0), None)
        if record.get("name"):
            with contextlib.suppress(OSError):
                (state.home / "pids" / f"{record['name']}.json").unlink(missing_ok=True)


def records(state: LocalState) -> list[dict[str, Any]]:
    """Every recorded process, running or not (unreadable pid files are skipped: see
    :func:`unreadable_records` and :func:`every_process`)."""
    found = []
    for path in _pid_files(state):
        with contextlib.suppress(CIError):
            found.append(read_json(path))
    return [r for r in found if isinstance(r, dict) and r.get("pid")]


def unreadable_records(state: LocalState) -> list[Path]:
    """Pid files that are empty, truncated or not a process record."""
    bad = []
    for path in _pid_files(state):
        try:
            data = read_json(path)
        except CIError:
            data = None
        if not isinstance(data, dict) or not data.get("pid"):
            bad.append(path)
    return bad


def discovered(state: LocalState) -> list[dict[str, Any]]:
    """This repo's running processes, from their own marks in /proc (no pid file needed).

    Only process group leaders (what :func:`spawn` starts) whose environment holds exactly
    ``CI_SCRIPTS_LOCAL_REPO=<this repo>``; their children share the group and stop with it.
    Empty where /proc does not exist (macOS: the pid files are all there is).
    """
    mark = f"{REPO_MARK}={state.root}".encode()
    try:
        entries = [e for e in Path("/proc").iterdir() if e.name.isdigit()]
    except OSError:
        return []
    found = []
    for entry in entries:
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone, or another user's process
        pid = int(entry.name)
        # a group and session leader: what spawn() starts (a shell's job that inherited the
        # mark leads a group but not a session: that group is not the backend's to signal)
        if mark not in environ or fields[0] == "Z" or not int(fields[2]) == int(fields[3]) == pid:
            continue
        marks = dict(v.decode(errors="replace").split("=", 1) for v in environ if b"=" in v)
        name = marks.get(NAME_MARK) or f"pid-{pid}"
        found.append(
            {
                "name": name,
                "pid": pid,
                "start_ticks": int(fields[19]),
                "role": "router" if name.endswith("-router") else "server",
                "env": marks.get(ENV_MARK, ""),
                "repo": str(state.root),
                "group": True,
                "discovered": True,
            }
        )
    return found


def every_process(state: LocalState) -> list[dict[str, Any]]:
    """The recorded processes plus running ones of this repo that no proven record names
    (a record that proves nothing, e.g. without a start time, does not hide its process)."""
    found = records(state)
    proven = {int(r["pid"]) for r in found if owned(r)}
    for record in discovered(state):
        if record["pid"] not in proven:
            found.append(record)
    return found


def stop_all(state: LocalState) -> list[dict[str, Any]]:
    """Stop every process of this repo (recorded or found by its mark); return those that were
    running. Unreadable pid files are removed once their processes are stopped."""
    found = every_process(state)
    stopped = [r for r in found if owned(r)]
    stop_many(state, found)
    for path in unreadable_records(state):
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
    return stopped


def _pid_files(state: LocalState) -> list[Path]:
    folder = state.home / "pids"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def _wait_until_gone(found: list[dict[str, Any]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(owned(r) for r in found) and time.monotonic() < deadline:
        time.sleep(0.02)


def _signal(record: dict[str, Any], sig: signal.Signals) -> None:
    """Signal a process :func:`owned` proved ours: its whole group when it leads the session
    and group spawn() created for it (what the record says it did), else only that pid."""
    pid = int(record["pid"])
    try:
        if record.get("group") is True and os.getsid(pid) == os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        return  # gone, or not ours to signal after all


def _pid_file(state: LocalState, name: str) -> Path:
    return state.dir("pids") / f"{name}.json"
