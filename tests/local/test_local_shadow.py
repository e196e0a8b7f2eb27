"""The local shadow test: the router's mirror, callers' traffic, and Ctrl-C in the window.

(The verdicts shared with the aws backend are in tests/contract/test_contract_shadow.py.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from local_harness import LocalHarness, local_harness

from ci_scripts.backends.local import processes as procs
from ci_scripts.backends.local import shadow as local_shadow


def point(harness: LocalHarness, env: str, version: int) -> None:
    path = harness.project.manifest_path(env)
    data = json.loads(path.read_text())
    data["model_version"] = version
    if env == "prod":
        data["deployment"]["shadow"] = {"enabled": True, "min_requests": 20}
    path.write_text(json.dumps(data, indent=2) + "\n")


def deploy(harness: LocalHarness, env: str):
    return harness.cli("deploy", "--env", env, "--commit", "abc1234def")


def prod_on_v1_with_v2_in_staging(harness: LocalHarness) -> int:
    first = harness.seed_version()
    for env in ("staging", "prod"):
        point(harness, env, first.version)
        assert deploy(harness, env).exit_code == 0
    second = harness.seed_version()
    point(harness, "staging", second.version)
    assert deploy(harness, "staging").exit_code == 0
    point(harness, "prod", second.version)
    return first.version


def prod_servers(harness: LocalHarness) -> list[dict]:
    return [
        r
        for r in procs.records(harness.backend.state)
        if r.get("role") == "server" and r.get("env") == "prod" and procs.alive(r)
    ]


def test_ctrl_c_restores_the_routes_then_callers_requests_are_mirrored_as_theirs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with local_harness(tmp_path, monkeypatch) as harness:
        first = prod_on_v1_with_v2_in_staging(harness)
        drive = local_shadow.drive

        def interrupted(*args, **kwargs):
            routes = json.loads(harness.backend.state.endpoint_file("prod").read_text())
            assert routes["shadow"]["version"] == first + 1  # the mirror was on
            raise KeyboardInterrupt

        monkeypatch.setattr(local_shadow, "drive", interrupted)
        result = deploy(harness, "prod")

        assert result.exit_code != 0
        routes = json.loads(harness.backend.state.endpoint_file("prod").read_text())
        assert "shadow" not in routes and routes["model_version"] == first
        assert [s["version"] for s in prod_servers(harness)] == [first]
        state = harness.backend.describe_endpoint("prod")
        assert state.status == "InService" and state.model_version == first

        # Again, with a caller's requests arriving while the shadow runs.
        def caller_then_drive(router_url, seconds, rows, request, min_requests=0):
            for i in range(3):
                code, _ = harness.backend.invoke("prod", rows[0], inference_id=f"caller-{i}")
                assert code == 200
            return drive(router_url, seconds, rows, request, min_requests)

        monkeypatch.setattr(local_shadow, "drive", caller_then_drive)
        harness.reset_mutations()
        result = deploy(harness, "prod")

        assert result.exit_code == 0, result.output
        # The deploy serves v2 from the server its shadow test ran on: one start, not two.
        entries = harness.backend.state.journal_entries()[harness._seen :]
        started = [e for e in entries if e["operation"] == "StartProcess"]
        assert len(started) == 1, started
        assert "Traffic: 3 requests from callers and " in result.stdout
        log = local_shadow.pairs_file(harness.backend.state, "prod").read_text().splitlines()
        callers = [json.loads(line) for line in log if not json.loads(line)["driven"]]
        assert sorted(c["inference_id"] for c in callers) == ["caller-0", "caller-1", "caller-2"]
        assert all(c["live"]["status"] == c["shadow"]["status"] == 200 for c in callers)
