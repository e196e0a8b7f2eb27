"""The aws shadow test on moto: the requests SageMaker gets, and prod put back on interruption.

(The verdicts shared with the local backend are in tests/contract/test_contract_shadow.py.)
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from aws_harness import AwsHarness, aws_harness


def point(harness: AwsHarness, env: str, version: int, shadow: bool = False) -> None:
    path = harness.project.manifest_path(env)
    data = json.loads(path.read_text())
    data["model_version"] = version
    if shadow:
        data["deployment"]["shadow"] = {"enabled": True, "min_requests": 20}
    path.write_text(json.dumps(data, indent=2) + "\n")


def deploy(harness: AwsHarness, env: str):
    return harness.cli("deploy", "--env", env, "--commit", "f00dcafe", "--pr", "7")


def prod_on_v1_with_v2_in_staging(harness: AwsHarness) -> tuple[str, int]:
    first = harness.seed_version()
    for env in ("staging", "prod"):
        point(harness, env, first.version, shadow=env == "prod")
        assert deploy(harness, env).exit_code == 0
    live = harness.moto_sagemaker.endpoints[harness.project.endpoint_name("prod")]
    second = harness.seed_shadow_candidate("agrees")
    point(harness, "staging", second.version)
    assert deploy(harness, "staging").exit_code == 0
    point(harness, "prod", second.version, shadow=True)
    harness.update_requests.clear()
    return live.endpoint_config_name, second.version


def test_sigterm_puts_prod_back_then_the_shadow_config_names_the_candidate_beside_live(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cancelled job (GitHub sends SIGINT, then SIGTERM) mid-window: the deploy's SIGTERM
    becomes the KeyboardInterrupt Ctrl-C raises, so the same restore runs."""
    with aws_harness(tmp_path, monkeypatch) as harness:
        live_config, version = prod_on_v1_with_v2_in_staging(harness)
        window = harness.backend.shadow_wait
        ignored: list[int] = []
        # Were SIGTERM not turned into an interrupt, this handler would swallow it and the
        # deploy would go on to switch prod (instead of the test process dying).
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: ignored.append(signum))

        def terminated(seconds: float) -> None:
            signal.raise_signal(signal.SIGTERM)

        harness.backend.shadow_wait = terminated
        try:
            result = deploy(harness, "prod")
        finally:
            signal.signal(signal.SIGTERM, previous)

        assert result.exit_code == 130 and not ignored, result.output
        assert result.stderr.splitlines() == [
            f"error: deploy prod interrupted by SIGTERM during the shadow test of version "
            f"{version}: prod serves what it served before (the shadow test takes itself down "
            f"when interrupted); version {version} is not deployed - rerun deploy to test it again"
        ]
        endpoint = harness.moto_sagemaker.endpoints[harness.project.endpoint_name("prod")]
        assert endpoint.endpoint_config_name == live_config
        assert [r["EndpointConfigName"] for r in harness.update_requests][-1] == live_config
        assert not [c for c in harness.moto_sagemaker.endpoint_configs if "-shadow-" in c]
        state = harness.backend.describe_endpoint("prod")
        assert state.model_version != version and state.status == "InService"

        # Run again, uninterrupted: the requests SageMaker gets.
        harness.backend.shadow_wait = window
        harness.update_requests.clear()
        result = deploy(harness, "prod")

        assert result.exit_code == 0, result.output
        shadow_config, back, final = (r["EndpointConfigName"] for r in harness.update_requests)
        assert "-shadow-v" in shadow_config and back == live_config
        assert final.startswith(f"churn-model-prod-v{version}-")
        (variant,) = harness.shadow_variants[shadow_config]
        live = harness.moto_sagemaker.endpoint_configs[live_config].production_variants[0]
        assert variant["VariantName"] == "Shadow"
        assert variant["ModelName"] == final  # the model the deploy then reuses
        assert variant["InstanceType"] == live["InstanceType"]
        assert shadow_config not in harness.moto_sagemaker.endpoint_configs  # deleted after
        assert "cloudwatch:GetMetricData" in harness.calls


def test_a_monitor_that_cannot_be_built_stops_prod_before_the_shadow_changes_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deploy's checks come before its first change, and the shadow test is one."""
    with aws_harness(tmp_path, monkeypatch) as harness:
        _, version = prod_on_v1_with_v2_in_staging(harness)
        harness.attach_monitor_reports(version)  # a version the monitor follows
        monitoring = harness.project.root / "pipelines" / "monitoring.py"
        monitoring.write_text("def definition(settings):\n    raise KeyError('x')\n")

        result = deploy(harness, "prod")

        assert result.exit_code == 1
        assert "pipelines/monitoring.py" in result.stderr, result.output
        assert harness.update_requests == []  # the shadow never touched prod
        assert not [c for c in harness.moto_sagemaker.endpoint_configs if "-shadow-" in c]
