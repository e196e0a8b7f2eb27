"""aws deploy guardrails on moto: canary policy, rollback alarms, tags, autoscaling around
updates, idempotence, throttling. UpdateEndpoint is the one moto gap here (answered by the
harness's before-call hook, see tests/contract/aws_harness.py); everything else is moto."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_harness import AwsHarness, admin_client, aws_harness, record_retry_waits
from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import MockRawResponse

ENDPOINT = "churn-model-staging"
ALARMS = [f"{ENDPOINT}-5xx-errors", f"{ENDPOINT}-model-latency"]


def edit_manifest(harness: AwsHarness, **changes: Any) -> None:
    path = harness.project.manifest_path("staging")
    data = json.loads(path.read_text())
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            data.setdefault(section, {})[field] = value
        else:
            data[key] = value
    path.write_text(json.dumps(data, indent=2) + "\n")


def deploy(harness: AwsHarness, commit: str = "c0ffee01", pr: str = "7"):
    return harness.cli("deploy", "--env", "staging", "--commit", commit, "--pr", pr)


def tags(service: str, arn: str) -> dict[str, str]:
    client = admin_client(service)
    if service == "cloudwatch":
        found = client.list_tags_for_resource(ResourceARN=arn)["Tags"]
    else:
        found = client.list_tags(ResourceArn=arn)["Tags"]
    return {t["Key"].split(":", 1)[1]: t["Value"] for t in found}


def record_params(harness: AwsHarness, service: str, operation: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    def keep(params: dict[str, Any], **_: Any) -> None:
        seen.append(params)

    harness.backend.clients(service).meta.events.register(
        f"provide-client-params.{service}.{operation}", keep
    )
    return seen


def test_alarms_from_manifest_and_tags_on_every_resource(aws: AwsHarness) -> None:
    first, second = aws.seed_version(), aws.seed_version()
    edit_manifest(aws, deployment__alarms={"max_5xx_errors": 3, "max_model_latency_ms": 250})
    registrations = record_params(aws, "application-autoscaling", "RegisterScalableTarget")
    edit_manifest(aws, model_version=first.version)
    assert deploy(aws, commit="aaaa1111", pr="1").exit_code == 0
    edit_manifest(aws, model_version=second.version)

    result = deploy(aws, commit="bbbb2222", pr="2")

    assert result.exit_code == 0, result.output
    cloudwatch = admin_client("cloudwatch")
    alarms = cloudwatch.describe_alarms(AlarmNames=ALARMS)["MetricAlarms"]
    assert {a["AlarmName"]: (a["MetricName"], a["Threshold"]) for a in alarms} == {
        ALARMS[0]: ("Invocation5XXErrors", 3.0),
        ALARMS[1]: ("ModelLatency", 250_000.0),
    }
    for alarm in alarms:
        assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {
            "EndpointName": ENDPOINT,
            "VariantName": "AllTraffic",
        }
        alarm_tags = tags("cloudwatch", alarm["AlarmArn"])
        assert alarm_tags["project"] == "churn-model" and alarm_tags["environment"] == "staging"
        assert alarm_tags["model-version"] == str(second.version)  # retagged on update
        assert alarm_tags["git-commit"] == "bbbb2222"
    endpoint = admin_client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)
    endpoint_tags = tags("sagemaker", endpoint["EndpointArn"])
    assert endpoint_tags["model-version"] == str(second.version)
    assert endpoint_tags["git-commit"] == "bbbb2222" and endpoint_tags["pull-request"] == "2"
    assert endpoint_tags["previous-model-version"] == str(first.version)
    assert aws.backend.describe_endpoint("staging").config["previous_version"] == first.version
    # moto stores scalable target tags but cannot list them: check what was sent.
    assert registrations and registrations[0]["Tags"]["sagemaker-gitops:environment"] == "staging"
    assert registrations[0]["Tags"]["sagemaker-gitops:model-version"] == str(first.version)


def test_canary_on_a_fleet_with_autoscaling_is_sized_from_the_running_fleet(
    aws: AwsHarness,
) -> None:
    first, second = aws.seed_version(), aws.seed_version()
    # One instance in the manifest: on its own it could not canary.
    edit_manifest(
        aws,
        deployment={"canary_percent": 25, "canary_wait_seconds": 90},
        model_version=first.version,
    )
    assert deploy(aws).exit_code == 0
    # Autoscaling grew the fleet to 4; the update retains it (RetainAllVariantProperties).
    variant = aws.moto_sagemaker.endpoints[ENDPOINT].production_variants[0]
    variant["CurrentInstanceCount"] = variant["DesiredInstanceCount"] = 4
    edit_manifest(aws, model_version=second.version)

    result = deploy(aws)

    assert result.exit_code == 0, result.output
    (request,) = aws.update_requests
    policy = request["DeploymentConfig"]
    assert policy["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == {
        "Type": "CANARY",
        "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1},  # 25 % of the 4 running
        "WaitIntervalInSeconds": 90,
    }
    assert policy["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": n} for n in ALARMS]}
    # A model-only change keeps autoscaling registered: the new fleet starts at the scaled size.
    assert request["RetainAllVariantProperties"] is True
    assert request["ExcludeRetainedVariantProperties"] == [
        {"VariantPropertyType": "DataCaptureConfig"}
    ]
    assert "staging: rollout: canary of 1 of 4 instances (25% of traffic" in result.output


def test_without_autoscaling_the_canary_is_sized_from_the_manifest(aws: AwsHarness) -> None:
    first, second = aws.seed_version(), aws.seed_version()
    path = aws.project.manifest_path("staging")
    data = json.loads(path.read_text())
    data["endpoint"].pop("autoscaling")
    data["endpoint"]["initial_instance_count"] = 2
    data["model_version"] = first.version
    path.write_text(json.dumps(data))
    assert deploy(aws).exit_code == 0
    edit_manifest(aws, model_version=second.version)

    result = deploy(aws)

    assert result.exit_code == 0, result.output
    (request,) = aws.update_requests
    routing = request["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    # 10 % of 2 rounds up to one instance: half the fleet, the most SageMaker allows.
    assert routing["CanarySize"] == {"Type": "INSTANCE_COUNT", "Value": 1}
    assert "RetainAllVariantProperties" not in request


def test_serverless_update_is_all_at_once_behind_the_same_alarms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Serverless endpoints cannot capture data, so nothing to monitor either.
    with aws_harness(tmp_path, monkeypatch, deployment="serverless", monitoring="no") as harness:
        first, second = harness.seed_version(), harness.seed_version()
        edit_manifest(harness, model_version=first.version)
        assert deploy(harness).exit_code == 0
        edit_manifest(harness, model_version=second.version)

        assert deploy(harness).exit_code == 0

        (request,) = harness.update_requests
        routing = request["DeploymentConfig"]["BlueGreenUpdatePolicy"]
        assert routing["TrafficRoutingConfiguration"]["Type"] == "ALL_AT_ONCE"
        alarms = request["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
        assert [a["AlarmName"] for a in alarms] == ALARMS
        found = admin_client("cloudwatch").describe_alarms(AlarmNames=ALARMS)["MetricAlarms"]
        assert len(found) == 2
        assert "RetainAllVariantProperties" not in request  # no autoscaling on serverless


def test_same_manifest_from_another_commit_makes_no_mutating_call(aws: AwsHarness) -> None:
    seeded = aws.seed_version()
    edit_manifest(aws, model_version=seeded.version)
    assert deploy(aws, commit="aaaa1111").exit_code == 0
    aws.reset_mutations()

    result = deploy(aws, commit="bbbb2222", pr="9")

    assert result.exit_code == 0, result.output
    assert aws.mutations() == []
    assert "no change" in result.stdout


def test_alarm_threshold_change_alone_updates_only_that_alarm(aws: AwsHarness) -> None:
    seeded = aws.seed_version()
    edit_manifest(aws, model_version=seeded.version)
    assert deploy(aws).exit_code == 0
    edit_manifest(aws, deployment={"alarms": {"max_5xx_errors": 5}})
    aws.reset_mutations()

    result = deploy(aws)

    assert result.exit_code == 0, result.output
    assert aws.mutations() == ["cloudwatch:PutMetricAlarm"]
    (alarm,) = admin_client("cloudwatch").describe_alarms(AlarmNames=ALARMS[:1])["MetricAlarms"]
    assert alarm["Threshold"] == 5.0


def test_throttled_calls_are_retried_and_the_deploy_succeeds(
    aws: AwsHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Adaptive retries (ci_scripts/backends/aws/session.py): a throttled call is sent again
    after a backoff, and from then on the client paces its calls. The waits are recorded, not
    slept: the pacing alone held the deploy for about 5 s on moto, a core doing nothing."""
    waits = record_retry_waits(monkeypatch)
    seeded = aws.seed_version()
    edit_manifest(aws, model_version=seeded.version)
    throttled: list[str] = []
    sends: list[str] = []

    def throttle_first(request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        sends.append(operation)
        if operation in throttled:
            return None  # the retry: let moto answer
        throttled.append(operation)
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
        return AWSResponse(request.url, 400, {"x-amzn-requestid": "x"}, MockRawResponse(body))

    events = aws.backend.clients("sagemaker").meta.events
    for operation in ("CreateModel", "CreateEndpoint"):
        events.register_first(f"before-send.sagemaker.{operation}", throttle_first)

    result = deploy(aws)

    assert result.exit_code == 0, result.output
    assert sends == ["CreateModel", "CreateModel", "CreateEndpoint", "CreateEndpoint"]
    assert aws.backend.describe_endpoint("staging").model_version == seeded.version
    assert len(waits.backoffs) == 2 and all(delay > 0 for delay in waits.backoffs)  # 1/throttle
    assert waits.paced  # the throttle turned the client's rate limiter on


@pytest.mark.parametrize("busy", ["Creating", "Updating", "RollingBack"])
def test_deploy_refuses_a_busy_endpoint_before_any_change(aws: AwsHarness, busy: str) -> None:
    first, second = aws.seed_version(), aws.seed_version()
    edit_manifest(aws, model_version=first.version)
    assert deploy(aws).exit_code == 0
    aws.set_endpoint_status("staging", busy)
    edit_manifest(aws, model_version=second.version)
    aws.reset_mutations()

    result = deploy(aws)

    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: endpoint {ENDPOINT}: status is {busy}; another deployment of staging is in "
        "progress, run again when it has finished"
    )
    assert aws.mutations() == []


def test_alarms_are_read_once_per_command_with_the_names_announced_once(aws: AwsHarness) -> None:
    """A deploy announces the monitor's alarms so the rollback alarms' DescribeAlarms reads them
    too (#27: one call, not two); the announcement is used once (a leak into the next command
    asked another environment's alarms, which its role may not read), and a write makes the
    next ask read again."""
    asked: list[list[str]] = []
    aws.session.events.register(
        "before-parameter-build.cloudwatch.DescribeAlarms",
        lambda params, **_: asked.append(list(params["AlarmNames"])),
    )
    clients = aws.backend.clients
    clients.expect_alarms(["p-staging-monitor-drift"])

    assert clients.describe_alarms(["p-staging-5xx"]) == {}
    assert clients.describe_alarms(["p-staging-monitor-drift"]) == {}
    assert asked == [["p-staging-5xx", "p-staging-monitor-drift"]]

    clients("cloudwatch").put_metric_alarm(
        AlarmName="p-prod-5xx",
        MetricName="Invocation5XXErrors",
        Namespace="AWS/SageMaker",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanThreshold",
    )
    found = clients.describe_alarms(["p-prod-5xx"])
    assert list(found) == ["p-prod-5xx"]
    assert asked[1:] == [["p-prod-5xx"]]  # the announcement is not asked again
