"""The aws backend's endpoints on moto: what a deploy creates, blue/green updates, failures,
retries. (Rules shared with the local backend are in tests/contract.)"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_harness import AwsHarness, admin_client, aws_harness, record_retry_waits
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber
from moto.core.botocore_stubber import MockRawResponse

from ci_scripts.backends.aws.endpoints import (
    AwsEndpointHost,
    desired_endpoint,
    in_service_waiter,
)
from ci_scripts.backends.aws.guardrails import deployment_config
from ci_scripts.backends.aws.session import AwsClients
from ci_scripts.errors import CIError


def point(harness: AwsHarness, env: str, version: int) -> None:
    path = harness.project.manifest_path(env)
    data = json.loads(path.read_text())
    data["model_version"] = version
    path.write_text(json.dumps(data, indent=2) + "\n")


def deploy(harness: AwsHarness, env: str, version: int, pr: str = "5"):
    point(harness, env, version)
    return harness.cli("deploy", "--env", env, "--commit", "f00dcafe", "--pr", pr)


def tags_of(arn: str) -> dict[str, str]:
    tags = admin_client("sagemaker").list_tags(ResourceArn=arn)["Tags"]
    return {t["Key"].split(":", 1)[1]: t["Value"] for t in tags}


def test_realtime_deploy_creates_tagged_model_config_capture_and_autoscaling(
    aws: AwsHarness,
) -> None:
    seeded = aws.seed_version()
    result = deploy(aws, "staging", seeded.version)
    assert result.exit_code == 0, result.output

    sagemaker = admin_client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName="churn-model-staging")
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    assert config["EndpointConfigName"].startswith(f"churn-model-staging-v{seeded.version}-")
    variant = config["ProductionVariants"][0]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.m5.large", 1)
    capture = config["DataCaptureConfig"]
    assert capture["DestinationS3Uri"] == f"s3://{aws.project.artifact_bucket}/datacapture/staging"
    assert capture["InitialSamplingPercentage"] == 100
    model = sagemaker.describe_model(ModelName=variant["ModelName"])
    assert model["PrimaryContainer"]["ModelPackageName"] == seeded.arn
    tags = tags_of(model["ModelArn"])
    assert tags["model-version"] == str(seeded.version)
    assert tags["git-commit"] == "f00dcafe" and tags["pull-request"] == "5"
    assert tags["environment"] == "staging" and tags["project"] == "churn-model"

    scaling = admin_client("application-autoscaling")
    target = scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert [(t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in target] == [
        ("endpoint/churn-model-staging/variant/AllTraffic", 1, 2)
    ]
    policy = scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"][0]
    assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 100.0


def test_update_is_blue_green_with_rollback_alarms(aws: AwsHarness) -> None:
    first, second = aws.seed_version(), aws.seed_version()
    assert deploy(aws, "staging", first.version).exit_code == 0

    result = deploy(aws, "staging", second.version, pr="6")

    assert result.exit_code == 0, result.output
    (request,) = aws.update_requests
    policy = request["DeploymentConfig"]
    routing = policy["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 300}  # one instance
    assert "staging: rollout: all at once behind alarms: 1 instance" in result.output
    alarms = [a["AlarmName"] for a in policy["AutoRollbackConfiguration"]["Alarms"]]
    assert alarms == ["churn-model-staging-5xx-errors", "churn-model-staging-model-latency"]
    described = admin_client("cloudwatch").describe_alarms(AlarmNames=alarms)["MetricAlarms"]
    assert {a["MetricName"]: a["Threshold"] for a in described} == {
        "Invocation5XXErrors": 1.0,
        "ModelLatency": 500_000.0,  # microseconds
    }
    assert aws.backend.describe_endpoint("staging").model_version == second.version


def test_deployment_config_builder() -> None:
    manifest = {
        "endpoint": {"type": "realtime", "initial_instance_count": 4},
        "deployment": {
            "canary_percent": 25,
            "canary_wait_seconds": 60,
            "termination_wait_seconds": 30,
        },
    }
    config = deployment_config(manifest, ["a"])
    assert config["BlueGreenUpdatePolicy"] == {
        "TrafficRoutingConfiguration": {
            "Type": "CANARY",
            "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1},  # 25 % of 4 instances
            "WaitIntervalInSeconds": 60,
        },
        "TerminationWaitInSeconds": 30,
    }
    assert config["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": "a"}]}
    # The fleet the update really gets wins over the manifest's count (autoscaling kept it).
    routing = deployment_config(manifest, ["a"], running_instances=10)["BlueGreenUpdatePolicy"]
    assert routing["TrafficRoutingConfiguration"]["CanarySize"]["Value"] == 3  # ceil(2.5)
    one = deployment_config(manifest, ["a"], running_instances=1)["BlueGreenUpdatePolicy"]
    assert one["TrafficRoutingConfiguration"]["Type"] == "ALL_AT_ONCE"
    # Serverless: blue/green all at once (no canary), the same alarms roll it back.
    serverless = deployment_config(
        {"endpoint": {"type": "serverless", "initial_instance_count": 4}, "deployment": {}}, ["a"]
    )
    assert serverless["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == {
        "Type": "ALL_AT_ONCE",
        "WaitIntervalInSeconds": 300,
    }
    assert serverless["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": "a"}]}


def test_rolled_back_update_fails_naming_reason(aws: AwsHarness) -> None:
    first, second = aws.seed_version(), aws.seed_version()
    assert deploy(aws, "staging", first.version).exit_code == 0
    aws.rollback_reason = "Alarm churn-model-staging-5xx-errors in ALARM"

    result = deploy(aws, "staging", second.version)

    assert result.exit_code == 1
    assert "update to version 2 was rolled back and it still serves version 1" in result.stderr
    assert "Alarm churn-model-staging-5xx-errors in ALARM" in result.stderr
    assert aws.backend.describe_endpoint("staging").model_version == first.version


def test_failed_endpoint_surfaces_failure_reason(aws: AwsHarness) -> None:
    seeded = aws.seed_version()
    aws.fail_next_endpoint(
        "The primary container for production variant AllTraffic did not pass the ping health "
        "check."
    )

    result = deploy(aws, "staging", seeded.version)

    assert result.exit_code == 1
    line = result.stderr.strip()
    assert line.startswith(
        "error: endpoint churn-model-staging: deploying version 1 failed (status Failed)"
    )
    assert "did not pass the ping health check" in line and "\n" not in line


def wait_in_service_through(aws: AwsHarness, statuses: list[dict[str, str]]) -> str:
    """Run the in-service wait against stubbed DescribeEndpoint answers (moto makes every
    endpoint InService at once and has no update rollbacks); return the CIError it raised.
    ``statuses``: EndpointStatus (+ FailureReason) per poll; the last one also answers the
    describe that names the reason."""
    clients = AwsClients("eu-west-1", aws.session)
    host = AwsEndpointHost(aws.project, clients, waiter_delay=0)
    seeded = aws.seed_version()
    desired = desired_endpoint(aws.project, "staging", {"endpoint": {"type": "serverless"}}, seeded)
    base = {
        "EndpointName": "churn-model-staging",
        "EndpointArn": "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/churn-model-staging",
        "CreationTime": "2025-01-01T00:00:00Z",
        "LastModifiedTime": "2025-01-01T00:00:00Z",
    }
    with Stubber(clients("sagemaker")) as stub:
        for status in [*statuses, statuses[-1]]:
            stub.add_response("describe_endpoint", {**base, **status})
        with pytest.raises(CIError) as raised:
            host._wait_in_service(desired, previous=None)
        stub.assert_no_pending_responses()
    return str(raised.value)


def test_waiter_failure_names_reason_with_stubber(aws: AwsHarness) -> None:
    """The EndpointInService waiter polling Creating -> Failed: DescribeEndpoint x2 for the
    waiter, x1 for the reason (stubbed)."""
    message = wait_in_service_through(
        aws,
        [
            {"EndpointStatus": "Creating"},
            {"EndpointStatus": "Failed", "FailureReason": "Image does not exist"},
        ],
    )
    assert re.search(r"failed \(status Failed\): Image does not exist", message), message


def test_failed_rollback_stops_the_wait_at_once(aws: AwsHarness) -> None:
    """Updating -> UpdateRollbackFailed ends the wait on the first poll that sees it (the stock
    waiter would poll for an hour): DescribeEndpoint x2 for the waiter, x1 for the reason."""
    message = wait_in_service_through(
        aws,
        [
            {"EndpointStatus": "Updating"},
            {
                "EndpointStatus": "UpdateRollbackFailed",
                "FailureReason": "rollback could not restore the old fleet",
            },
        ],
    )
    assert re.search(
        r"failed \(status UpdateRollbackFailed\): rollback could not restore", message
    ), message


def test_each_waiter_adds_its_acceptor_to_its_own_copy_of_the_stock_model() -> None:
    """The stock waiter model is read once per process and copied per waiter: making waiters
    does not pile UpdateRollbackFailed acceptors onto the shared model."""
    import boto3

    sagemaker = boto3.Session(region_name="eu-west-1").client("sagemaker")
    first, second = in_service_waiter(sagemaker), in_service_waiter(sagemaker)
    for waiter in (first, second):
        expected = [a.expected for a in waiter.config.acceptors]
        assert expected.count("UpdateRollbackFailed") == 1, expected
        assert "Failed" in expected


def test_deploy_refused_while_endpoint_updates(aws: AwsHarness) -> None:
    first, second = aws.seed_version(), aws.seed_version()
    assert deploy(aws, "staging", first.version).exit_code == 0
    aws.set_endpoint_status("staging", "Updating")
    aws.reset_mutations()

    result = deploy(aws, "staging", second.version)

    assert result.exit_code == 1
    assert "status is Updating" in result.stderr and "in progress" in result.stderr
    assert aws.mutations() == []
    assert (
        aws.backend.get_version(second.group, second.version).approval_status
        == "PendingManualApproval"
    )


def test_failed_endpoint_is_replaced(aws: AwsHarness) -> None:
    seeded = aws.seed_version()
    assert deploy(aws, "staging", seeded.version).exit_code == 0
    aws.set_endpoint_status("staging", "Failed", "instance retired")
    aws.reset_mutations()

    result = deploy(aws, "staging", seeded.version)

    assert result.exit_code == 0, result.output
    assert "sagemaker:DeleteEndpoint" in aws.mutations()
    assert "sagemaker:CreateEndpoint" in aws.mutations()
    assert aws.backend.describe_endpoint("staging").status == "InService"


def test_throttling_is_retried(aws: AwsHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    waits = record_retry_waits(monkeypatch)
    seeded = aws.seed_version()
    sends: list[str] = []

    def throttle_once(request: Any, **_: Any) -> AWSResponse | None:
        sends.append(request.url)
        if len(sends) > 1:
            return None  # let moto answer
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
        return AWSResponse(request.url, 400, {"x-amzn-requestid": "x"}, MockRawResponse(body))

    events = aws.backend.clients("sagemaker").meta.events
    events.register_first("before-send.sagemaker.DescribeModelPackage", throttle_once)

    found = aws.backend.get_version(seeded.group, seeded.version)

    assert found is not None and found.version == seeded.version
    assert len(sends) == 2  # the throttled attempt and the retry
    assert len(waits.backoffs) == 1 and waits.backoffs[0] > 0  # after a backoff


def test_serverless_endpoint_has_no_capture_or_autoscaling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with aws_harness(tmp_path, monkeypatch, deployment="serverless") as harness:
        seeded = harness.seed_version()
        assert deploy(harness, "staging", seeded.version).exit_code == 0
        sagemaker = admin_client("sagemaker")
        name = sagemaker.describe_endpoint(EndpointName="churn-model-staging")["EndpointConfigName"]
        config = sagemaker.describe_endpoint_config(EndpointConfigName=name)
        assert config["ProductionVariants"][0]["ServerlessConfig"] == {
            "MemorySizeInMB": 2048,
            "MaxConcurrency": 5,
        }
        assert not config.get("DataCaptureConfig")
        scaling = admin_client("application-autoscaling")
        assert (
            scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
        )


def test_model_error_fails_smoke_test_naming_the_check(aws: AwsHarness) -> None:
    seeded = aws.seed_version()
    assert deploy(aws, "staging", seeded.version).exit_code == 0

    def model_error(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        parsed = {
            "Error": {"Code": "ModelError", "Message": "Received client error (400)"},
            "OriginalStatusCode": 400,
            "OriginalMessage": '{"error": "expected 3 features, got 2"}',
            "ResponseMetadata": {"HTTPStatusCode": 424},
        }
        return AWSResponse("https://moto.invalid", 424, {}, None), parsed

    events = aws.backend.clients("sagemaker-runtime").meta.events
    events.register("before-call.sagemaker-runtime.InvokeEndpoint", model_error)

    result = aws.cli("smoke-test", "--env", "staging")

    assert result.exit_code == 1
    assert result.stderr.startswith("error: smoke-test staging: row 1: HTTP 400: ")
    assert "expected 3 features" in result.stderr


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ([{"predictions": []}], "row 1: expected 1 predictions, got 0"),
        (
            [{"predictions": [{"label": 1, "probability": 1.7}]}],
            "prediction 0.probability: 1.7 is greater than the maximum of 1",
        ),
        (["not json"], "row 1: response is not JSON"),
    ],
)
def test_smoke_test_checks_answers(aws: AwsHarness, answers: list[Any], message: str) -> None:
    seeded = aws.seed_version()
    assert deploy(aws, "staging", seeded.version).exit_code == 0
    aws.prepare_invocations("staging", 20, answers=answers)

    result = aws.cli("smoke-test", "--env", "staging")

    assert result.exit_code == 1
    assert result.stderr.startswith("error: smoke-test staging: ")
    assert message in result.stderr


def test_smoke_test_latency_budget(aws: AwsHarness) -> None:
    seeded = aws.seed_version()
    path = aws.project.manifest_path("staging")
    data = json.loads(path.read_text())
    data["smoke_test"] = {"rows": 3, "max_latency_ms": 5}
    path.write_text(json.dumps(data, indent=2) + "\n")
    assert deploy(aws, "staging", seeded.version).exit_code == 0
    aws.prepare_invocations("staging", 3)

    def slow(**_: Any) -> None:
        import time

        time.sleep(0.02)

    aws.backend.clients("sagemaker-runtime").meta.events.register(
        "before-send.sagemaker-runtime.InvokeEndpoint", slow
    )
    result = aws.cli("smoke-test", "--env", "staging")

    assert result.exit_code == 1
    assert "latency p95" in result.stderr and "exceeds 5 ms" in result.stderr
    assert "deploy/staging.json: $.smoke_test.max_latency_ms" in result.stderr


def test_instance_type_change_lifts_autoscaling_around_the_update(aws: AwsHarness) -> None:
    seeded = aws.seed_version()
    assert deploy(aws, "staging", seeded.version).exit_code == 0
    path = aws.project.manifest_path("staging")
    data = json.loads(path.read_text())
    data["endpoint"]["instance_type"] = "ml.c5.xlarge"
    path.write_text(json.dumps(data, indent=2) + "\n")
    aws.reset_mutations()

    result = aws.cli("deploy", "--env", "staging", "--commit", "f00dcafe")

    assert result.exit_code == 0, result.output
    assert aws.mutations() == [
        "sagemaker:CreateModel",
        "sagemaker:CreateEndpointConfig",
        "application-autoscaling:DeleteScalingPolicy",
        "application-autoscaling:DeregisterScalableTarget",
        "sagemaker:UpdateEndpoint",  # the alarms, made at create, already match
        "sagemaker:AddTags",
        "application-autoscaling:RegisterScalableTarget",
        "application-autoscaling:PutScalingPolicy",
    ]
    name = admin_client("sagemaker").describe_endpoint(EndpointName="churn-model-staging")[
        "EndpointConfigName"
    ]
    config = admin_client("sagemaker").describe_endpoint_config(EndpointConfigName=name)
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.c5.xlarge"


def test_autoscaling_change_alone_does_not_redeploy(aws: AwsHarness) -> None:
    seeded = aws.seed_version()
    assert deploy(aws, "staging", seeded.version).exit_code == 0
    path = aws.project.manifest_path("staging")
    data = json.loads(path.read_text())
    data["endpoint"]["autoscaling"]["max_capacity"] = 6
    path.write_text(json.dumps(data, indent=2) + "\n")
    aws.reset_mutations()

    result = aws.cli("deploy", "--env", "staging", "--commit", "f00dcafe")

    assert result.exit_code == 0, result.output
    assert aws.mutations() == [
        "application-autoscaling:RegisterScalableTarget",
        "application-autoscaling:PutScalingPolicy",
    ]


def use_project_key(harness: AwsHarness) -> str:
    """A KMS key made on moto, set as kms_key_arn in the repo's pyproject.toml (its one record)."""
    from ci_scripts.backends.aws.backend import AwsBackend
    from ci_scripts.project import ProjectConfig

    key = admin_client("kms").create_key(Description="project key")["KeyMetadata"]["Arn"]
    path = harness.project.root / "pyproject.toml"
    text = path.read_text()
    assert 'kms_key_arn = ""' in text
    path.write_text(text.replace('kms_key_arn = ""', f'kms_key_arn = "{key}"'))
    harness.project = ProjectConfig.load(harness.project.root)
    harness.backend = AwsBackend(harness.project, session=harness.session, waiter_delay=0)
    return key


def deployed_config(env: str = "staging") -> dict[str, Any]:
    sagemaker = admin_client("sagemaker")
    name = sagemaker.describe_endpoint(EndpointName=f"churn-model-{env}")["EndpointConfigName"]
    return sagemaker.describe_endpoint_config(EndpointConfigName=name)


def test_endpoint_config_has_no_kms_key_without_one(aws: AwsHarness) -> None:
    assert aws.project.kms_key_arn == ""
    assert deploy(aws, "staging", aws.seed_version().version).exit_code == 0
    config = deployed_config()
    assert "KmsKeyId" not in config
    assert "KmsKeyId" not in config["DataCaptureConfig"]


# moto's endpoint enum predates ml.g5 (botocore has it): test_aws_facts covers g5 and p3dn
@pytest.mark.parametrize("instance_type", ["ml.g4dn.xlarge", "ml.m5d.large"])
def test_an_instance_store_type_gets_no_volume_key(aws: AwsHarness, instance_type: str) -> None:
    """CreateEndpointConfig fails with a KmsKeyId when a variant's instance type has local
    (NVMe) storage (API_CreateEndpointConfig, KmsKeyId); ml.g4dn and ml.g5 do, whatever their
    name's last letter (aws_facts.json instance_store). Captures stay under the key."""
    key = use_project_key(aws)
    path = aws.project.manifest_path("staging")
    data = json.loads(path.read_text())
    data["endpoint"]["instance_type"] = instance_type
    path.write_text(json.dumps(data, indent=2) + "\n")
    result = deploy(aws, "staging", aws.seed_version().version)
    assert result.exit_code == 0, result.output
    config = deployed_config()
    assert config["ProductionVariants"][0]["InstanceType"] == instance_type
    assert "KmsKeyId" not in config
    assert config["DataCaptureConfig"]["KmsKeyId"] == key


def test_endpoint_config_encrypts_volume_and_capture_with_the_project_key(aws: AwsHarness) -> None:
    key = use_project_key(aws)
    result = deploy(aws, "staging", aws.seed_version().version)
    assert result.exit_code == 0, result.output

    config = deployed_config()
    assert config["KmsKeyId"] == key
    assert config["DataCaptureConfig"]["KmsKeyId"] == key


def test_turning_the_key_on_redeploys_a_new_config(aws: AwsHarness) -> None:
    seeded = aws.seed_version()
    assert deploy(aws, "staging", seeded.version).exit_code == 0
    before = deployed_config()["EndpointConfigName"]
    key = use_project_key(aws)

    assert deploy(aws, "staging", seeded.version).exit_code == 0

    after = deployed_config()
    assert after["EndpointConfigName"] != before and after["KmsKeyId"] == key


def test_serverless_and_local_storage_variants_get_no_volume_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with aws_harness(tmp_path, monkeypatch, deployment="serverless") as harness:
        use_project_key(harness)
        assert deploy(harness, "staging", harness.seed_version().version).exit_code == 0
        config = deployed_config()
        assert "ServerlessConfig" in config["ProductionVariants"][0]
        assert "KmsKeyId" not in config  # no ML storage volume to encrypt
    # Instance types with local NVMe storage are refused with a KmsKeyId (hardware-encrypted).
    from ci_scripts.backends.aws.endpoints import volume_kms_key

    project = harness.project
    assert volume_kms_key(project, {"InstanceType": "ml.m5d.large"}) is None
    assert volume_kms_key(project, {"InstanceType": "ml.m5.large"}) == project.kms_key_arn


def test_sigterm_mid_deploy_is_an_interrupt_and_the_rerun_repairs_the_record(
    aws: AwsHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cancelled job sends SIGINT then SIGTERM. Deploy takes SIGTERM as Ctrl-C
    (ci_scripts.interrupts); when the endpoint finished on the new config before the tags were
    written, the rerun (reads only otherwise) writes them, so a restore finds what served
    before."""
    import os
    import signal
    import time

    from ci_scripts.backends.aws.endpoints import AwsEndpointHost

    first, second, third = aws.seed_version(), aws.seed_version(), aws.seed_version()
    for version in (first, second):
        assert deploy(aws, "staging", version.version).exit_code == 0
    wait = AwsEndpointHost._wait_in_service

    def killed_while_waiting(self: Any, desired: Any, previous: Any) -> None:
        wait(self, desired, previous)  # moto's update is done at once
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(2)  # the signal arrives here

    def default_sigterm(signum: int, frame: Any) -> None:
        raise SystemExit("SIGTERM ended the process (Python's default)")

    monkeypatch.setattr(AwsEndpointHost, "_wait_in_service", killed_while_waiting)
    previous_handler = signal.signal(signal.SIGTERM, default_sigterm)
    try:
        interrupted = deploy(aws, "staging", third.version)
        # Ctrl-C's exit (130), not Python's default ending for SIGTERM
        assert interrupted.exit_code == 130, interrupted.output
        # and one line saying what it left (aws.progress; tests/aws/test_aws_deploy_interrupts.py):
        # the signal came before the wait returned, so the deploy never saw InService
        assert interrupted.stderr.splitlines() == [
            "error: deploy staging interrupted by SIGTERM: endpoint churn-model-staging is "
            f"updating to version {third.version} (UpdateEndpoint sent); its tags still name "
            f"version {second.version} - once it is InService, rerun deploy to repair the record "
            "(or to retry the update, if it rolled back)"
        ]
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    assert signal.getsignal(signal.SIGTERM) is previous_handler
    monkeypatch.undo()
    state = aws.backend.describe_endpoint("staging")
    assert state is not None and state.model_version == third.version
    arn = admin_client("sagemaker").describe_endpoint(EndpointName="churn-model-staging")[
        "EndpointArn"
    ]
    assert tags_of(arn)["model-version"] == str(second.version)  # the stale record

    aws.reset_mutations()
    result = aws.cli("deploy", "--env", "staging", "--commit", "f00dcafe", "--pr", "5")
    assert result.exit_code == 0, result.output
    assert aws.mutations() == ["sagemaker:AddTags"]
    tags = tags_of(arn)
    assert tags["model-version"] == str(third.version)
    assert tags["previous-model-version"] == str(second.version)
    assert tags["previous-endpoint-config"].startswith(f"churn-model-staging-v{second.version}-")
    state = aws.backend.describe_endpoint("staging")
    assert state is not None and state.config["previous_version"] == second.version
    aws.reset_mutations()
    assert aws.cli("deploy", "--env", "staging", "--commit", "f00dcafe").exit_code == 0
    assert aws.mutations() == []


def test_rollback_on_a_failed_endpoint_redeploys_the_version_it_was_tagged_with(
    aws: AwsHarness,
) -> None:
    """A Failed endpoint serves nothing: its tagged version is not "running", so rollback may
    put it back (deploy replaces the Failed endpoint)."""
    first, second = aws.seed_version(), aws.seed_version()
    assert deploy(aws, "staging", first.version).exit_code == 0
    aws.commit("staging: v1")
    point(aws, "staging", second.version)  # merged; its deploy left the endpoint Failed
    aws.commit("staging: v2")
    aws.set_endpoint_status("staging", "Failed", "the update failed")
    aws.expect_healthy_smoke_test("staging")

    result = aws.cli("rollback", "--env", "staging")

    assert result.exit_code == 0, result.output
    state = aws.backend.describe_endpoint("staging")
    assert state is not None and (state.status, state.model_version) == ("InService", 1)


def test_a_no_op_deploy_describes_the_endpoint_once_and_writes_nothing(
    aws: AwsHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SageMaker's Describe* limits are low when workflows run at once: the deploy command reads
    the endpoint once (deploy reuses the command's own read while nothing was written) and the
    autoscaling bounds that read found are not read again. Before: 26 calls, 2 DescribeEndpoint,
    3 DescribeScalableTargets; then 18 calls. #27: at most 12, each read once: the report
    summaries only proposals show are not read (1 GetObject, the metrics the monitor records),
    the endpoint's own tags vouch for its config's (1 ListTags), the rollback and monitor alarms
    are one DescribeAlarms, the monitor's never-expiring state/ seed is not checked again (2
    HeadObject). Nor does it build the monitoring definition (8.1 s of SDK import and build
    before): the monitor pipeline's stored fingerprint says its inputs are the same."""
    from test_aws_pipeline import count_builds

    version = aws.seed_version()
    aws.attach_monitor_reports(version.version)
    assert deploy(aws, "staging", version.version).exit_code == 0
    built = count_builds(monkeypatch)
    aws.new_process()
    aws.reset_mutations()

    result = aws.cli("deploy", "--env", "staging", "--commit", "f00dcafe", "--pr", "5")

    assert result.exit_code == 0, result.output
    assert aws.mutations() == []
    assert built == []
    assert aws.calls.count("sagemaker:DescribeEndpoint") == 1
    assert aws.calls.count("application-autoscaling:DescribeScalableTargets") == 1
    for call in ("cloudwatch:DescribeAlarms", "sagemaker:ListTags", "sagemaker:DescribePipeline"):
        assert aws.calls.count(call) == 1, (call, aws.calls)
    assert len(aws.calls) <= 12, aws.calls


def test_a_prod_update_reads_each_resource_about_once(aws: AwsHarness) -> None:
    """#27: a prod update made 51 reads for 7 writes (6 calls per endpoint describe, repeated
    about 4 times a command). Now 32 reads for the same 7 writes, counted per operation on
    moto: prod's endpoint once at the start (the deploy reuses it: the running config's
    instance type and the autoscaling read then are not read again, nor the endpoint's ARN to
    tag it), staging's for the prod gate, the waiter's poll and its check of the config, the
    state after the update, and the prune's listing."""
    from collections import Counter

    from ci_scripts.backends.aws.session import READS

    first, second = aws.seed_version(), aws.seed_version()
    for version in (first, second):
        aws.attach_monitor_reports(version.version)
    assert deploy(aws, "staging", first.version).exit_code == 0
    assert deploy(aws, "prod", first.version).exit_code == 0
    assert deploy(aws, "staging", second.version).exit_code == 0
    aws.new_process()
    aws.reset_mutations()

    result = deploy(aws, "prod", second.version)

    assert result.exit_code == 0, result.output
    reads = Counter(c for c in aws.calls if c.split(":", 1)[1].startswith(READS))
    writes = [c for c in aws.calls if not c.split(":", 1)[1].startswith(READS)]
    assert len(writes) == 7, writes  # model, config, 2 alarm tags, update, endpoint tags, schedule
    assert sum(reads.values()) <= 32, reads
    assert reads["sagemaker:DescribeEndpoint"] <= 6, reads
    assert reads["sagemaker:DescribeEndpointConfig"] <= 4, reads
    assert reads["application-autoscaling:DescribeScalableTargets"] <= 3, reads
    assert reads["application-autoscaling:DescribeScalingPolicies"] <= 3, reads


def test_a_changed_monitor_input_rebuilds_and_updates_only_the_monitor_pipeline(
    aws: AwsHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new image tag (an input of the monitoring definition) with the same manifest: the
    deploy builds the monitoring definition and updates that pipeline, nothing else."""
    from test_aws_pipeline import count_builds

    version = aws.seed_version()
    aws.attach_monitor_reports(version.version)
    assert deploy(aws, "staging", version.version).exit_code == 0
    built = count_builds(monkeypatch)
    (aws.project.root / "Dockerfile").write_text("FROM python:3.12-slim\n")
    aws.new_process()
    aws.reset_mutations()

    assert deploy(aws, "staging", version.version).exit_code == 0

    assert built == ["pipelines.monitoring"]
    assert aws.mutations() == ["sagemaker:UpdatePipeline"]


def test_a_failed_staging_rollout_is_noted_on_the_approved_version(aws: AwsHarness) -> None:
    """The merge approved v2, its rollout was rolled back and staging serves v1: the registry's
    approval description and status say so; a later successful deploy clears the note."""
    first, second = aws.seed_version(), aws.seed_version()
    assert deploy(aws, "staging", first.version).exit_code == 0
    aws.rollback_reason = "alarm churn-model-staging-5xx fired"

    result = deploy(aws, "staging", second.version)

    assert result.exit_code == 1
    found = aws.backend.get_version(second.group, second.version)
    assert found is not None and found.approval_status == "Approved"
    assert "staging rollout failed" in found.approval_description
    assert f"staging serves v{first.version}" in found.approval_description
    status = aws.cli("status")
    assert "Approved (staging rollout failed)" in status.stdout, status.stdout

    aws.rollback_reason = None
    assert deploy(aws, "staging", second.version).exit_code == 0
    found = aws.backend.get_version(second.group, second.version)
    assert found is not None and "rollout failed" not in found.approval_description
    assert found.approval_description.startswith("Approved by merge of PR #5")
