"""Start a run's step processes from a warm interpreter instead of a cold one.

Why: every Processing and Training step runs as its own ``python -m ci_scripts.runtime <step>``
process, as in the container, and each spends 1.5-3 s of CPU importing pandas, scikit-learn and
scipy before it does anything: on the demo's data that is most of every step, and a run starts
six to ten of them (more with tuning trials). One process per run pays that import once (once
its first job has started, so a run whose steps all hit the cache pays nothing) and forks a child
per step.
The child is a new process with the step's own argv, working directory, environment,
``PYTHONPATH`` (the version's own copy of the code: nothing of the repo's or of ci_scripts is
imported before the fork), stdin/stdout/stderr and exit status, as a cold start would have.

What still starts cold: a command that is not ``python -m <module> ...`` (a team's own
entrypoint), a platform without ``fork``, and everything when ``CI_SCRIPTS_LOCAL_WARM=0``.

Processes (the rules of :mod:`processes`): the warm process is a child the runner holds, started
with the parent-death signal from the thread that owns the run, and killed when the run ends; it
signals only children it forked and has not reaped yet (their pids cannot be reused), and each
child has the parent-death signal too, so a ``kill -9`` of the CLI takes down the warm process
and, through it, every step. It ignores SIGINT: a Ctrl-C reaches the steps (same process group)
and the CLI, which then stops the warm process.

A step's job reaches the warm process as one message on a control socket carrying the step's
own socket and its three stdio descriptors (SCM_RIGHTS), then the job itself as a JSON line on
the step's socket; the warm process answers there with the child's pid and, once reaped, its
exit status. A step's socket closing early (its waiting thread gone) or a ``kill`` line on it
kills that child.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import runpy
import selectors
import signal
import socket
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from typing import IO, Any

from ci_scripts.backends.local import image
from ci_scripts.runtime import quick_exit

# What the platform's step code imports (pandas, numpy, scikit-learn's estimators and metrics,
# scipy.stats for drift): imported once by the warm process; a step needing more imports it.
PRELOAD = (
    "numpy",
    "pandas",
    "scipy.stats",
    "joblib",
    "sklearn.base",
    "sklearn.compose",
    "sklearn.ensemble",
    "sklearn.impute",
    "sklearn.inspection",
    "sklearn.linear_model",
    "sklearn.metrics",
    "sklearn.pipeline",
    "sklearn.preprocessing",
)
SWITCH = "CI_SCRIPTS_LOCAL_WARM"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_PLATFORM_ROOT = Path(__file__).resolve().parents[3]  # the directory holding ci_scripts/


def enabled(env: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Warm starts are on unless ``CI_SCRIPTS_LOCAL_WARM=0``, where ``fork`` and prctl exist."""
    return env.get(SWITCH, "1") != "0" and hasattr(os, "fork") and sys.platform.startswith("linux")


def preload_for(entrypoint: str) -> tuple[str, ...]:
    """What a run's warm process imports: :data:`PRELOAD` when the steps run the platform's
    runtime (``ci_scripts.runtime``, the image's ENTRYPOINT), nothing for another ENTRYPOINT
    module (a stand-in of the backend's own tests, ``$CI_SCRIPTS_LOCAL_RUNTIME``), which may
    need none of it: importing scikit-learn, pandas and scipy for steps that never use them
    would cost every run about 2 s of CPU for nothing."""
    return PRELOAD if entrypoint == image.RUNTIME else ()


def module_command(command: list[str]) -> tuple[str, list[str]] | None:
    """(module, args) of ``[<this python>, -m, module, args...]``; None for anything else."""
    if len(command) < 3 or command[0] != sys.executable or command[1] != "-m":
        return None
    return None if command[2].startswith("-") else (command[2], command[3:])


class WarmStarter:
    """The CLI's side: one warm process for one run, started lazily by :meth:`start`."""

    def __init__(self, preload: tuple[str, ...] = PRELOAD) -> None:
        self.preload = preload  # what the warm process imports once its first job started
        self._proc: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the warm process (cheap: it imports nothing heavy until its first job).

        Call it from the thread that owns the run: the parent-death signal fires when the
        thread that started the process exits.
        """
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # The image's thread default now: the preload loads numpy and scikit-learn, which read
        # it once, for every step forked after.
        env = image.threads({k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
        try:
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    __name__,
                    str(theirs.fileno()),
                    ",".join(self.preload),
                    str(os.getpid()),  # it arms its parent-death signal itself (main)
                ],
                cwd=_PLATFORM_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                pass_fds=[theirs.fileno()],
            )
        except OSError:
            ours.close()
            self._proc = None
        else:
            self._control = ours
        finally:
            theirs.close()

    def stop(self) -> None:
        """Kill the warm process (our own child) and reap it; its steps die with it."""
        proc, self._proc = self._proc, None
        if self._control is not None:
            self._control.close()
            self._control = None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def run(
        self,
        command: list[str],
        *,
        cwd: Path,
        env: dict[str, str],
        stdout: IO[bytes],
        stderr: IO[bytes],
        timeout: float | None,
    ) -> int | None:
        """Run ``command`` as a forked child of the warm process; its exit status (negative:
        killed by that signal, as ``subprocess`` says). None when this command cannot start
        warm (not ``python -m``, no warm process): the caller starts it cold.

        Raises subprocess.TimeoutExpired after killing a step that ran past ``timeout``, and
        OSError when the warm process ended while the step ran.
        """
        parsed = module_command(command)
        if parsed is None or self._control is None:
            return None
        job_sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with job_sock, open(os.devnull, "rb") as stdin:
            try:
                with self._lock:
                    fds = [theirs.fileno(), stdin.fileno(), stdout.fileno(), stderr.fileno()]
                    socket.send_fds(self._control, [b"job"], fds)
            except OSError:
                return None  # the warm process is gone before taking the job: start it cold
            finally:
                theirs.close()
            module, args = parsed
            job = {"module": module, "args": args, "cwd": str(cwd), "env": env}
            job_sock.sendall(json.dumps(job).encode() + b"\n")
            replies = job_sock.makefile("rb")
            if not replies.readline():  # {"pid": N}
                raise OSError("the warm process ended before starting the step")
            job_sock.settimeout(timeout)
            try:
                line = replies.readline()
            except TimeoutError:
                job_sock.settimeout(None)
                job_sock.sendall(b"kill\n")
                while job_sock.recv(256):  # (a timed-out file object reads no more) until
                    pass  # the warm process has reaped it and closed the socket
                raise subprocess.TimeoutExpired(command, timeout or 0) from None
            if not line:
                raise OSError("the warm process ended while the step ran")
            return int(json.loads(line)["exit"])


# -- the warm process --------------------------------------------------------------------------
def _preload(names: list[str]) -> None:
    for name in names:
        with contextlib.suppress(ImportError):
            __import__(name)


def _die_with_parent(parent: int | None = None) -> None:
    """SIGKILL when the parent dies, and at once if it already has: in a step forked here (its
    parent: this warm process), and in the warm process itself, given the pid that started it.

    The warm process arms it itself, first thing, rather than through a ``preexec_fn``: one
    makes subprocess fork() the caller instead of vfork(), copying its page tables (about 60 ms
    from a process of 1 GB, such as a test worker, and its memory write-faulted after). The
    signal is the same: the kernel ties it to the thread that created the process."""
    import ctypes

    parent = os.getppid() if parent is None else parent
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:
        os._exit(137)


def serve(control: socket.socket, preload: list[str]) -> dict[str, Any] | None:
    """Fork a child per job until the CLI closes the control socket; None then. In a child,
    returns its job (the child leaves the loop and runs it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the selector through the pipe
    running: dict[int, socket.socket] = {}
    warmed = False
    with selectors.DefaultSelector() as selector:
        selector.register(control, selectors.EVENT_READ, "control")
        selector.register(wake_r, selectors.EVENT_READ, "reap")
        while True:
            for key, _ in selector.select():
                if key.data == "control":
                    try:
                        message, fds, _, _ = socket.recv_fds(control, 16, 4)
                    except OSError:
                        message, fds = b"", []
                    if not message or len(fds) != 4:
                        for fd in fds:
                            os.close(fd)
                        for pid in running:
                            os.kill(pid, signal.SIGKILL)  # not reaped yet: still ours
                        return None
                    job_sock = socket.socket(fileno=fds[0])
                    job = json.loads(job_sock.makefile("rb").readline() or b"null")
                    if not isinstance(job, dict):
                        job_sock.close()
                        for fd in fds[1:]:
                            os.close(fd)
                        continue
                    pid = os.fork()  # the first job starts before the preload, and takes
                    # its own imports: a light first step (Preprocess) overlaps the preload
                    if pid == 0:
                        _die_with_parent()
                        signal.set_wakeup_fd(-1)
                        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                        signal.signal(signal.SIGINT, signal.default_int_handler)
                        for sock in (control, job_sock, *running.values()):
                            sock.close()
                        os.close(wake_r)
                        os.close(wake_w)
                        for target, fd in enumerate(fds[1:]):
                            os.dup2(fd, target)
                            os.close(fd)
                        return job
                    for fd in fds[1:]:
                        os.close(fd)
                    running[pid] = job_sock
                    selector.register(job_sock, selectors.EVENT_READ, pid)
                    with contextlib.suppress(OSError):
                        job_sock.sendall(json.dumps({"pid": pid}).encode() + b"\n")
                    if not warmed:
                        _preload(preload)
                        warmed = True
                elif key.data == "reap":
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_r, 512)
                    while running:
                        pid, status = os.waitpid(-1, os.WNOHANG)
                        if pid == 0:
                            break
                        job_sock = running.pop(pid)
                        with contextlib.suppress(KeyError):  # unregistered when it closed
                            selector.unregister(job_sock)
                        exit_status = os.waitstatus_to_exitcode(status)
                        with contextlib.suppress(OSError):
                            job_sock.sendall(json.dumps({"exit": exit_status}).encode() + b"\n")
                        job_sock.close()
                else:  # a step's socket: "kill", or closed because its waiting thread is gone
                    pid = key.data
                    try:
                        said = key.fileobj.recv(64)  # type: ignore[union-attr]
                    except OSError:
                        said = b""
                    if pid in running:
                        os.kill(pid, signal.SIGKILL)  # not reaped yet: still ours
                    if not said:
                        selector.unregister(key.fileobj)


def run_step(job: dict[str, Any]) -> int:
    """In a forked child: become ``python -m <module> <args>`` in the job's cwd and environment;
    its exit status."""
    env: dict[str, str] = job["env"]
    os.chdir(job["cwd"])
    os.environ.clear()
    os.environ.update(env)
    for name in [m for m in sys.modules if m == "ci_scripts" or m.startswith("ci_scripts.")]:
        del sys.modules[name]  # the warm process's own; the step imports the version's copy
    python_path = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[:] = [job["cwd"], *python_path, *sys.path[1:]]
    sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
    encoding = env.get("PYTHONIOENCODING") or sys.stdout.encoding or "utf-8"
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding=encoding)
    sys.stdout, sys.stderr = (
        io.TextIOWrapper(
            io.FileIO(fd, "w", closefd=False),
            encoding=encoding,
            errors="backslashreplace" if fd == 2 else "strict",
            write_through=True,  # unbuffered, as PYTHONUNBUFFERED makes a cold step
        )
        for fd in (1, 2)
    )
    sys.argv = [job["module"], *job["args"]]
    try:
        runpy.run_module(job["module"], run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        return quick_exit.exit_status(exc.code)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # die of SIGINT, as a cold process does
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


def main() -> int:
    """The warm process: 0 once the CLI has gone; in a forked child, the step's exit."""
    _die_with_parent(int(sys.argv[3]))
    job = serve(socket.socket(fileno=int(sys.argv[1])), [n for n in sys.argv[2].split(",") if n])
    if job is None:
        return 0
    # A step ends without the interpreter's teardown, which would cost it 0.3-0.5 s of CPU
    # for nothing (quick_exit.py): its threads, atexit handlers and open files are seen to.
    quick_exit.end_process(run_step(job))


if __name__ == "__main__":
    sys.exit(main())
