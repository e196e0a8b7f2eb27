"""What the local backend may signal: only processes proven to be this repo's, and a whole
process group only when the backend created it (issue 29, point 1)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ci_scripts.backends.local import processes as procs
from ci_scripts.backends.local.state import LocalState, write_json_atomic

SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]


@pytest.fixture
def state(tmp_path: Path) -> LocalState:
    return LocalState(tmp_path / "repo")


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts itself; killed (by their Popen) whatever the test did."""
    mine: list[subprocess.Popen[bytes]] = []
    yield mine
    for proc in mine:
        proc.kill()
        proc.wait()


def _record(state: LocalState, name: str, **record: object) -> None:
    write_json_atomic(state.dir("pids") / f"{name}.json", {"name": name, **record})


def _running(proc: subprocess.Popen[bytes]) -> bool:
    time.sleep(0.2)  # a signal, had one been sent, has landed by now
    return proc.poll() is None


def test_a_record_without_a_start_time_is_never_trusted(state, started) -> None:
    """A pid record written where /proc was missing (start_ticks None): its pid may be anyone's
    now. Before, it was trusted and its whole process group got SIGTERM."""
    foreign = subprocess.Popen(SLEEP, start_new_session=True)  # leads its own group
    started.append(foreign)
    _record(state, "staging-router", pid=foreign.pid, start_ticks=None, role="router")

    assert not procs.alive(procs.records(state)[0])
    assert procs.stop_all(state) == []

    assert _running(foreign)
    assert not list((state.home / "pids").glob("*.json"))  # the stale record is forgotten


def test_a_reused_pid_is_not_signalled(state, started) -> None:
    foreign = subprocess.Popen(SLEEP, start_new_session=True)
    started.append(foreign)
    ticks = procs.start_ticks(foreign.pid)
    _record(state, "staging-router", pid=foreign.pid, start_ticks=(ticks or 0) - 1)

    procs.stop_all(state)

    assert _running(foreign)


def test_a_record_matching_a_process_without_this_repos_mark_is_not_signalled(
    state, started
) -> None:
    """The start time matches (a record copied from elsewhere, a damaged one) but the process
    carries no mark of this repo: not ours."""
    foreign = subprocess.Popen(SLEEP, start_new_session=True)
    started.append(foreign)
    if procs.start_ticks(foreign.pid) is None:
        pytest.skip("no /proc: the start-time proof is ps's (see test_off_linux_...)")
    _record(state, "x", pid=foreign.pid, start_ticks=procs.start_ticks(foreign.pid))

    procs.stop_all(state)

    assert _running(foreign)


def test_a_marked_group_the_backend_did_not_create_is_not_signalled(state, started) -> None:
    """A process with this repo's mark that leads a process group but not a session (a shell's
    job that inherited the mark, say): spawn() did not start it, so neither it nor the other
    members of its group are signalled. Before, `local down` killpg'd the whole group."""
    marked = {**os.environ, procs.REPO_MARK: str(state.root)}
    leader = subprocess.Popen(SLEEP, env=marked, process_group=0)
    started.append(leader)
    member = subprocess.Popen(SLEEP, process_group=leader.pid)  # unmarked, in its group
    started.append(member)
    if not Path("/proc").is_dir():
        pytest.skip("processes are found by their marks only where /proc exists")

    assert procs.discovered(state) == []
    procs.stop_all(state)

    assert _running(leader) and _running(member)


def test_what_spawn_started_is_stopped_with_its_group(state) -> None:
    record = procs.spawn(
        state, "staging-router", SLEEP, env=dict(os.environ), cwd=state.root, role="router"
    )
    assert record["group"] is True and record["repo"] == str(state.root)
    assert procs.owned(record)

    stopped = procs.stop_all(state)

    assert [r["pid"] for r in stopped] == [record["pid"]]
    assert not procs.exists(record["pid"])


def test_a_process_found_by_its_mark_is_stopped_when_its_record_proves_nothing(state) -> None:
    """The record without a start time is not trusted, but the process it names is this repo's
    (its mark, its own session): found by the mark, it is still stopped."""
    record = procs.spawn(state, "staging-router", SLEEP, env=dict(os.environ), cwd=state.root,
                         role="router")  # fmt: skip
    procs._CHILDREN.pop(record["pid"])  # as a later CLI call sees it: not its child
    _record(state, "staging-router", pid=record["pid"], start_ticks=None)
    if not Path("/proc").is_dir():
        pytest.skip("processes are found by their marks only where /proc exists")
    try:
        stopped = procs.stop_all(state)
        assert [r["pid"] for r in stopped] == [record["pid"]]
        assert [r["pid"] for r in stopped if r.get("discovered")] == [record["pid"]]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(record["pid"], signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(record["pid"], 0)


def test_off_linux_the_start_stamp_is_the_proof(
    state, started, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without /proc (macOS) a record proves its process by ps's start time (to the second);
    a record without one proves nothing."""
    monkeypatch.setattr(procs, "_HAS_PROC", False)
    proc = subprocess.Popen(SLEEP, start_new_session=True)
    started.append(proc)
    stamp = procs.start_stamp(proc.pid)
    if stamp is None:
        pytest.skip("no ps here")

    assert procs.owned({"pid": proc.pid, "start_stamp": stamp})
    assert not procs.owned({"pid": proc.pid, "start_stamp": None, "start_ticks": None})
    assert not procs.owned({"pid": proc.pid, "start_stamp": "Thu Jan  1 00:00:00 1970"})


def test_a_step_child_dies_with_its_parent_even_after_kill_9(tmp_path: Path) -> None:
    """`kill -9` of run-pipeline orphaned the running step for about a minute (issue 29,
    point 8): the step's process now gets SIGKILL from the kernel when its parent dies."""
    if procs.dies_with_parent() is None:
        pytest.skip("no parent-death signal on this platform (macOS: documented fallback)")
    script = (
        "import subprocess, sys, time\n"
        "from ci_scripts.backends.local import processes as procs\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'],\n"
        "                         preexec_fn=procs.dies_with_parent())\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    root = Path(__file__).resolve().parents[2]
    parent = subprocess.Popen(
        [sys.executable, "-c", script], cwd=root, stdout=subprocess.PIPE, text=True
    )
    try:
        child = int(parent.stdout.readline())
        assert procs.exists(child)
        parent.kill()  # SIGKILL: no finally, no atexit in the parent
        parent.wait()
        deadline = time.monotonic() + 10
        while procs.exists(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not procs.exists(child)
    finally:
        parent.kill()
        parent.wait()


def test_pipeline_steps_and_batch_steps_run_with_the_parent_death_signal(
    backend, definition, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Steps started cold (warm starts: test_local_warm's kill -9 test covers their chain)."""
    from ci_scripts.backends.local import batch, steps

    monkeypatch.setenv("CI_SCRIPTS_LOCAL_WARM", "0")
    seen: list[object] = []
    real_run = subprocess.run

    def recording_run(*args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
        # subprocess.run is patched module-wide: record the steps' Python processes only, not
        # the git reads (the run's commit) that happen in the same process
        argv = args[0] if args else kwargs.get("args")
        if isinstance(argv, list) and "python" in Path(str(argv[0])).name:
            seen.append(kwargs.get("preexec_fn"))
        return real_run(*args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(steps.subprocess, "run", recording_run)
    result = backend.run_definition(definition(), {})
    assert result.status == "Succeeded", result.failure_reason
    monkeypatch.setattr(batch.subprocess, "run", recording_run)
    batch.LocalBatch._step([sys.executable, "-c", "pass"], dict(os.environ), Path.cwd())

    expected = procs.dies_with_parent() is not None
    assert len(seen) >= 2 and all(callable(f) == expected for f in seen)
