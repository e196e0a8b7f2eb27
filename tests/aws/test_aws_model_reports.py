"""aws backend: a version registered with every report, read back, monitored and proposed.

The package is registered the way the pipeline's RegisterModel step does it (ModelMetrics:
ModelQuality statistics, ModelDataQuality statistics/constraints, Bias and Explainability
reports; DriftCheckBaselines: ModelDataQuality statistics/constraints), with report files in
the formats the steps write: the template's ``drift.baseline`` (the DataBaseline step's
statistics.json), ``bias.report`` and ``explain.report``.

Registry, S3, SageMaker pipelines and EventBridge Scheduler are moto (no Stubber).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from aws_harness import AwsHarness, admin_client
from gitops_testkit import FEATURES, template_step_module
from pytest import approx

from ci_scripts.backends.aws.monitoring import AwsMonitor
from ci_scripts.backends.base import ModelVersion

RUN = "churn-model/pipeline-runs/exec-2"  # this run's outputs
PREVIOUS_RUN = "churn-model/pipeline-runs/exec-1"  # the baseline it was checked against
EXPLAINED = (*FEATURES, "worst_area", "mean_concavity")
IMPORTANCES = (0.0004, 0.0312, 0.0021, 0.1187, -0.0009)  # top: worst_area, mean_texture, ...


def _statistics(rows: int, missing: int = 0) -> dict[str, Any]:
    """statistics.json as the DataBaseline step writes it (template drift.baseline)."""
    rng = np.random.default_rng(rows)
    values = rng.normal((14.0, 19.0, 0.1), (3.5, 4.3, 0.014), size=(rows, len(FEATURES)))
    table: list[list[Any]] = values.tolist()
    for row in table[:missing]:
        row[1] = ""
    return template_step_module("drift").baseline(list(FEATURES), table, rng.random(rows))


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
    calculated = f"{RUN}/DataBaseline/baseline"
    drift = f"{PREVIOUS_RUN}/DataBaseline/baseline"
    stats = _statistics(40)
    previous_stats = _statistics(50, missing=5)
    constraints = template_step_module("drift").constraints
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
        "data_statistics": (f"{calculated}/statistics.json", stats),
        "data_constraints": (f"{calculated}/constraints.json", constraints(stats)),
        "drift_statistics": (f"{drift}/statistics.json", previous_stats),
        "drift_constraints": (f"{drift}/constraints.json", constraints(previous_stats)),
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
        # A pipeline may register an older drift-check baseline than the calculated one (the
        # template's registers the same files); the registry keeps both apart.
        DriftCheckBaselines={
            "ModelDataQuality": {
                "Statistics": source("drift_statistics"),
                "Constraints": source("drift_constraints"),
            }
        },
        CustomerMetadataProperties={"project": p.project, "hyperparameter:C": "0.5"},
    )
    return uri


def test_registered_reports_are_read_and_the_served_version_is_monitored(
    aws: AwsHarness,
) -> None:
    uris = register_with_reports(aws)
    p = aws.project

    listed = aws.backend.get_version(p.model_package_group, 1)
    assert isinstance(listed, ModelVersion) and listed.checks == {}  # a deploy reads none (#27)
    version = aws.backend.with_checks(listed)

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

    manifest = {"endpoint": {"type": "realtime"}, "data_capture": {"enabled": True}}
    definition = {"Version": "2020-12-01", "Parameters": [], "Steps": []}
    AwsMonitor(p, aws.backend.clients).sync("prod", manifest, version, definition)
    schedule = admin_client("scheduler").get_schedule(Name=f"{p.project}-prod-monitor")
    listed = schedule["Target"]["SageMakerPipelineParameters"]["PipelineParameterList"]
    parameters = {item["Name"]: item["Value"] for item in listed}
    assert parameters["BaselineUrl"] == uris["data_statistics"].rsplit("/", 1)[0] + "/"
    assert parameters["BiasReportUrl"] == uris["bias"]
    assert parameters["ExplainabilityReportUrl"] == uris["explainability"]
    assert parameters["ModelDataUrl"] == f"s3://{p.artifact_bucket}/{RUN}/Train/model/model.tar.gz"
    assert json.loads(parameters["MonitorConfig"])["registered"] == {"auc": 0.97, "f1": 0.93}


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
