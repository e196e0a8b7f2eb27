"""Shadow tests before prod switches (deployment.shadow): the same rules on every backend.

prod serves v1; v2 is healthy in staging; the prod deploy of v2 first runs it as a shadow of
prod's traffic (aws: a SageMaker shadow variant on moto, the window's metrics and captures as
SageMaker writes them; local: the router mirrors real requests to v2's real server) and judges
it. A pass deploys v2 and records the result; a failure stops the rollout naming the limit
broken, and prod keeps serving v1 on the config it ran before.
"""

from __future__ import annotations

import json

from gitops_testkit import BackendHarness


def point(harness: BackendHarness, env: str, version: int, **shadow: object) -> None:
    path = harness.project.manifest_path(env)
    data = json.loads(path.read_text())
    data["model_version"] = version
    if shadow:
        data.setdefault("deployment", {})["shadow"] = {"enabled": True, **shadow}
    path.write_text(json.dumps(data, indent=2) + "\n")


def deploy(harness: BackendHarness, env: str):
    return harness.cli("deploy", "--env", env, "--commit", "abc1234def")


def prod_serves_v1_and_v2_waits(harness: BackendHarness, behaviour: str, **shadow: object):
    shadow = {"min_requests": 20, **shadow}
    first = harness.seed_version()
    point(harness, "staging", first.version)
    assert deploy(harness, "staging").exit_code == 0
    point(harness, "prod", first.version, **shadow)
    result = deploy(harness, "prod")
    assert result.exit_code == 0, result.output
    assert "shadow test skipped: nothing serves prod yet" in result.stdout
    second = harness.seed_shadow_candidate(behaviour)  # type: ignore[attr-defined]
    point(harness, "staging", second.version)
    assert deploy(harness, "staging").exit_code == 0
    point(harness, "prod", second.version, **shadow)
    return first, second


def test_too_little_evidence_stops_then_a_passing_shadow_deploys_and_is_recorded(
    backend: BackendHarness, monkeypatch
) -> None:
    monkeypatch.setenv("CI_SCRIPTS_LOCAL_SHADOW_SECONDS", "0.05")  # local: a short window
    first, second = prod_serves_v1_and_v2_waits(backend, "agrees", min_requests=100000)

    too_few = deploy(backend, "prod")

    assert too_few.exit_code == 1, too_few.output
    assert "deployment.shadow.min_requests" in too_few.stderr
    assert backend.backend.describe_endpoint("prod").model_version == first.version
    # The same candidate with a policy it can meet passes, deploys and is recorded.
    monkeypatch.setenv("CI_SCRIPTS_LOCAL_SHADOW_SECONDS", "0.3")
    point(backend, "prod", second.version, min_requests=20)

    result = deploy(backend, "prod")

    assert result.exit_code == 0, result.output
    assert f"version {second.version} shadows version {first.version}" in result.stdout
    assert "| agreement with live | >= 95.0%" in result.stdout
    assert f"shadow test of version {second.version} against live version" in result.stdout
    state = backend.backend.describe_endpoint("prod")
    assert state.model_version == second.version and state.status == "InService"
    assert state.config["shadow"].startswith("passed ")
    assert f"v{second.version} vs v{first.version}" in state.config["shadow"]
    status = backend.cli("status", "--format", "json")
    rows = {r["environment"]: r for r in json.loads(status.stdout)["environments"]}
    assert rows["prod"]["last_shadow"].startswith("passed")
    _assert_no_shadow_left(backend)


def test_disagreeing_shadow_stops_the_rollout_naming_the_limit(backend: BackendHarness) -> None:
    first, second = prod_serves_v1_and_v2_waits(backend, "disagrees")

    result = deploy(backend, "prod")

    assert result.exit_code == 1, result.output
    error = result.stderr.strip()
    assert len(error.splitlines()) == 1
    assert error.startswith("error: deploy/prod.json: $.deployment.shadow: shadow test of version")
    assert f"shadow test of version {second.version}" in error
    assert "deployment.shadow.limits.min_agreement" in error
    assert f"version {first.version} keeps serving" in error
    state = backend.backend.describe_endpoint("prod")
    assert state.model_version == first.version and state.status == "InService"
    assert state.config["shadow"].startswith("failed ")
    assert "broke=min_agreement" in state.config["shadow"]
    _assert_no_shadow_left(backend)


def _assert_no_shadow_left(harness: BackendHarness) -> None:
    """The endpoint runs no shadow any more: aws, no config with a shadow variant (and the
    shadow config is deleted); local, no shadow target in the routes and no candidate server."""
    if harness.name == "aws":
        name = harness.project.endpoint_name("prod")
        endpoint = harness.moto_sagemaker.endpoints[name]  # type: ignore[attr-defined]
        assert not harness.shadow_variants.get(endpoint.endpoint_config_name)  # type: ignore[attr-defined]
        assert any("-shadow-" in c for c in harness.shadow_configs_seen)  # type: ignore[attr-defined]
        configs = harness.moto_sagemaker.endpoint_configs  # type: ignore[attr-defined]
        assert not [c for c in configs if "-shadow-" in c]
    else:
        routes = json.loads(harness.backend.state.endpoint_file("prod").read_text())  # type: ignore[attr-defined]
        assert "shadow" not in routes
        from ci_scripts.backends.local import processes as procs

        servers = [
            r
            for r in procs.records(harness.backend.state)  # type: ignore[attr-defined]
            if r.get("role") == "server" and r.get("env") == "prod" and procs.alive(r)
        ]
        assert len(servers) == 1, servers
