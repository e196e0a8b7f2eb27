"""ci_scripts/pipelines/batch.py: the batch scoring pipeline's definition, checked against
botocore.

Each step's Arguments are the request SageMaker Pipelines sends for it (CreateProcessingJob,
CreateTransformJob minus the job name); with every ``{"Get": "Parameters.X"}`` replaced by a
value of the parameter's type, botocore's own validator must accept them.
"""

from __future__ import annotations

import copy
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator
from gitops_testkit import write_model_repo

from ci_scripts.batch import BATCH_MODULE, data_processing
from ci_scripts.pipeline_module import build_definition
from ci_scripts.project import ProjectConfig

PROD = "333333333333"
VALUES = {
    "ModelName": "churn-model-staging-v3-0123abcd",
    "InputUri": "s3://bucket/batch/staging/input/",
    "OutputUri": "s3://bucket/batch/staging/output/",
    "InstanceType": "ml.m5.xlarge",
    "InstanceCount": 2,
    "MaxPayloadInMB": 6,
    "MaxConcurrentTransforms": 1,
    "CheckUri": "s3://bucket/batch/staging/checks",
    "CaptureUri": "s3://capture/datacapture/staging/churn-model-staging/batch",
}


@pytest.fixture(scope="module")
def definition(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = write_model_repo(
        tmp_path_factory.mktemp("batch") / "repo", pipeline="template", prod_account_id=PROD
    )
    project = ProjectConfig.load(root)
    return build_definition(project, BATCH_MODULE, role_arn=project.role_arn("prod"))


def _resolve(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"Get"}:
        return VALUES.get(value["Get"].removeprefix("Parameters."), "execution-id")
    if isinstance(value, dict) and set(value) == {"Std:Join"}:
        join = value["Std:Join"]
        return join["On"].join(str(_resolve(v)) for v in join["Values"])
    if isinstance(value, dict):
        return {k: _resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v) for v in value]
    return value


def _validate(operation: str, request: dict[str, Any]) -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    report = ParamValidator().validate(request, model.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()


def _step(definition: dict[str, Any], name: str) -> dict[str, Any]:
    return next(step for step in definition["Steps"] if step["Name"] == name)


def test_parameters_are_the_ones_ci_scripts_sends(definition: dict[str, Any]) -> None:
    types = {p["Name"]: p["Type"] for p in definition["Parameters"]}
    assert types == {
        "ModelName": "String",
        "InputUri": "String",
        "OutputUri": "String",
        "InstanceType": "String",
        "InstanceCount": "Integer",
        "MaxPayloadInMB": "Integer",
        "MaxConcurrentTransforms": "Integer",
        "CheckUri": "String",
        "CaptureUri": "String",
    }


def test_the_transform_is_a_valid_create_transform_job(definition: dict[str, Any]) -> None:
    step = _step(definition, "Transform")
    assert step["Type"] == "Transform" and step["DependsOn"] == ["CheckInput"]
    arguments = step["Arguments"]
    request = {"TransformJobName": "pipelines-abc-Transform", **_resolve(arguments)}
    _validate("CreateTransformJob", request)
    # Every knob the manifest sets is a parameter, so staging and prod share the definition.
    get = {k: {"Get": f"Parameters.{k}"} for k in VALUES}
    assert arguments["ModelName"] == get["ModelName"]
    assert arguments["TransformResources"] == {
        "InstanceType": get["InstanceType"],
        "InstanceCount": get["InstanceCount"],
    }
    assert arguments["MaxPayloadInMB"] == get["MaxPayloadInMB"]
    assert arguments["MaxConcurrentTransforms"] == get["MaxConcurrentTransforms"]
    assert arguments["TransformInput"] == {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": get["InputUri"]}},
        "ContentType": "text/csv",
        "SplitType": "Line",
    }
    assert arguments["TransformOutput"] == {
        "S3OutputPath": get["OutputUri"],
        "Accept": "text/csv",
        "AssembleWith": "Line",
    }
    assert arguments["BatchStrategy"] == "MultiRecord"
    # id first, then the features (the template's dataset has 30): drop the id for the model,
    # join the answer to the input row, keep the id and every answer column.
    assert arguments["DataProcessing"] == {
        "InputFilter": "$[1:]",
        "JoinSource": "Input",
        "OutputFilter": "$[0,31:]",
    }
    assert arguments["DataProcessing"] == data_processing(30)  # what the local backend does
    assert step["CacheConfig"] == {"Enabled": False}


def test_the_check_runs_batch_check_on_the_input_first(definition: dict[str, Any]) -> None:
    step = _step(definition, "CheckInput")
    arguments = step["Arguments"]
    request = {"ProcessingJobName": "pipelines-abc-CheckInput", **_resolve(arguments)}
    _validate("CreateProcessingJob", request)
    entrypoint = arguments["AppSpecification"]["ContainerEntrypoint"]
    assert entrypoint == ["python", "-m", "ci_scripts.runtime", "batch_check"]
    assert arguments["AppSpecification"]["ContainerArguments"] == [
        "--label",
        {"Get": "Parameters.InputUri"},
    ]
    (source,) = arguments["ProcessingInputs"]
    assert source["S3Input"]["S3Uri"] == {"Get": "Parameters.InputUri"}
    assert source["S3Input"]["LocalPath"] == "/opt/ml/processing/input/batch"
    # its one output, the summary, goes under CheckUri: never under the output prefix
    (output,) = arguments["ProcessingOutputConfig"]["Outputs"]
    assert output["S3Output"]["S3Uri"] == {
        "Std:Join": {
            "On": "/",
            "Values": [{"Get": "Parameters.CheckUri"}, {"Get": "Execution.PipelineExecutionId"}],
        }
    }
    assert output["S3Output"]["LocalPath"] == "/opt/ml/processing/output/batch_check"
    # it runs in the serving account, as that account's execution role
    assert arguments["RoleArn"] == f"arn:aws:iam::{PROD}:role/churn-model-sagemaker-execution"
    assert step["CacheConfig"] == {"Enabled": False}


def test_an_invalid_value_is_caught_by_the_check(definition: dict[str, Any]) -> None:
    """The validator is real: a transform without its model fails it."""
    arguments = copy.deepcopy(_step(definition, "Transform")["Arguments"])
    del arguments["ModelName"]
    with pytest.raises(AssertionError, match="ModelName"):
        _validate("CreateTransformJob", {"TransformJobName": "x", **_resolve(arguments)})


def test_capture_runs_after_the_transform_only_when_asked(definition: dict[str, Any]) -> None:
    condition = _step(definition, "CaptureEnabled")
    assert condition["Type"] == "Condition" and condition["DependsOn"] == ["Transform"]
    assert condition["Arguments"]["Conditions"] == [
        {
            "Type": "Not",
            "Condition": {
                "Type": "Equals",
                "LeftValue": {"Get": "Parameters.CaptureUri"},
                "RightValue": "",
            },
        }
    ]
    assert condition["Arguments"]["ElseSteps"] == []
    (capture,) = condition["Arguments"]["IfSteps"]
    arguments = capture["Arguments"]
    _validate("CreateProcessingJob", {"ProcessingJobName": "p-Capture", **_resolve(arguments)})
    entrypoint = arguments["AppSpecification"]["ContainerEntrypoint"]
    assert entrypoint == ["python", "-m", "ci_scripts.runtime", "batch_capture"]
    sources = {i["InputName"]: i["S3Input"] for i in arguments["ProcessingInputs"]}
    assert sources["batch_input"]["S3Uri"] == {"Get": "Parameters.InputUri"}
    assert sources["batch_output"]["S3Uri"] == {"Get": "Parameters.OutputUri"}
    assert sources["batch_input"]["LocalPath"] == "/opt/ml/processing/input/batch_input"
    assert sources["batch_output"]["LocalPath"] == "/opt/ml/processing/input/batch_output"
    (output,) = arguments["ProcessingOutputConfig"]["Outputs"]
    assert output["S3Output"]["LocalPath"] == "/opt/ml/processing/output/capture"
    assert output["S3Output"]["S3Uri"]["Std:Join"]["Values"][0] == {"Get": "Parameters.CaptureUri"}


@pytest.mark.parametrize(
    ("instance_type", "volume_key"), [("ml.m5.xlarge", True), ("ml.g4dn.xlarge", False)]
)
def test_a_kms_key_is_left_off_the_volume_of_an_instance_store_type(
    tmp_path: Any, instance_type: str, volume_key: bool
) -> None:
    """CreateTransformJob refuses a VolumeKmsKeyId on instance types with local (NVMe) storage
    (API_TransformResources: "You can't request a VolumeKmsKeyId when using an instance type with
    local storage"); the output stays under the project key either way."""
    import dataclasses

    root = write_model_repo(tmp_path / "repo", pipeline="template", prod_account_id=PROD)
    project = ProjectConfig.load(root)
    key = f"arn:aws:kms:{project.region}:{PROD}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    project = dataclasses.replace(project, kms_key_arn=key)
    built = build_definition(
        project,
        BATCH_MODULE,
        role_arn=project.role_arn("prod"),
        transform_instance_type=instance_type,
    )
    arguments = _step(built, "Transform")["Arguments"]
    assert arguments["TransformOutput"]["KmsKeyId"] == key
    assert (arguments["TransformResources"].get("VolumeKmsKeyId") == key) is volume_key
    check = _step(built, "CheckInput")["Arguments"]  # processing on ml.m5 (EBS): keyed
    assert check["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == key
