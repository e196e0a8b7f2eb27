"""Helpers for the local backend's tests: a tiny model repo and a synthetic definition.

The synthetic definition has the template pipeline's shape (Processing, Training, PropertyFile,
Condition with JsonGet, RegisterModel, Fail) in the standard SageMaker format; the repo's step
code is fake_step_code.py (standard library only), so a step costs milliseconds.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ci_scripts.backends.local import processes as procs
from ci_scripts.backends.local.backend import LocalBackend

HERE = Path(__file__).resolve().parent
PACKAGE = "churn_model"
BUCKET = "churn-model-artifacts-111111111111-eu-west-1"

PYPROJECT = f"""\
[project]
name = "churn-model"
version = "0.1.0"

[tool.sagemaker-gitops]
project = "churn-model"
package = "{PACKAGE}"
region = "eu-west-1"
model_package_group = "churn-model"
pipeline_name = "churn-model-train"
ecr_repository = "churn-model"
artifact_bucket = "{BUCKET}"
sagemaker_role = "churn-model-sagemaker-execution"

[tool.sagemaker-gitops.accounts]
dev = "111111111111"
staging = "111111111111"
prod = "111111111111"
"""

MANIFEST: dict[str, Any] = {
    "environment": "staging",
    "model_package_group": "churn-model",
    "model_version": 1,
    "endpoint": {"type": "realtime", "instance_type": "ml.m5.large"},
    "data_capture": {"enabled": True, "sampling_percentage": 100},
}


def write_fake_repo(root: Path) -> Path:
    """A model repo whose step code is fake_step_code.py (and no pipelines/)."""
    (root / "src" / PACKAGE).mkdir(parents=True)
    (root / "src" / PACKAGE / "__init__.py").write_text("")
    shutil.copyfile(HERE / "fake_step_code.py", root / "src" / PACKAGE / "__main__.py")
    (root / "data").mkdir()
    (root / "data" / "dataset.csv").write_text("target,a,b\n1,0.5,2.0\n0,0.1,3.5\n1,0.7,1.0\n")
    (root / "pyproject.toml").write_text(PYPROJECT)
    return root


def running_pids(backend: LocalBackend) -> list[int]:
    return [r["pid"] for r in procs.records(backend.state) if procs.alive(r)]


def pid_alive(pid: int) -> bool:
    """Without the pid records: is any process ``pid`` still there (reaping our zombies)?"""
    return procs.exists(pid)


def _run_url(step: str, name: str) -> dict[str, Any]:
    return {
        "Std:Join": {
            "On": "/",
            "Values": [
                f"s3://{BUCKET}/runs",
                {"Get": "Execution.PipelineExecutionId"},
                step,
                name,
            ],
        }
    }


def _processing(name: str, command: str, inputs: list, outputs: list[str]) -> dict[str, Any]:
    return {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "AppSpecification": {
                "ImageUri": "111111111111.dkr.ecr.eu-west-1.amazonaws.com/churn-model:latest",
                "ContainerEntrypoint": ["python", "-m", PACKAGE, command],
            },
            "ProcessingInputs": [
                {
                    "InputName": input_name,
                    "S3Input": {
                        "S3Uri": uri,
                        "LocalPath": f"/opt/ml/processing/{local}",
                        "S3DataType": "S3Prefix",
                        "S3InputMode": "File",
                    },
                }
                for input_name, uri, local in inputs
            ],
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": out,
                        "S3Output": {
                            "S3Uri": _run_url(name, out),
                            "LocalPath": f"/opt/ml/processing/{out}",
                            "S3UploadMode": "EndOfJob",
                        },
                    }
                    for out in outputs
                ]
            },
        },
    }


def _output(step: str, name: str) -> dict[str, str]:
    return {"Get": f"Steps.{step}.ProcessingOutputConfig.Outputs['{name}'].S3Output.S3Uri"}


AUC = {
    "Std:JsonGet": {
        "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
        "Path": "binary_classification_metrics.auc.value",
    }
}


def synthetic_definition() -> dict[str, Any]:
    """The template pipeline's shape (same step kinds, properties, condition) in miniature."""
    preprocess = _processing(
        "Preprocess",
        "preprocess",
        [("data", {"Get": "Parameters.InputDataUrl"}, "input/data")],
        ["train", "validation", "test", "baseline"],
    )
    train = {
        "Name": "Train",
        "Type": "Training",
        "Arguments": {
            "AlgorithmSpecification": {
                "TrainingImage": "111111111111.dkr.ecr.eu-west-1.amazonaws.com/churn-model:latest",
                "TrainingInputMode": "File",
                "MetricDefinitions": [
                    {"Name": "validation:auc", "Regex": "validation:auc=([0-9.]+)"}
                ],
            },
            "HyperParameters": {
                "auc": {"Get": "Parameters.Auc"},
                "fail": {"Get": "Parameters.FailTraining"},
                "serve": {"Get": "Parameters.Serve"},
            },
            "InputDataConfig": [
                {
                    "ChannelName": channel,
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": _output("Preprocess", channel),
                        }
                    },
                    "ContentType": "text/csv",
                }
                for channel in ("train", "validation")
            ],
            "OutputDataConfig": {"S3OutputPath": _run_url("Train", "model")},
            "StoppingCondition": {"MaxRuntimeInSeconds": 60},
        },
    }
    evaluate = _processing(
        "Evaluate",
        "evaluate",
        [
            ("model", {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}, "model"),
            ("test", _output("Preprocess", "test"), "test"),
        ],
        ["evaluation"],
    )
    evaluate["PropertyFiles"] = [
        {
            "PropertyFileName": "EvaluationReport",
            "OutputName": "evaluation",
            "FilePath": "evaluation.json",
        }
    ]
    register = {
        "Name": "RegisterModel",
        "Type": "RegisterModel",
        "Arguments": {
            "ModelPackageGroupName": "churn-model",
            "ModelApprovalStatus": {"Get": "Parameters.ModelApprovalStatus"},
            "ModelMetrics": {
                "ModelQuality": {
                    "Statistics": {
                        "ContentType": "application/json",
                        "S3Uri": {
                            "Std:Join": {
                                "On": "/",
                                "Values": [_output("Evaluate", "evaluation"), "evaluation.json"],
                            }
                        },
                    }
                }
            },
            "CustomerMetadataProperties": {
                "hyperparameter:auc": {"Get": "Parameters.Auc"},
                "baseline_uri": {
                    "Std:Join": {
                        "On": "/",
                        "Values": [_output("Preprocess", "baseline"), "baseline.csv"],
                    }
                },
            },
            "InferenceSpecification": {
                "Containers": [
                    {
                        "Image": "111111111111.dkr.ecr.eu-west-1.amazonaws.com/churn-model:latest",
                        "ModelDataUrl": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"},
                    }
                ],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
        },
    }
    fail = {
        "Name": "MetricBelowThreshold",
        "Type": "Fail",
        "Arguments": {
            "ErrorMessage": {
                "Std:Join": {
                    "On": " ",
                    "Values": [
                        "auc",
                        AUC,
                        "is below MetricThreshold",
                        {"Get": "Parameters.MetricThreshold"},
                    ],
                }
            }
        },
    }
    check = {
        "Name": "CheckMetric",
        "Type": "Condition",
        "Arguments": {
            "Conditions": [
                {
                    "Type": "GreaterThanOrEqualTo",
                    "LeftValue": AUC,
                    "RightValue": {"Get": "Parameters.MetricThreshold"},
                }
            ],
            "IfSteps": [register],
            "ElseSteps": [fail],
        },
    }
    return {
        "Version": "2020-12-01",
        "Parameters": [
            {
                "Name": "InputDataUrl",
                "Type": "String",
                "DefaultValue": f"s3://{BUCKET}/churn-model/data/dataset.csv",
            },
            {"Name": "Auc", "Type": "String", "DefaultValue": "0.95"},
            {"Name": "FailTraining", "Type": "String", "DefaultValue": "false"},
            {"Name": "Serve", "Type": "String", "DefaultValue": "ok"},
            {"Name": "MetricThreshold", "Type": "Float", "DefaultValue": 0.9},
            {
                "Name": "ModelApprovalStatus",
                "Type": "String",
                "DefaultValue": "PendingManualApproval",
            },
        ],
        # Listed out of order on purpose: the runner must order by dependencies.
        "Steps": [check, evaluate, train, preprocess],
    }
