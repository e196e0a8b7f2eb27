"""Local canary: a share of traffic on the new version, rolled back on 5xx, latency or health."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from local_testkit import MANIFEST, running_pids

from ci_scripts.backends.local.backend import LocalBackend
from ci_scripts.backends.local.endpoints import _request
from ci_scripts.backends.local.router import Routes
from ci_scripts.errors import CIError


def operations(backend: LocalBackend, since: int) -> list[str]:
    return [e["operation"] for e in backend.state.journal_entries()[since:]]


def test_router_splits_by_weight_deterministically(tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    targets = [
        {"url": "http://127.0.0.1:1", "variant": "version-1", "weight": 90},
        {"url": "http://127.0.0.1:2", "variant": "version-2", "weight": 10},
    ]
    path.write_text(json.dumps({"targets": targets}))
    routes = Routes(path)

    picked = [routes.pick()["variant"] for _ in range(100)]

    assert picked.count("version-2") == 10
    assert "version-2" in picked[:10]  # the canary gets traffic from the start


FLEET_OF_TWO = {**MANIFEST, "endpoint": {**MANIFEST["endpoint"], "initial_instance_count": 2}}


def test_failing_canary_is_rolled_back_and_the_old_version_keeps_serving(
    backend: LocalBackend, registered
) -> None:
    good, broken = registered(), registered(Serve="errors")
    backend.deploy("staging", FLEET_OF_TWO, good)
    serving = backend.describe_endpoint("staging").config["targets"][0]["pid"]
    since = len(backend.state.journal_entries())

    with pytest.raises(CIError) as caught:
        backend.deploy("staging", FLEET_OF_TWO, broken)

    message = str(caught.value)
    # 10 % of two instances rounds up to one instance: half the fleet, the most a canary may be.
    assert message.startswith(
        f"endpoint churn-model-staging: rollout of version {broken.version} rolled back (canary "
        "of 1 of 2 instances (50% of traffic, deployment.canary_percent 10)"
    )
    assert "answered 5xx (deployment.alarms.max_5xx_errors is 1)" in message
    assert message.endswith("version 1 keeps serving")
    assert operations(backend, since)[-3:] == ["StartCanary", "RollbackCanary", "StopProcess"]
    state = backend.describe_endpoint("staging")
    assert state.status == "InService" and state.model_version == good.version
    assert [t["pid"] for t in state.config["targets"]] == [serving]
    assert len(running_pids(backend)) == 2  # router + the good server
    assert backend.invoke("staging", b"1,2\n")[0] == 200


def test_one_instance_fleet_shifts_all_at_once_and_bakes_behind_the_same_checks(
    backend: LocalBackend, registered
) -> None:
    good, broken = registered(), registered(Serve="errors")
    backend.deploy("staging", MANIFEST, good)  # no initial_instance_count: one instance

    with pytest.raises(CIError) as caught:
        backend.deploy("staging", MANIFEST, broken)

    message = str(caught.value)
    assert "rolled back (all at once behind alarms: 1 instance)" in message
    assert message.endswith("version 1 keeps serving")
    state = backend.describe_endpoint("staging")
    assert state.model_version == good.version
    status = json.loads(_request(state.url, "GET", "/__router__/status")[1])
    assert status["stats"]["version-2"]["requests"] > 0  # it took the traffic while baking
    assert status["stats"].get("version-1", {}).get("requests", 0) == 0


def test_slow_canary_is_rolled_back_on_latency(backend: LocalBackend, registered) -> None:
    good, slow = registered(), registered(Serve="slow")
    manifest = {**MANIFEST, "deployment": {"alarms": {"max_model_latency_ms": 20}}}
    backend.deploy("staging", manifest, good)

    with pytest.raises(CIError, match=r"average latency of version 2 was \d+ ms"):
        backend.deploy("staging", manifest, slow)

    assert backend.describe_endpoint("staging").model_version == good.version


def test_healthy_canary_gets_its_share_then_takes_all_traffic(
    backend: LocalBackend, registered
) -> None:
    v1, v2 = registered(), registered()
    manifest = {
        **MANIFEST,
        "endpoint": {**MANIFEST["endpoint"], "initial_instance_count": 4},
        "deployment": {"canary_percent": 25},
    }
    backend.deploy("staging", manifest, v1)
    since = len(backend.state.journal_entries())

    state = backend.deploy("staging", manifest, v2)

    assert state.config["rollout"].startswith("canary of 1 of 4 instances (25% of traffic")
    assert state.model_version == v2.version and state.config["previous_version"] == v1.version
    ops = operations(backend, since)
    assert ops.index("StartCanary") < ops.index("UpdateEndpoint")
    assert "RollbackCanary" not in ops
    status = json.loads(_request(state.url, "GET", "/__router__/status")[1])
    stats = status["stats"]
    share = stats["version-2"]["requests"] / (
        stats["version-1"]["requests"] + stats["version-2"]["requests"]
    )
    assert 0.2 <= share <= 0.3  # 25 % of the canary's probe traffic
    assert stats["version-2"]["errors_5xx"] == 0
    # Probes are not captured: monitoring sees only real traffic.
    assert not list(backend.state.capture_dir("staging").rglob("*.jsonl"))


def test_canary_wait_zero_switches_at_once(backend: LocalBackend, registered) -> None:
    good, broken = registered(), registered(Serve="errors")
    manifest = {**MANIFEST, "deployment": {"canary_wait_seconds": 0}}
    backend.deploy("staging", manifest, good)
    since = len(backend.state.journal_entries())

    state = backend.deploy("staging", manifest, broken)  # nobody watches: it goes live

    assert state.model_version == broken.version
    assert "StartCanary" not in operations(backend, since)
    assert state.config["rollout"] == (
        "all at once behind alarms: 1 instance (no bake: canary_wait_seconds is 0)"
    )


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_interrupted_canary_puts_the_routes_back_to_the_old_version(
    backend: LocalBackend, registered, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    import os
    import signal
    import time

    from ci_scripts.backends.local import canary as local_canary

    v1, v2 = registered(), registered()
    backend.deploy("staging", MANIFEST, v1)
    serving = backend.describe_endpoint("staging").config["targets"][0]["pid"]

    def interrupted(*args, **kwargs):
        if how == "ctrl-c":
            raise KeyboardInterrupt
        os.kill(os.getpid(), signal.SIGTERM)  # what a cancelled CI job or `kill` sends
        time.sleep(10)
        raise AssertionError("SIGTERM did not interrupt the deploy")

    monkeypatch.setattr(local_canary, "watch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        backend.deploy("staging", MANIFEST, v2)

    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler was put back
    state = backend.describe_endpoint("staging")
    assert state.status == "InService", state.failure_reason
    assert state.model_version == v1.version
    assert [(t["version"], t["weight"], t["pid"]) for t in state.config["targets"]] == [
        (v1.version, 100, serving)
    ]
    assert all(backend.invoke("staging", b"1,2\n")[0] == 200 for _ in range(20))
    assert len(running_pids(backend)) == 2  # router + the old server; the canary's is gone
