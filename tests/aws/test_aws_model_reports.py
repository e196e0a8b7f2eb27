"""aws backend: a version registered with every report, read back, monitored and proposed.

The package is registered the way the pipeline's RegisterModel step does it (ModelMetrics:
ModelQuality statistics, ModelDataQuality statistics/constraints, Bias and Explainability
reports; DriftCheckBaselines: ModelDataQuality statistics/constraints), with report files in
the formats the steps write: ``ci_scripts.data_quality`` (the local QualityCheck; Model
Monitor's format) and the template's own ``bias.report`` / ``explain.report``.

Registry and S3 are moto, and so is CreateDataQualityJobDefinition. moto lacks
DescribeMonitoringSchedule and CreateMonitoringSchedule: only those two go to a botocore Stubber.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from aws_harness import AwsHarness, admin_client, new_session
from botocore.stub import Stubber
from gitops_testkit import FEATURES, TEMPLATE_PROJECT, answers_context, render_template_file
from pytest import approx
from test_aws_monitoring import MANIFEST

from ci_scripts import data_quality as dq
from ci_scripts.backends.aws.monitoring import DataQualitySchedule
from ci_scripts.backends.base import ModelVersion

STEP_CODE = TEMPLATE_PROJECT / "src" / "{{cookiecutter.__package}}"
RUN = "churn-model/pipeline-runs/exec-2"  # this run's outputs
PREVIOUS_RUN = "churn-model/pipeline-runs/exec-1"  # the baseline it was checked against
EXPLAINED = (*FEATURES, "worst_area", "mean_concavity")
IMPORTANCES = (0.0004, 0.0312, 0.0021, 0.1187, -0.0009)  # top: worst_area, mean_texture, ...


def template_step_module(name: str) -> ModuleType:
    """A module of the template's step code (src/<package>/), rendered for the default answers
    (model.py and features.py hold jinja) into a temporary package and imported."""
    package = "template_step_code"
    if package not in sys.modules:
        rendered = Path(tempfile.mkdtemp(prefix="step-code-")) / package
        rendered.mkdir()
        ctx = answers_context()
        for source in STEP_CODE.glob("*.py"):
            relpath = source.relative_to(TEMPLATE_PROJECT).as_posix()
            (rendered / source.name).write_text(render_template_file(relpath, ctx), "utf-8")
        spec = importlib.util.spec_from_file_location(
            package, rendered / "__init__.py", submodule_search_locations=[str(rendered)]
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[package] = module
        spec.loader.exec_module(module)
    return importlib.import_module(f"{package}.{name}")


def _features(rows: int, missing: int = 0) -> dq.Dataset:
    rng = np.random.default_rng(rows)
    values = rng.normal((14.0, 19.0, 0.1), (3.5, 4.3, 0.014), size=(rows, len(FEATURES)))
    values[:missing, 1] = np.nan
    return dq.Dataset(list(FEATURES), values)


def _bias_report() -> dict[str, Any]:
    """mean_radius 0..9 (median 4.5): labels positive 5/5 below, 2/5 above -> DPL +0.6;
    predictions 4/5 below, 3/5 above -> DPPL +0.2."""
    radius = np.arange(10, dtype=float)
    truth = np.array([1, 1, 1, 1, 1, 0, 1, 0, 1, 0])
    predicted = np.array([1, 1, 0, 1, 1, 1, 1, 0, 1, 0])
    bias = template_step_module("bias")
    return bias.report(truth, predicted, radius, bias.Facet("mean_radius", 1))


def register_with_reports(aws: AwsHarness) -> dict[str, str]:
    """Put every report in S3 and register a package pointing at them; return kind -> URI."""
    bucket = aws.project.artifact_bucket
    calculated = f"{RUN}/DataQualityBaseline/results"
    drift = f"{PREVIOUS_RUN}/DataQualityBaseline/results"
    stats = dq.statistics(_features(40))
    previous_stats = dq.statistics(_features(50, missing=5))
    explain = template_step_module("explain")
    documents = {  # kind -> (key, document)
        "evaluation": (
            f"{RUN}/Evaluate/evaluation/evaluation.json",
            {
                "binary_classification_metrics": {
                    "auc": {"value": 0.97, "standard_deviation": "NaN"},
                    "f1": {"value": 0.93, "standard_deviation": "NaN"},
                }
            },
        ),
        "data_statistics": (f"{calculated}/{dq.STATISTICS_FILE}", stats),
        "data_constraints": (f"{calculated}/{dq.CONSTRAINTS_FILE}", dq.constraints(stats)),
        "drift_statistics": (f"{drift}/{dq.STATISTICS_FILE}", previous_stats),
        "drift_constraints": (f"{drift}/{dq.CONSTRAINTS_FILE}", dq.constraints(previous_stats)),
        "bias": (f"{RUN}/CheckBias/bias/analysis.json", _bias_report()),
        "explainability": (
            f"{RUN}/Explain/explainability/analysis.json",
            explain.report(EXPLAINED, IMPORTANCES, rows=57),
        ),
    }
    uri = {}
    for kind, (key, document) in documents.items():
        admin_client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(document).encode())
        uri[kind] = f"s3://{bucket}/{key}"

    def source(kind: str) -> dict[str, str]:
        return {"ContentType": "application/json", "S3Uri": uri[kind]}

    p = aws.project
    admin_client("sagemaker").create_model_package(
        ModelPackageGroupName=p.model_package_group,
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [
                {
                    "Image": f"{p.accounts['dev']}.dkr.ecr.{p.region}.amazonaws.com/img:abc",
                    "ModelDataUrl": f"s3://{bucket}/{RUN}/Train/model/model.tar.gz",
                }
            ],
            "SupportedContentTypes": ["text/csv", "application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelMetrics={
            "ModelQuality": {"Statistics": source("evaluation")},
            "ModelDataQuality": {
                "Statistics": source("data_statistics"),
                "Constraints": source("data_constraints"),
            },
            "Bias": {"Report": source("bias")},
            "Explainability": {"Report": source("explainability")},
        },
        # RegisterNewDataQualityBaseline=false: the drift check used the previous baseline,
        # so the two differ here (with the default, true, they are the same files).
        DriftCheckBaselines={
            "ModelDataQuality": {
                "Statistics": source("drift_statistics"),
                "Constraints": source("drift_constraints"),
            }
        },
        CustomerMetadataProperties={"project": p.project, "hyperparameter:C": "0.5"},
    )
    return uri


class _ScheduleCallsStubbed:
    """The backend's SageMaker client (moto), except the *MonitoringSchedule calls moto lacks,
    which go to a Stubber-owned client."""

    def __init__(self, moto_client: Any, stubbed_client: Any) -> None:
        self._moto, self._stubbed = moto_client, stubbed_client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stubbed if name.endswith("monitoring_schedule") else self._moto, name)


def test_registered_reports_are_read_and_the_drift_baseline_is_monitored(
    aws: AwsHarness,
) -> None:
    uris = register_with_reports(aws)
    p = aws.project

    version = aws.backend.get_version(p.model_package_group, 1)

    assert isinstance(version, ModelVersion)
    assert version.metrics == {"auc": 0.97, "f1": 0.93}
    assert version.hyperparameters == {"C": "0.5"}
    assert version.reports == {
        kind: uris[kind]
        for kind in ("bias", "explainability", "data_statistics", "data_constraints")
    }
    assert version.checks == {
        "data_statistics": {"features": 3, "rows": 40},
        "bias": {"facet": "mean_radius (4.5, inf)", "DPL": approx(0.6), "DPPL": approx(0.2)},
        "explainability": {
            "method": "permutation_importance",
            "top": [["worst_area", 0.1187], ["mean_texture", 0.0312], ["mean_smoothness", 0.0021]],
        },
    }
    assert version.baseline_uri == uris["drift_statistics"]

    schedule = f"{p.project}-prod-data-quality"
    stubbed = new_session().client("sagemaker")
    stubber = Stubber(stubbed)
    stubber.add_client_error(
        "describe_monitoring_schedule",
        service_error_code="ResourceNotFound",
        service_message="not found",
        expected_params={"MonitoringScheduleName": schedule},
    )
    definition = f"{p.project}-prod-dq-v1"
    stubber.add_response(
        "create_monitoring_schedule",
        {"MonitoringScheduleArn": "arn:s"},
        {
            "MonitoringScheduleName": schedule,
            "MonitoringScheduleConfig": {
                "ScheduleConfig": {"ScheduleExpression": MANIFEST["monitoring"]["schedule"]},
                "MonitoringJobDefinitionName": definition,
                "MonitoringType": "DataQuality",
            },
            "Tags": [{"Key": "model_version", "Value": "1"}],
        },
    )
    stubber.activate()
    moto_client = aws.backend.clients("sagemaker")
    aws.backend.clients._clients["sagemaker"] = _ScheduleCallsStubbed(moto_client, stubbed)

    message = DataQualitySchedule(p, aws.backend.clients).sync("prod", MANIFEST, version)

    assert message.startswith(f"monitoring schedule {schedule} created: {definition}"), message
    stubber.assert_no_pending_responses()
    job = moto_client.describe_data_quality_job_definition(JobDefinitionName=definition)
    baseline = job["DataQualityBaselineConfig"]
    assert baseline["StatisticsResource"]["S3Uri"] == uris["drift_statistics"]
    copy_uri = baseline["ConstraintsResource"]["S3Uri"]
    assert copy_uri == f"s3://{p.artifact_bucket}/monitoring/prod/baselines/v1/constraints.json"
    copy_key = copy_uri.split("/", 3)[3]
    copy = json.loads(
        admin_client("s3").get_object(Bucket=p.artifact_bucket, Key=copy_key)["Body"].read()
    )
    drift_key = uris["drift_constraints"].split("/", 3)[3]
    drift = json.loads(
        admin_client("s3").get_object(Bucket=p.artifact_bucket, Key=drift_key)["Body"].read()
    )
    assert copy["features"] == drift["features"]  # the drift-check constraints, not the new ones
    assert copy["features"][1]["completeness"] == 0.9
    assert copy["monitoring_config"]["distribution_constraints"]["comparison_threshold"] == 0.2


def test_proposal_body_shows_baseline_bias_and_top_features(aws: AwsHarness, tmp_path: Any) -> None:
    uris = register_with_reports(aws)
    body_file = tmp_path / "body.md"

    result = aws.cli("propose", "--env", "staging", "--body-file", str(body_file))

    assert result.exit_code == 0, result.output
    body = body_file.read_text()
    section = body.split("### Data baseline, bias and explainability\n\n", 1)[1].split("\n\n")[0]
    assert section.splitlines() == [
        f"- Data quality baseline (3 features, 40 rows): `{uris['data_statistics']}`",
        f"  constraints: `{uris['data_constraints']}`",
        "- Bias for facet `mean_radius (4.5, inf)`: DPL +0.600, DPPL +0.200",
        f"  report: `{uris['bias']}`",
        "- Top features (permutation_importance): "
        "`worst_area` 0.1187, `mean_texture` 0.0312, `mean_smoothness` 0.0021",
        f"  report: `{uris['explainability']}`",
    ]
    assert "- Data baseline:" not in body  # the drift baseline is not listed twice
