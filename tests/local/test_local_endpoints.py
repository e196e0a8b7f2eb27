"""Local endpoints: blue/green deploys behind a stable router URL, failures, idempotence, down."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from local_testkit import MANIFEST, pid_alive, running_pids

from ci_scripts.backends.local.backend import LocalBackend
from ci_scripts.errors import CIError


def server_pid(backend: LocalBackend, env: str = "staging") -> int:
    state = backend.describe_endpoint(env)
    return state.config["targets"][0]["pid"]


def test_deploy_invoke_capture_and_blue_green_switch(backend: LocalBackend, registered) -> None:
    v1, v2 = registered(), registered(Auc="0.96")

    first = backend.deploy("staging", MANIFEST, v1)
    assert first.status == "InService" and first.model_version == 1
    assert first.url.startswith("http://127.0.0.1:")
    status, body = backend.invoke("staging", b"0.5,2.0\n0.1,3.5\n")
    assert status == 200 and len(json.loads(body)["predictions"]) == 2
    old_pid = server_pid(backend)

    second = backend.deploy("staging", MANIFEST, v2)

    assert second.status == "InService" and second.model_version == 2
    assert second.url == first.url  # the endpoint's address outlives versions
    assert server_pid(backend) != old_pid and not pid_alive(old_pid)
    assert backend.invoke("staging", b"0.5,2.0\n")[0] == 200
    # Every invocation was captured, per variant, in SageMaker's data capture format.
    lines = [
        json.loads(line)
        for path in sorted(backend.state.capture_dir("staging").rglob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    assert len(lines) == 2
    assert lines[0]["captureData"]["endpointInput"] == {
        "observedContentType": "text/csv",
        "mode": "INPUT",
        "data": "0.5,2.0\n0.1,3.5\n",
        "encoding": "CSV",
    }
    assert lines[0]["captureData"]["endpointOutput"]["encoding"] == "JSON"
    variants = {
        p.relative_to(backend.state.capture_dir("staging")).parts[0]
        for p in backend.state.capture_dir("staging").rglob("*.jsonl")
    }
    assert variants == {"version-1", "version-2"}


def test_a_request_still_on_the_old_server_is_answered_before_it_stops(
    backend: LocalBackend, registered
) -> None:
    """The switch stops the old server only once the router has its answers to what it sent
    there (a fixed pause would cut a request slower than the pause)."""
    lingering, v2 = registered(Serve="lingers"), registered()
    backend.deploy("staging", MANIFEST, lingering)
    serving = backend.describe_endpoint("staging")
    old_url, router_status = serving.config["targets"][0]["url"], serving.url + "/__router__/status"
    old_pid = server_pid(backend)
    answers: list[tuple[int, bytes]] = []
    request = threading.Thread(target=lambda: answers.append(backend.invoke("staging", b"1,2\n")))
    request.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the request has reached the old server
            with urllib.request.urlopen(router_status, timeout=5) as response:
                if old_url in json.loads(response.read())["in_flight"]:
                    break
            time.sleep(0.01)
        else:
            pytest.fail("the request never reached the old server")

        assert backend.deploy("staging", MANIFEST, v2).model_version == 2
        assert not pid_alive(old_pid)  # deploy stopped the old server ...
    finally:
        request.join(30)
    # ... after its answer: a request cut by the stop gets the router's 502. (Not "the caller
    # had it before deploy returned": the router relays the answer after it stops counting the
    # request, so on a loaded machine the caller's thread can still be reading it.)
    assert not request.is_alive()
    assert answers and answers[0][0] == 200, answers


def test_redeploying_what_runs_is_a_no_op(backend: LocalBackend, registered) -> None:
    v1 = registered()
    first = backend.deploy("staging", MANIFEST, v1)
    pids = running_pids(backend)
    journal = len(backend.state.journal_entries())

    again = backend.deploy("staging", {**MANIFEST, "_source": {"commit": "other"}}, v1)

    assert again == first
    assert running_pids(backend) == pids
    assert len(backend.state.journal_entries()) == journal  # nothing changed


@pytest.mark.parametrize("failure", ["crash", "unhealthy"])
def test_unhealthy_new_version_keeps_the_old_one_serving(
    backend: LocalBackend, registered, failure: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backend.endpoints, "health_timeout", 1.5)
    good, broken = registered(), registered(Serve=failure)
    backend.deploy("staging", MANIFEST, good)
    serving = server_pid(backend)

    with pytest.raises(CIError) as caught:
        backend.deploy("staging", MANIFEST, broken)

    message = str(caught.value)
    assert message.startswith(f"endpoint churn-model-staging: version {broken.version} failed")
    assert "version 1 keeps serving" in message
    assert ("server exited" in message) if failure == "crash" else ("/ping answered 500" in message)
    state = backend.describe_endpoint("staging")
    assert state.status == "InService" and state.model_version == good.version
    assert server_pid(backend) == serving
    assert backend.invoke("staging", b"1,2\n")[0] == 200
    assert len(running_pids(backend)) == 2  # router + the old server; the broken one is gone


def test_describe_reports_a_dead_server_and_down_stops_everything(
    backend: LocalBackend, registered
) -> None:
    v1 = registered()
    assert backend.describe_endpoint("staging") is None
    backend.deploy("staging", MANIFEST, v1)
    backend.deploy("prod", {**MANIFEST, "environment": "prod"}, v1)
    pids = running_pids(backend)
    assert len(pids) == 4  # a router and a server per environment

    subprocess.run(["kill", str(server_pid(backend, "prod"))], check=True)
    # While the server shuts down its socket is closed but the process still exits (the endpoint
    # is then Failed on /ping); wait until the process is gone.
    deadline = time.monotonic() + 10
    while (
        "is not running" not in backend.describe_endpoint("prod").failure_reason
        and time.monotonic() < deadline
    ):
        time.sleep(0.02)
    state = backend.describe_endpoint("prod")
    assert state.status == "Failed", state
    assert "model server of version 1 is not running" in state.failure_reason, state

    # `ci_scripts local down` in another process sees the same world and stops it all.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ci_scripts",
            "--project-dir",
            str(backend.project.root),
            "local",
            "down",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "process(es) stopped" in done.stdout
    assert not any(pid_alive(pid) for pid in pids)
    assert backend.describe_endpoint("staging") is None
    with pytest.raises(CIError, match="churn-model-staging: not deployed locally"):
        backend.invoke("staging", b"1,2\n")


def test_endpoint_survives_the_cli_call_that_deployed_it(backend: LocalBackend, registered) -> None:
    """Deploy from another process (as the CLI does): the endpoint serves after it exits."""
    v1 = registered()
    script = (
        "import json,sys\n"
        "from ci_scripts.project import ProjectConfig\n"
        "from ci_scripts.backends.local.backend import LocalBackend\n"
        "b = LocalBackend(ProjectConfig.load(sys.argv[1]))\n"
        "v = b.get_version('churn-model', 1)\n"
        "print(b.deploy('staging', json.loads(sys.argv[2]), v).url)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(backend.project.root), json.dumps(MANIFEST)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    state = backend.describe_endpoint("staging")
    assert state.status == "InService" and state.url == done.stdout.strip()
    assert backend.invoke("staging", b"1,2\n")[0] == 200
    assert v1.version == 1


def test_a_port_taken_before_the_server_binds_it_is_retried(
    backend: LocalBackend, registered, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ci_scripts.backends.local import processes as local_processes

    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    ports = iter([taken])
    real = local_processes.free_port
    monkeypatch.setattr(local_processes, "free_port", lambda: next(ports, None) or real())
    try:
        state = backend.deploy("staging", MANIFEST, registered())
    finally:
        squatter.close()
    assert state.status == "InService"
    assert state.config["targets"][0]["url"] != f"http://127.0.0.1:{taken}"


def test_a_taken_router_port_moves_the_url_and_says_so_in_one_line(
    backend: LocalBackend, registered, caplog: pytest.LogCaptureFixture
) -> None:
    from ci_scripts.backends.local import processes as local_processes

    version = registered()
    old_url = backend.deploy("staging", MANIFEST, version).url
    router = json.loads((backend.state.home / "pids" / "staging-router.json").read_text())
    local_processes.stop(backend.state, router)  # e.g. a reboot; then another program takes it
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", router["port"]))
    squatter.listen()
    try:
        with caplog.at_level("WARNING"):
            new_url = backend.deploy("staging", MANIFEST, version).url
    finally:
        squatter.close()

    assert new_url != old_url
    moved = [r.getMessage() for r in caplog.records if "moved" in r.getMessage()]
    assert moved == [
        f"endpoint churn-model-staging: its address {old_url} is taken by another process; "
        f"it moved to {new_url} (callers of the old URL must change)"
    ]


def test_each_version_serves_the_code_it_was_registered_with(
    backend: LocalBackend, registered, repo: Path
) -> None:
    """A rollback to a good version must not run the working tree's (broken) src/."""
    good = registered()
    main = repo / "src" / "churn_model" / "__main__.py"
    main.write_text(
        main.read_text().replace(
            "def serve(argv: list[str]) -> None:\n",
            "def serve(argv: list[str]) -> None:\n    sys.exit('serve: the broken working tree')\n",
        )
    )

    state = backend.deploy("staging", MANIFEST, good)

    assert state.status == "InService", state.failure_reason
    assert backend.invoke("staging", b"1,2\n")[0] == 200
    broken = registered()  # registered from the edited tree: it serves the edited tree
    with pytest.raises(CIError, match="the broken working tree"):
        backend.deploy("staging", MANIFEST, broken)
    assert backend.describe_endpoint("staging").model_version == good.version
