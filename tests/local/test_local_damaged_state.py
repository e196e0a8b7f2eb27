"""The local backend's commands on damaged, read-only or foreign state (issue 29, points 3-5):
one ``error:`` line that names the file and what to do (``local reset``), never a traceback;
``local reset`` repairs what it can."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_harness import LocalHarness, local_harness
from test_contract_rollback_status import merge_and_deploy

TEMPLATE_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def deployed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalHarness]:
    """staging serves version 1 (a router and a model server run)."""
    with local_harness(tmp_path, monkeypatch) as harness:
        merge_and_deploy(harness, "staging", harness.seed_version().version, pr=1)
        yield harness


def cli(
    harness: LocalHarness, *args: str, wrap: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m ci_scripts ARGS`` as a user runs it: a process of its own."""
    env = {**os.environ, "PYTHONPATH": str(TEMPLATE_DIR), "COLUMNS": "200"}
    command = [sys.executable, "-m", "ci_scripts", "--backend", "local", *args]
    return subprocess.run(
        [*(wrap or []), *command],
        cwd=harness.project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode != 0, done.stdout + done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), done.stderr
    for needle in needles:
        assert needle in last, last


def read_only(path: Path) -> list[str]:
    """A command prefix under which ``path`` is read-only (root ignores file modes: a private
    read-only bind mount then)."""
    if os.geteuid() != 0:
        for p in [path, *path.rglob("*")]:
            p.chmod(p.stat().st_mode & ~0o222)
        return []
    if not shutil.which("unshare"):
        pytest.skip("root without unshare: no way to make a folder read-only")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("root without mount namespaces: no way to make a folder read-only")
    script = 'mount --bind -o ro "$1" "$1" && shift && exec "$@"'
    return ["unshare", "-m", "sh", "-c", script, "sh", str(path)]


READ_ONLY_HINT = "(.mlops/) is not writable: make it writable and run again"


@pytest.mark.parametrize(
    "args",
    [
        ("smoke-test", "--env", "staging"),
        ("run-pipeline",),
        ("destroy", "--env", "staging", "--yes"),
        ("deploy", "--env", "staging"),
    ],
    ids=lambda a: "-".join(a),
)
def test_a_command_that_writes_to_read_only_state_says_so_in_one_line(
    deployed: LocalHarness, args
) -> None:
    """Before: PermissionError / OSError(EROFS) tracebacks."""
    done = cli(deployed, *args, wrap=read_only(deployed.backend.state.home))
    if done.returncode == 0:  # smoke-test only reads (and appends nothing) when it passes
        assert "Traceback" not in done.stderr and args[0] == "smoke-test", done.stderr
        return
    assert_one_line_error(done, ".mlops", READ_ONLY_HINT)


def test_status_and_local_down_only_read_and_work_on_read_only_state(
    deployed: LocalHarness,
) -> None:
    """status took the deploy lock (a write) to read; local down stops what runs even where
    it cannot remove the records (they prove nothing afterwards)."""
    wrap = read_only(deployed.backend.state.home)
    status = cli(deployed, "status", wrap=wrap)
    assert "Traceback" not in status.stderr, status.stderr
    assert status.returncode in (0, 3) and "staging" in status.stdout, status.stderr

    down = cli(deployed, "local", "down", wrap=wrap)

    assert down.returncode == 0, down.stderr
    assert "2 process(es) stopped" in down.stdout
    assert deployed.backend.describe_endpoint("staging").status == "Failed"


def test_undecodable_routes_file_is_named_with_a_way_out(deployed: LocalHarness) -> None:
    """Non-UTF-8 bytes in .mlops/endpoints/staging.json: before, UnicodeDecodeError tracebacks
    from status, local ps and deploy."""
    routes = deployed.backend.state.home / "endpoints" / "staging.json"
    routes.write_bytes(b'{"env": "staging", "url": "\xff\xfe"}')

    status = cli(deployed, "status")
    assert_one_line_error(status, "staging.json", "corrupt local state", "local reset")
    ps = cli(deployed, "local", "ps")
    assert ps.returncode == 0, ps.stderr
    assert "staging.json: unreadable" in ps.stdout
    deploy = cli(deployed, "deploy", "--env", "staging")
    assert_one_line_error(deploy, "staging.json", "corrupt local state", "local reset")


def test_mlops_as_a_file_is_named_and_local_reset_repairs_it(deployed: LocalHarness) -> None:
    """.mlops a regular file: before, FileExistsError from status and NotADirectoryError from
    `local reset --yes`, the command meant to repair it."""
    home = deployed.backend.state.home
    cli(deployed, "local", "down")
    shutil.rmtree(home)
    home.write_text("not a folder\n")

    status = cli(deployed, "status")
    assert "Traceback" not in status.stderr, status.stderr
    assert status.returncode != 0
    assert ".mlops" in status.stderr and "local reset" in status.stderr

    reset = cli(deployed, "local", "reset", "--yes")
    assert reset.returncode == 0, reset.stderr
    assert not home.exists()
    assert cli(deployed, "status").returncode in (0, 3)


def test_sigterm_of_deploy_says_what_serves(deployed: LocalHarness) -> None:
    """Ctrl-C or SIGTERM of `deploy` exited 130 with no line saying what state it left
    (issue 29, point 6)."""
    import json
    import signal
    import time

    from process_guard import patient

    broken = deployed.seed_version(serve="unhealthy")  # never answers /ping: deploy waits
    path = deployed.project.manifest_path("staging")
    manifest = json.loads(path.read_text())
    manifest["model_version"] = broken.version
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    sha = deployed.commit("Merge pull request #2 from propose/staging-v2")
    env = {**os.environ, "PYTHONPATH": str(TEMPLATE_DIR), "CI_SCRIPTS_LOCAL_HEALTH_TIMEOUT": "300"}
    command = [sys.executable, "-m", "ci_scripts", "--backend", "local"]
    cli = subprocess.Popen(
        [*command, "deploy", "--env", "staging", "--commit", sha],
        cwd=deployed.project.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pids = deployed.backend.state.home / "pids"
    try:
        deadline = time.monotonic() + patient(60)
        while not list(pids.glob("staging-server-v2-*.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(pids.glob("staging-server-v2-*.json")), "the new server never started"
        cli.send_signal(signal.SIGTERM)
        _, stderr = cli.communicate(timeout=patient(30))
    finally:
        cli.kill()

    assert cli.returncode == 130, stderr
    assert "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines()[-1] == (
        "error: endpoint churn-model-staging: deploy interrupted by SIGTERM; "
        "version 1 keeps serving; version 2 was stopped"
    )
    state = deployed.backend.describe_endpoint("staging")
    assert (state.status, state.model_version) == ("InService", 1)
