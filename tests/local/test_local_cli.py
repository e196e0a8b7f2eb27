"""``ci_scripts local ps|down|reset``: what runs, stop it all, start afresh."""

from __future__ import annotations

from local_testkit import MANIFEST, pid_alive, running_pids
from typer.testing import CliRunner

from ci_scripts.backends.local.backend import LocalBackend
from ci_scripts.cli import app


def local(backend: LocalBackend, *args: str):
    root = str(backend.project.root)
    return CliRunner().invoke(app, ["--project-dir", root, "local", *args], catch_exceptions=False)


def test_ps_down_and_reset(backend: LocalBackend, registered) -> None:
    assert "no local processes" in local(backend, "ps").stdout
    backend.deploy("staging", MANIFEST, registered())
    pids = running_pids(backend)

    listed = local(backend, "ps").stdout
    assert "staging: http://127.0.0.1:" in listed and "version-1 100%" in listed
    assert "staging-router" in listed and listed.count("running") == 2

    down = local(backend, "down")
    assert down.exit_code == 0 and "2 process(es) stopped" in down.stdout
    assert not any(pid_alive(pid) for pid in pids)

    backend.deploy("staging", MANIFEST, backend.get_version("churn-model", 1))
    pids = running_pids(backend)
    reset = local(backend, "reset", "--yes")
    assert reset.exit_code == 0, reset.output
    assert not backend.state.home.exists()
    assert not any(pid_alive(pid) for pid in pids)
    assert "nothing to reset" in local(backend, "reset", "--yes").stdout


def _decoys(backend: LocalBackend):
    """Processes `local down` must never touch: one with another repo's mark, one unmarked."""
    import os
    import subprocess
    import sys

    from ci_scripts.backends.local.processes import REPO_MARK

    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    other = {**os.environ, REPO_MARK: f"{backend.project.root}-other"}
    return [
        subprocess.Popen(sleep, env=other, start_new_session=True),
        subprocess.Popen(sleep, start_new_session=True),
    ]


def test_damaged_pid_and_route_files_do_not_hide_the_running_processes(
    backend: LocalBackend, registered
) -> None:
    backend.deploy("staging", MANIFEST, registered())
    pids = running_pids(backend)
    pid_dir = backend.state.home / "pids"
    (pid_dir / "staging-router.json").write_text("")  # empty
    server = next(p for p in pid_dir.glob("staging-server-*.json"))
    server.write_text(server.read_text()[:20])  # truncated
    (backend.state.home / "endpoints" / "staging.json").write_text("{not json")
    decoys = _decoys(backend)
    try:
        listed = local(backend, "ps")
        assert listed.exit_code == 0, listed.output
        assert "staging.json: unreadable" in listed.stdout
        assert "staging-router" in listed.stdout and listed.stdout.count("found by its mark") == 2

        down = local(backend, "down")
        assert down.exit_code == 0, down.output
        assert "2 process(es) stopped" in down.stdout
        assert not any(pid_alive(pid) for pid in pids)
        assert all(decoy.poll() is None for decoy in decoys)  # nothing else was signalled
        assert not list(pid_dir.glob("*.json"))  # the damaged records are gone too
    finally:
        for decoy in decoys:
            decoy.kill()
            decoy.wait()


def test_deploy_over_a_damaged_routes_file_starts_over_and_leaves_no_orphan(
    backend: LocalBackend, registered
) -> None:
    v1, v2 = registered(), registered()
    backend.deploy("staging", MANIFEST, v1)
    old = running_pids(backend)
    (backend.state.home / "endpoints" / "staging.json").write_text("")
    (backend.state.home / "pids" / "staging-router.json").write_text("{")

    state = backend.deploy("staging", MANIFEST, v2)

    assert state.status == "InService" and state.model_version == v2.version
    assert not any(pid_alive(pid) for pid in old)
    assert len(running_pids(backend)) == 2


def test_down_and_reset_find_the_processes_after_mlops_was_deleted(
    backend: LocalBackend, registered
) -> None:
    import shutil

    backend.deploy("staging", MANIFEST, registered())
    pids = running_pids(backend)
    shutil.rmtree(backend.state.home)  # `git clean -fdx` while the endpoint runs
    decoys = _decoys(backend)
    try:
        listed = local(backend, "ps").stdout
        assert "staging-router" in listed and listed.count("found by its mark") == 2

        reset = local(backend, "reset", "--yes")
        assert reset.exit_code == 0, reset.output
        assert "stopped 2 process(es)" in reset.stdout
        assert not any(pid_alive(pid) for pid in pids)
        assert not backend.state.home.exists()
        assert all(decoy.poll() is None for decoy in decoys)
        assert "no local processes" in local(backend, "ps").stdout
    finally:
        for decoy in decoys:
            decoy.kill()
            decoy.wait()
