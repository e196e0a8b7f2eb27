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
