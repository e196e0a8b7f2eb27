"""The suite's own guard against a busy machine (issue 29, point 2): timeouts that stretch
with the load, and no local-backend process left behind by a test that times out."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from process_guard import marked_repos, patient, run_and_clean, stop_local_processes

from ci_scripts.backends.local import processes as procs

TEMPLATE_DIR = Path(__file__).resolve().parents[1]


def test_timeouts_stretch_with_the_load_per_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI_SCRIPTS_TEST_TIMEOUT_SCALE", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    monkeypatch.setattr("os.getloadavg", lambda: (14.0, 9.0, 7.0))
    assert patient(300) == 2100  # load 7 per core: seven times the quiet machine's ceiling
    monkeypatch.setattr("os.getloadavg", lambda: (0.5, 0.5, 0.5))
    assert patient(300) == 300  # never shorter than asked
    monkeypatch.setenv("CI_SCRIPTS_TEST_TIMEOUT_SCALE", "3")
    assert patient(300) == 900


def test_a_timed_out_run_leaves_no_endpoint_process_behind(tmp_path: Path) -> None:
    """What the demo tests saw on a busy machine: the demo killed at its timeout, its detached
    routers and servers still running. run_and_clean stops them (by their marks) too."""
    repo = tmp_path / "churn-model"
    script = textwrap.dedent(
        f"""
        import os, sys, time
        from pathlib import Path
        from ci_scripts.backends.local import processes as procs
        from ci_scripts.backends.local.state import LocalState
        state = LocalState(Path({str(repo)!r}))
        sleep = [sys.executable, "-c", "import time; time.sleep(120)"]
        procs.spawn(state, "prod-router", sleep, env=dict(os.environ), cwd=Path.cwd(),
                    role="router")
        print("spawned", flush=True)
        time.sleep(120)
        """
    )
    repo.mkdir()

    # The timeout must fall after the spawn: a short one first, longer ones only on a machine
    # too slow to spawn within it (the run's output so far, kept by the timeout, tells).
    for timeout in (1.0, 4.0, 16.0):
        with pytest.raises(subprocess.TimeoutExpired) as timed_out:
            run_and_clean([sys.executable, "-c", script], tmp_path, timeout, cwd=TEMPLATE_DIR)
        if b"spawned" in (timed_out.value.stdout or b""):
            break
    assert b"spawned" in (timed_out.value.stdout or b""), "the run never spawned its router"
    assert marked_repos(tmp_path) == set()


def test_stop_local_processes_finds_them_by_their_marks(tmp_path: Path) -> None:
    from ci_scripts.backends.local.state import LocalState

    state = LocalState(tmp_path / "repo")
    sleep = [sys.executable, "-c", "import time; time.sleep(120)"]
    record = procs.spawn(state, "staging-router", sleep, env={}, cwd=tmp_path, role="router")

    assert marked_repos(tmp_path) == {state.root}
    assert stop_local_processes(tmp_path) == [record["pid"]]
    assert not procs.exists(record["pid"])
