"""Requests -> IAM checks, from the Service Authorization Reference (sar_actions)."""

from __future__ import annotations

import pytest
from iam_recorder import Request, command_key
from sar_actions import checks_for

CALLER = "arn:aws:iam::222222222222:role/churn-model-github-deploy-staging"
DEV = "111111111111"
PACKAGE = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-model/3"  # moto's ARN


def checks(service, operation, **params):
    return {
        (c.action, c.resource)
        for c in checks_for(
            Request("deploy --env staging", None, service, operation, params), CALLER, DEV, {}
        )
    }


def test_create_model_from_a_package_needs_pass_role_and_the_package():
    found = checks(
        "sagemaker",
        "CreateModel",
        ModelName="churn-model-staging-v3-abc",
        ExecutionRoleArn="arn:aws:iam::222222222222:role/churn-model-sagemaker-execution",
        PrimaryContainer={"ModelPackageName": PACKAGE},
        Tags=[{"Key": "sagemaker-gitops:model-package", "Value": PACKAGE}],
    )
    package = PACKAGE.replace("123456789012", DEV)  # the registry lives in dev
    assert found == {
        (
            "sagemaker:CreateModel",
            "arn:aws:sagemaker:eu-west-1:222222222222:model/churn-model-staging-v3-abc",
        ),
        ("iam:PassRole", "arn:aws:iam::222222222222:role/churn-model-sagemaker-execution"),
        ("sagemaker:CreateModel", package),
        ("sagemaker:DescribeModelPackage", package),
        # tags on create: sagemaker:AddTags on the model too (a dependent action in the SAR)
        (
            "sagemaker:AddTags",
            "arn:aws:sagemaker:eu-west-1:222222222222:model/churn-model-staging-v3-abc",
        ),
    }


def test_tags_on_create_need_the_tagging_action_on_what_is_created():
    def tag_checks(service, operation, **params):
        request = Request("deploy --env staging", None, service, operation, params)
        return {
            (c.action, c.resource, c.context.get("sagemaker:TaggingAction"))
            for c in checks_for(request, CALLER, DEV, {})
            if c.action.endswith(("AddTags", "TagResource"))
        }

    config = "arn:aws:sagemaker:eu-west-1:222222222222:endpoint-config/e-v1-abc"
    tags = [{"Key": "sagemaker-gitops:version", "Value": "1"}]
    assert tag_checks(
        "sagemaker", "CreateEndpointConfig", EndpointConfigName="e-v1-abc", Tags=tags
    ) == {("sagemaker:AddTags", config, "CreateEndpointConfig")}
    assert tag_checks("sagemaker", "CreateEndpointConfig", EndpointConfigName="e-v1-abc") == set()
    assert {a for a, _, _ in tag_checks(
        "application-autoscaling",
        "RegisterScalableTarget",
        ServiceNamespace="sagemaker",
        ResourceId="endpoint/e/variant/AllTraffic",
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        Tags={"sagemaker-gitops:project": "p"},
    )} == {"application-autoscaling:TagResource"}  # fmt: skip
    alarm = "arn:aws:cloudwatch:eu-west-1:222222222222:alarm:p-staging-errors"
    assert tag_checks("cloudwatch", "PutMetricAlarm", AlarmName="p-staging-errors", Tags=tags) == {
        ("cloudwatch:TagResource", alarm, None)
    }


def test_s3_operations_use_their_iam_names_and_pipeline_executions_their_arn():
    assert checks("s3", "ListObjectsV2", Bucket="b", Prefix="p/") == {
        ("s3:ListBucket", "arn:aws:s3:::b")
    }
    assert checks("s3", "HeadObject", Bucket="b", Key="k") == {("s3:GetObject", "arn:aws:s3:::b/k")}
    execution = "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/p/execution/x1"
    assert checks("sagemaker", "DescribePipelineExecution", PipelineExecutionArn=execution) == {
        ("sagemaker:DescribePipelineExecution", execution.replace("123456789012", DEV))
    }
    assert checks("sts", "GetCallerIdentity") == set()  # needs no permission


def test_target_tracking_needs_its_alarms_and_registration_its_service_linked_role():
    resource = "endpoint/churn-model-staging/variant/AllTraffic"
    put = checks(
        "application-autoscaling",
        "PutScalingPolicy",
        ServiceNamespace="sagemaker",
        ResourceId=resource,
        PolicyName="p",
        TargetTrackingScalingPolicyConfiguration={"TargetValue": 1.0},
    )
    alarms = f"arn:aws:cloudwatch:eu-west-1:222222222222:alarm:TargetTracking-{resource}-*"
    assert {("cloudwatch:PutMetricAlarm", alarms), ("cloudwatch:DeleteAlarms", alarms)} <= put
    register = {
        a
        for a, _ in checks(
            "application-autoscaling",
            "RegisterScalableTarget",
            ServiceNamespace="sagemaker",
            ResourceId=resource,
            ScalableDimension="d",
        )
    }
    assert {
        "iam:CreateServiceLinkedRole",
        "sagemaker:UpdateEndpointWeightsAndCapacities",
    } <= register


def test_an_unmapped_parameter_fails_loudly():
    with pytest.raises(AssertionError, match=r"sar_actions\.FILL"):
        checks("sagemaker", "DescribeEndpoint")


def test_command_key_keeps_the_environment_flags_only():
    assert command_key(["deploy", "--env", "prod", "--commit", "x"]) == "deploy --env prod"
    assert command_key(["promote", "--from", "staging", "--to", "prod", "--body-file", "b"]) == (
        "promote --from staging --to prod"
    )
