"""aws destroy and prune on moto: every kind of resource an environment runs goes (the
monitor's Scheduler schedule, pipeline and alarms included), nothing of another environment does,
a busy endpoint is refused before any change."""

from __future__ import annotations

import json

from aws_harness import AwsHarness, admin_client

from ci_scripts.backends.aws.monitoring import AwsMonitor
from ci_scripts.backends.aws.teardown import resource_version

ENDPOINT = "churn-model-staging"
MONITOR = f"{ENDPOINT}-monitor"  # its pipeline and its schedule


def deploy(aws: AwsHarness, version: int) -> None:
    path = aws.project.manifest_path("staging")
    data = json.loads(path.read_text())
    data["model_version"] = version
    path.write_text(json.dumps(data))
    result = aws.cli("deploy", "--env", "staging", "--commit", f"c{version:07d}")
    assert result.exit_code == 0, result.output


def with_monitor(aws: AwsHarness, number: int) -> None:
    """What deploy keeps for a version with a monitor baseline: pipeline, schedule, alarms."""
    from test_aws_monitor import DEFINITION, _manifest, _version

    AwsMonitor(aws.project, aws.backend.clients).sync(
        "staging", _manifest(), _version(aws, number), DEFINITION
    )


def names(aws: AwsHarness) -> dict[str, list[str]]:
    sagemaker = admin_client("sagemaker")
    scaling = admin_client("application-autoscaling")
    return {
        "configs": sorted(
            c["EndpointConfigName"] for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]
        ),
        "models": sorted(m["ModelName"] for m in sagemaker.list_models()["Models"]),
        "alarms": sorted(
            a["AlarmName"] for a in admin_client("cloudwatch").describe_alarms()["MetricAlarms"]
        ),
        "targets": [
            t["ResourceId"]
            for t in scaling.describe_scalable_targets(ServiceNamespace="sagemaker")[
                "ScalableTargets"
            ]
        ],
        "policies": [
            p["PolicyName"]
            for p in scaling.describe_scaling_policies(ServiceNamespace="sagemaker")[
                "ScalingPolicies"
            ]
        ],
    }


def test_destroy_removes_every_kind_of_resource_and_only_this_environments(
    aws: AwsHarness,
) -> None:
    first, second = aws.seed_version(), aws.seed_version()
    deploy(aws, first.version)
    deploy(aws, second.version)
    # Another environment's config, and a name that only looks like ours: both must stay.
    sagemaker = admin_client("sagemaker")
    prod = "churn-model-prod-v1-0123abcd"
    sagemaker.create_model(
        ModelName=prod,
        ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
        PrimaryContainer={"Image": "image"},
    )
    variant = [{"VariantName": "AllTraffic", "ModelName": prod, "InstanceType": "ml.m5.large"}]
    for other in (prod, "churn-model-staging-v1-notahash"):
        sagemaker.create_endpoint_config(EndpointConfigName=other, ProductionVariants=variant)
    before = names(aws)
    assert len([c for c in before["configs"] if c.startswith(f"{ENDPOINT}-v")]) == 3
    assert before["targets"] and before["policies"] and len(before["alarms"]) == 2
    with_monitor(aws, second.version)
    assert len(names(aws)["alarms"]) == 4  # the rollback alarms and the monitor's two

    result = aws.cli("destroy", "--env", "staging", "--yes")

    assert result.exit_code == 0, result.output
    assert f"schedule {MONITOR}" in result.stdout and f"pipeline {MONITOR}" in result.stdout
    assert admin_client("scheduler").list_schedules()["Schedules"] == []
    pipelines = admin_client("sagemaker").list_pipelines()["PipelineSummaries"]
    assert [p["PipelineName"] for p in pipelines if p["PipelineName"] == MONITOR] == []
    after = names(aws)
    assert after == {
        "configs": ["churn-model-prod-v1-0123abcd", "churn-model-staging-v1-notahash"],
        "models": [prod],
        "alarms": [],
        "targets": [],
        "policies": [],
    }
    assert aws.backend.describe_endpoint("staging") is None
    # Idempotent: a second run reads, finds nothing, changes nothing.
    aws.reset_mutations()
    again = aws.cli("destroy", "--env", "staging", "--yes")
    assert again.exit_code == 0 and "nothing to destroy" in again.stdout
    assert aws.mutations() == []


def test_destroy_refuses_an_endpoint_being_updated_before_any_change(aws: AwsHarness) -> None:
    deploy(aws, aws.seed_version().version)
    aws.set_endpoint_status("staging", "Updating")
    aws.reset_mutations()

    result = aws.cli("destroy", "--env", "staging", "--yes")

    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: endpoint {ENDPOINT}: status is Updating; wait for it to finish before "
        "destroying it (nothing was removed)"
    )
    assert aws.mutations() == []


def test_resource_names_are_matched_exactly() -> None:
    assert resource_version(ENDPOINT, f"{ENDPOINT}-v12-0123abcd") == 12
    assert resource_version("churn-prod", "churn-prod-x-staging-v1-0123abcd") is None
    assert resource_version(ENDPOINT, f"{ENDPOINT}-v12-0123abcd-copy") is None
    long = "a" * 55
    assert resource_version(long, "a" * 51 + "-v3-0123abcd") == 3  # cut to fit 63 characters


def test_prune_deletes_only_versions_no_rollback_needs(aws: AwsHarness, monkeypatch) -> None:
    from ci_scripts.commands import retention

    monkeypatch.setattr(retention, "KEEP_VERSIONS", 1)
    versions = [aws.seed_version().version for _ in range(3)]
    for version in versions:
        deploy(aws, version)
        aws.commit(f"deploy v{version}")
    aws.seed_version()  # not deployed: nothing of it to prune

    left = names(aws)

    def versions_of(kind: str) -> list[int | None]:
        return sorted(resource_version(ENDPOINT, n) or 0 for n in left[kind])

    # The third deploy pruned v1; v3 serves, v2 served before it.
    assert versions_of("configs") == versions[1:]
    assert versions_of("models") == versions[1:]
    running = admin_client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)
    assert resource_version(ENDPOINT, running["EndpointConfigName"]) == versions[2]
