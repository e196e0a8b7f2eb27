"""Steps forked from a warm interpreter are the processes a cold start would have made.

The local backend starts `python -m ...` steps from a process that imported pandas and
scikit-learn once (ci_scripts/backends/local/warm.py): each step must still see its own argv,
cwd, environment, PYTHONPATH, stdio and exit status, time out and die with the CLI like a cold
one, and leave nothing running.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ci_scripts.backends.local import image, warm
from ci_scripts.backends.local import processes as procs
from scripts.template_layout import PROJECT_FOLDER

pytestmark = pytest.mark.skipif(not warm.enabled({}), reason="no fork/prctl: steps start cold")

# A step that reports what it is: run cold and warm, the reports must be the same.
PROBE = """
import json, os, sys
preloaded = "pandas" in sys.modules
platform_imported = "ci_scripts" in sys.modules
import shadowed
out = sys.argv[1]
Path = __import__("pathlib").Path
Path(out).write_text(json.dumps({
    "argv": sys.argv[2:],
    "argv0": Path(sys.argv[0]).name,
    "name": __name__,
    "cwd": os.getcwd(),
    "mine": os.environ.get("PROBE_MINE"),
    "removed": os.environ.get("PROBE_REMOVED"),
    "path": sys.path[:3],
    "shadowed": shadowed.WHERE,
    "platform_imported": platform_imported,
    "stdin": sys.stdin.read(),
}))
(Path(out).parent / (Path(out).name + ".pandas")).write_text(str(preloaded))
# written whole, then renamed: a test polling for the file never reads it half-written
pid_file = Path(out).parent / (Path(out).name + ".pid")
pid_file.with_suffix(".tmp").write_text(f"{os.getpid()} {os.getppid()}")
os.replace(pid_file.with_suffix(".tmp"), pid_file)
print("out: héllo")
print("err: wörld", file=sys.stderr)
unclosed = open(out + ".unclosed", "w")  # never closed: the exit must still flush it
unclosed.write("kept")


class TornDown:
    def __del__(self):
        os.write(2, b"torn down")


KEEP = TornDown()  # its __del__ runs only in an interpreter's teardown
how = sys.argv[2]
if how == "sleep":
    __import__("time").sleep(60)
if how == "raise":
    raise ValueError("probe failed")
if how == "message":
    sys.exit("probe says no")
if how == "signal":
    os.kill(os.getpid(), 15)
sys.exit(int(how))
"""


@pytest.fixture
def starter(monkeypatch: pytest.MonkeyPatch) -> Iterator[warm.WarmStarter]:
    """A warm process whose own environment holds a variable no step's environment has. It
    preloads pandas only (what the probe checks), not all of warm.PRELOAD: a second a test."""
    monkeypatch.setenv("PROBE_REMOVED", "the CLI's own")
    started = warm.WarmStarter(("pandas",))
    started.start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def step_dir(tmp_path: Path) -> Path:
    code = tmp_path / "code"
    code.mkdir()
    (code / "probe_step.py").write_text(PROBE)
    (code / "shadowed.py").write_text(f"WHERE = {str(code)!r}\n")
    (tmp_path / "work").mkdir()
    return tmp_path


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PROBE_REMOVED")}
    env.update(PYTHONPATH=str(root / "code"), PROBE_MINE="yes")
    return env


def _launch(
    root: Path, how: str, tag: str, starter: warm.WarmStarter | None, timeout: float | None = None
) -> tuple[int, dict[str, object], str, str]:
    """Run the probe cold (starter None) or warm; (status, report, stdout, stderr)."""
    report = root / f"{tag}.json"
    command = [sys.executable, "-m", "probe_step", str(report), how]
    work = root / "work"
    out_log, err_log = root / f"{tag}.out", root / f"{tag}.err"
    with out_log.open("wb") as out, err_log.open("wb") as err:
        if starter is None:
            status = subprocess.run(
                command, cwd=work, env=_env(root), stdin=subprocess.DEVNULL, stdout=out,
                stderr=err, timeout=timeout, check=False,
            ).returncode  # fmt: skip
        else:
            got = starter.run(
                command, cwd=work, env=_env(root), stdout=out, stderr=err, timeout=timeout
            )
            assert got is not None, "the warm process did not take the step"
            status = got
    found = json.loads(report.read_text()) if report.exists() else {}
    return status, found, out_log.read_text(), err_log.read_text()


def test_a_warm_step_is_the_process_a_cold_start_makes(step_dir: Path, starter) -> None:
    cold = _launch(step_dir, "3", "cold", None)
    first = _launch(step_dir, "3", "first", starter)
    second = _launch(step_dir, "3", "second", starter)
    assert cold[1]["removed"] is None and cold[1]["mine"] == "yes"
    assert cold[0] == first[0] == second[0] == 3
    assert cold[1] == first[1] == second[1]
    assert cold[1]["argv"] == ["3"] and cold[1]["name"] == "__main__"
    assert cold[1]["path"][:2] == [str(step_dir / "work"), str(step_dir / "code")]
    assert cold[2] == first[2] == second[2] == "out: héllo\n"
    assert "err: wörld" in second[3]
    assert all(
        (step_dir / f"{tag}.json.unclosed").read_text() == "kept"
        for tag in ("cold", "first", "second")
    )
    # a warm step skips the teardown (quick_exit.py), which frees what the preload imported
    assert "torn down" in cold[3] and "torn down" not in first[3] + second[3]
    # forked by the warm process (not started cold behind our back), after its preload
    warm_pid = starter._proc.pid  # type: ignore[union-attr]
    pid, ppid = map(int, (step_dir / "second.json.pid").read_text().split())
    assert ppid == warm_pid and pid != warm_pid
    assert (step_dir / "second.json.pandas").read_text() == "True"
    assert (step_dir / "cold.json.pandas").read_text() == "False"
    assert not procs.exists(pid)  # reaped


@pytest.mark.parametrize(
    ("how", "status", "said"),
    [
        ("0", 0, ""),
        ("raise", 1, "ValueError: probe failed"),
        ("message", 1, "probe says no"),
        ("signal", -signal.SIGTERM, ""),
    ],
)
def test_exit_statuses_are_a_cold_starts(
    step_dir: Path, starter, how: str, status: int, said: str
) -> None:
    cold = _launch(step_dir, how, "cold", None)
    warm_run = _launch(step_dir, how, "warm", starter)
    assert cold[0] == warm_run[0] == status
    assert said in cold[3] and said in warm_run[3]


def test_a_step_past_its_timeout_is_killed(step_dir: Path, starter) -> None:
    _launch(step_dir, "0", "warmup", starter)
    pid_file = step_dir / "slow.json.pid"
    # The timeout must fall once the step runs: a short one first, longer ones only on a machine
    # too slow to start it within that (the step writes its pid file when it starts).
    for timeout in (0.5, 2.0, 8.0):
        with pytest.raises(subprocess.TimeoutExpired):
            _launch(step_dir, "sleep", "slow", starter, timeout=timeout)
        if pid_file.exists():
            break
    pid = int(pid_file.read_text().split()[0])
    assert not procs.exists(pid)
    assert _launch(step_dir, "0", "after", starter)[0] == 0  # the warm process serves on


def test_stopping_the_warm_process_stops_its_steps(step_dir: Path, starter) -> None:
    errors: list[BaseException] = []

    def slow() -> None:
        try:
            _launch(step_dir, "sleep", "slow", starter)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=slow)
    thread.start()
    pid_file = step_dir / "slow.json.pid"
    deadline = time.monotonic() + 60
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = int(pid_file.read_text().split()[0])
    starter.stop()
    thread.join(30)
    assert not thread.is_alive()
    assert errors and isinstance(errors[0], OSError)
    _wait_gone(pid)


def test_only_python_m_commands_start_warm(step_dir: Path, starter) -> None:
    assert warm.module_command([sys.executable, "-m", "ci_scripts.runtime", "train"]) == (
        "ci_scripts.runtime",
        ["train"],
    )
    for command in (["/bin/true"], [sys.executable, "-c", "pass"], [sys.executable, "-m", "-X"]):
        assert warm.module_command(command) is None
        with open(os.devnull, "wb") as sink:
            assert (
                starter.run(command, cwd=step_dir, env={}, stdout=sink, stderr=sink, timeout=5)
                is None
            )


def test_kill_9_of_the_cli_takes_the_warm_process_and_its_steps_down(step_dir: Path) -> None:
    """The parent-death signal chains: CLI -> warm process -> step."""
    script = (
        "import sys, threading, time\n"
        "from pathlib import Path\n"
        "from ci_scripts.backends.local import warm\n"
        "root = Path(sys.argv[1]); starter = warm.WarmStarter(); starter.start()\n"
        "print(starter._proc.pid, flush=True)\n"
        "def step():\n"
        "    with open(root / 'o', 'wb') as out:\n"
        "        starter.run([sys.executable, '-m', 'probe_step', str(root / 'slow.json'),\n"
        "                     'sleep'], cwd=root / 'work', stdout=out, stderr=out,\n"
        "                    env={'PYTHONPATH': str(root / 'code')}, timeout=None)\n"
        "threading.Thread(target=step, daemon=True).start()\n"
        "time.sleep(120)\n"
    )
    root = Path(__file__).resolve().parents[2]
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(step_dir)], cwd=root, stdout=subprocess.PIPE, text=True
    )
    try:
        warm_pid = int(parent.stdout.readline())  # type: ignore[union-attr]
        pid_file = step_dir / "slow.json.pid"
        deadline = time.monotonic() + 60
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        step_pid = int(pid_file.read_text().split()[0])
        parent.kill()  # SIGKILL: no finally, no atexit in the CLI
        parent.wait()
        _wait_gone(warm_pid)
        _wait_gone(step_pid)
    finally:
        parent.kill()
        parent.wait()


def test_the_warm_process_dies_with_the_cli_though_its_socket_stays_open() -> None:
    """The warm process arms its own parent-death signal (no preexec_fn: warm.py says why).
    Here the CLI's end of the control socket outlives the CLI in a child of its own, so the warm
    process cannot learn of the CLI's death from the socket: only the signal ends it. (That
    child reads a pipe this test holds, and ends when the test closes it.)"""
    script = (
        "import subprocess, sys, time\n"
        "from ci_scripts.backends.local import warm\n"
        "starter = warm.WarmStarter(()); starter.start()\n"
        "subprocess.Popen([sys.executable, '-c', 'import sys; sys.stdin.buffer.read()'],\n"
        "                 stdin=int(sys.argv[1]), pass_fds=[starter._control.fileno()])\n"
        "print(starter._proc.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    root = Path(__file__).resolve().parents[2]
    keep_open, held = os.pipe()
    try:
        parent = subprocess.Popen(
            [sys.executable, "-c", script, str(keep_open)],
            cwd=root,
            stdout=subprocess.PIPE,
            text=True,
            pass_fds=[keep_open],
        )
        os.close(keep_open)
        try:
            warm_pid = int(parent.stdout.readline())  # type: ignore[union-attr]
            assert procs.exists(warm_pid)
            parent.kill()  # SIGKILL: no finally, no atexit in the CLI
            parent.wait()
            _wait_gone(warm_pid)
        finally:
            parent.kill()
            parent.wait()
    finally:
        os.close(held)  # the socket's holder reads its end of the pipe to EOF and exits


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while procs.exists(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not procs.exists(pid), f"process {pid} still runs"


def test_only_the_platform_runtime_gets_the_preload(backend, definition, monkeypatch) -> None:
    """A run whose ENTRYPOINT is a stand-in (the backend's tests' fake step code) has steps that
    import none of pandas or scikit-learn: its warm process imports nothing for them (it cost
    every such run about 2 s of CPU); the platform's runtime gets the whole preload."""
    from ci_scripts.backends.local import image

    asked: list[tuple[str, ...]] = []

    class Recording(warm.WarmStarter):
        def __init__(self, preload: tuple[str, ...] = warm.PRELOAD) -> None:
            asked.append(preload)
            super().__init__(preload)

    monkeypatch.setattr(warm, "WarmStarter", Recording)
    run = backend.run_definition(definition())
    assert run.status == "Succeeded", run.failure_reason
    assert asked == [()]
    monkeypatch.delenv(image.RUNTIME_ENV)
    assert warm.preload_for(image.runtime()) == warm.PRELOAD
    assert "sklearn.ensemble" in warm.PRELOAD


def test_a_run_of_one_step_process_starts_no_warm_interpreter(
    backend, definition, monkeypatch
) -> None:
    """Every monitoring run is one Processing step: a warm interpreter would preload pandas and
    scikit-learn (about 2 s of CPU) for steps that never come. A run of several step processes,
    or a Tuning step (one per trial), starts one."""
    from ci_scripts.backends.local.pipeline import build_graph, starts_several_processes

    started: list[tuple[str, ...]] = []

    class Recording(warm.WarmStarter):
        def start(self) -> None:
            started.append(self.preload)
            super().start()

    monkeypatch.setattr(warm, "WarmStarter", Recording)
    whole = definition()
    alone = {**whole, "Steps": [s for s in whole["Steps"] if s["Name"] == "Preprocess"]}
    run = backend.run_definition(alone)
    assert run.status == "Succeeded", run.failure_reason
    assert started == []
    run = backend.run_definition(whole)
    assert run.status == "Succeeded", run.failure_reason
    assert len(started) == 1
    assert starts_several_processes(build_graph({"Steps": [{"Name": "T", "Type": "Tuning"}]}))


@pytest.mark.parametrize(("given", "expected"), [(None, "1"), ("", "1"), ("3", "3")])
def test_the_warm_process_starts_with_the_image_thread_default(
    monkeypatch: pytest.MonkeyPatch, given: str | None, expected: str
) -> None:
    """numpy and scikit-learn read OMP_NUM_THREADS once, when the warm process preloads them, so
    it must carry the image's default (the Dockerfile's OMP_NUM_THREADS=1) from its start; a
    value the caller set wins, as a job's Environment wins over the image's ENV."""
    if given is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", given)
    started = warm.WarmStarter(())
    started.start()
    try:
        assert started._proc is not None
        # Popen returns once the child's exec has begun (vfork), which can be before the kernel
        # has laid out the new environment: /proc shows it empty until then.
        deadline = time.monotonic() + 10
        while not (environ := Path(f"/proc/{started._proc.pid}/environ").read_bytes()):
            assert time.monotonic() < deadline, "the warm process never showed its environment"
            time.sleep(0.01)
        environ = environ.split(b"\0")
    finally:
        started.stop()
    assert [v for v in environ if v.startswith(b"OMP_NUM_THREADS=")] == [
        f"OMP_NUM_THREADS={expected}".encode()
    ]
    # the default is the image's: its Dockerfile sets it for every job
    template = Path(__file__).resolve().parents[2]
    dockerfile = (template / PROJECT_FOLDER / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^\s+OMP_NUM_THREADS=1 \\$", dockerfile, re.M)
    # and every job's own environment (steps, servers, transforms) gets the same default
    env = image.environment(Path("src"), "pkg", {} if given is None else {"OMP_NUM_THREADS": given})
    assert env["OMP_NUM_THREADS"] == expected
