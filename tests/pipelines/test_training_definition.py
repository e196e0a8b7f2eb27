"""The training pipeline definition of a rendered repo (its pipelines/pipeline.py composing
ci_scripts.pipelines.steps): the steps, how data flows between them, the gate, and that building
it needs neither AWS nor a network.

The definition is built once per problem type's render (importing the SageMaker SDK takes
seconds) with every socket refused, so a build that reaches for the network fails here, not in
CI without credentials or in the local backend.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
import socket
import sys
import threading
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from option_matrix import DEFAULT_PROBLEM_TYPE, PROBLEM_TYPES, problem_type_answers

from ci_scripts.pipeline_module import build_definition, repo_on_path
from ci_scripts.pipelines import sdk
from ci_scripts.pipelines.settings import PipelineSettings
from ci_scripts.pipelines.steps import (
    CHECK_BIAS,
    CHECK_METRIC,
    DATA_BASELINE,
    EVALUATE,
    EVALUATION_REPORT,
    EXPLAIN,
    METRIC_BELOW_THRESHOLD,
    METRIC_VALUE_REGEX,
    PREPROCESS,
    REGISTER_MODEL,
    TRAIN,
    TUNE,
    print_definition,
    quality_metric_path,
)
from ci_scripts.project import ProjectConfig
from ci_scripts.runtime import team

EXECUTION_ID = {"Get": "Execution.PipelineExecutionId"}


def preprocess_output(name: str) -> dict[str, str]:
    return {"Get": f"Steps.{PREPROCESS}.ProcessingOutputConfig.Outputs['{name}'].S3Output.S3Uri"}


MODEL_ARTIFACTS = {"Get": f"Steps.{TRAIN}.ModelArtifacts.S3ModelArtifacts"}


def best_model(settings: PipelineSettings) -> dict[str, Any]:
    """The best trial's model.tar.gz as the SDK's get_top_model_s3_uri renders it: under one
    prefix for every execution (steps.tuning_models_url), so a cached Tune step's best job, which
    an earlier execution ran, is found where it wrote its model."""
    return {
        "Std:Join": {
            "On": "/",
            "Values": [
                "s3:/",
                settings.default_bucket,
                f"{settings.prefix}/tuning/model",
                {"Get": f"Steps.{TUNE}.TrainingJobSummaries[0].TrainingJobName"},
                "output/model.tar.gz",
            ],
        }
    }


@pytest.fixture(scope="module", params=PROBLEM_TYPES)
def root(request: pytest.FixtureRequest, bake_once) -> Path:
    """A rendered repo per problem type (the default one's is the default render)."""
    return bake_once(**problem_type_answers(request.param))


@pytest.fixture(scope="module")
def table(root: Path) -> dict[str, Any]:
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)["tool"]["sagemaker-gitops"]


@pytest.fixture(scope="module")
def project(root: Path) -> ProjectConfig:
    return ProjectConfig.load(root)


@pytest.fixture(scope="module")
def settings(project: ProjectConfig) -> PipelineSettings:
    return PipelineSettings.from_project(project)


def model_module(root: Path, package: str) -> ModuleType:
    """``<package>.model`` of the render at ``root``, fresh (every render's package has the same
    name)."""
    with repo_on_path(root):
        for loaded in [m for m in sys.modules if m.split(".")[0] == package]:
            del sys.modules[loaded]
        return importlib.import_module(f"{package}.model")


@pytest.fixture(scope="module")
def model(root: Path, settings: PipelineSettings) -> Any:
    return model_module(root, settings.package)


@pytest.fixture(scope="module")
def primary(settings: PipelineSettings) -> dict[str, Any]:
    """The gate's JsonGet of the primary metric in evaluation.json."""
    return {
        "Std:JsonGet": {
            "PropertyFile": {"Get": f"Steps.{EVALUATE}.PropertyFiles.{EVALUATION_REPORT}"},
            "Path": quality_metric_path(settings),
        }
    }


@pytest.fixture(scope="module")
def build(project: ProjectConfig) -> tuple[dict[str, Any], list[object]]:
    """(definition, every network connection attempted while building it)."""
    attempts: list[object] = []

    def refuse_lookup(host: object, *args: object, **kwargs: object) -> None:
        attempts.append(host)
        raise OSError(f"network refused in test: {host}")

    def refuse_connect(sock: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError(f"network refused in test: {address}")

    threads_before = set(threading.enumerate())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", refuse_lookup)
        patch.setattr(socket.socket, "connect", refuse_connect)
        doc = build_definition(project, image_tag="latest")
        # The SDK sends telemetry from background threads: let them finish inside the guard.
        for thread in set(threading.enumerate()) - threads_before:
            thread.join(timeout=10)
    return doc, attempts


@pytest.fixture(scope="module")
def doc(build: tuple[dict[str, Any], list[object]]) -> dict[str, Any]:
    return build[0]


def all_steps(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every step by name, the condition's branches included."""
    found: dict[str, dict[str, Any]] = {}
    pending = list(doc["Steps"])
    while pending:
        step = pending.pop(0)
        found[step["Name"]] = step
        if step["Type"] == "Condition":
            pending += step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"]
    return found


def step(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return all_steps(doc)[name]


def inputs_by_name(processing: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    return {
        item["InputName"]: (item["S3Input"]["S3Uri"], item["S3Input"]["LocalPath"])
        for item in processing["Arguments"]["ProcessingInputs"]
    }


def outputs_by_name(processing: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        item["OutputName"]: item["S3Output"]
        for item in processing["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    }


def test_building_the_definition_makes_no_network_call(build) -> None:
    assert build[1] == []


def test_steps_run_in_order_and_the_gate_branches_to_register_or_fail(doc) -> None:
    assert [(s["Name"], s["Type"]) for s in doc["Steps"]] == [
        (PREPROCESS, "Processing"),
        (TUNE, "Tuning"),
        (DATA_BASELINE, "Processing"),
        (EVALUATE, "Processing"),
        (CHECK_BIAS, "Processing"),
        (EXPLAIN, "Processing"),
        (CHECK_METRIC, "Condition"),
    ]
    gate = step(doc, CHECK_METRIC)["Arguments"]
    assert [(s["Name"], s["Type"]) for s in gate["IfSteps"]] == [(REGISTER_MODEL, "RegisterModel")]
    assert [(s["Name"], s["Type"]) for s in gate["ElseSteps"]] == [(METRIC_BELOW_THRESHOLD, "Fail")]


def test_parameters_and_their_defaults(doc, table, model) -> None:
    params = {p["Name"]: (p["Type"], p["DefaultValue"]) for p in doc["Parameters"]}
    bucket, project = table["artifact_bucket"], table["project"]
    assert params == {
        "InputDataUrl": ("String", f"s3://{bucket}/{project}/data/dataset.csv"),
        "ProcessingInstanceType": ("String", table["processing_instance_type"]),
        "TrainingInstanceType": ("String", table["training_instance_type"]),
        "MetricThreshold": ("Float", model.THRESHOLD),
        "ModelApprovalStatus": ("String", "PendingManualApproval"),
    }


@pytest.mark.parametrize("name", [PREPROCESS, TUNE, DATA_BASELINE, EVALUATE, CHECK_BIAS, EXPLAIN])
def test_job_steps_are_cached_and_retried(doc, name) -> None:
    job = step(doc, name)
    assert job["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P30D"}
    retried = {kind for policy in job["RetryPolicies"] for kind in policy["ExceptionType"]}
    assert {"SageMaker.CAPACITY_ERROR", "Step.THROTTLING"} <= retried


@pytest.mark.parametrize(
    ("name", "command"),
    [
        (PREPROCESS, "preprocess"),
        (EVALUATE, "evaluate"),
        (CHECK_BIAS, "bias"),
        (EXPLAIN, "explain"),
    ],
)
def test_processing_steps_run_the_runtime_in_the_project_image(
    doc, settings, name, command
) -> None:
    args = step(doc, name)["Arguments"]
    app = {k: v for k, v in args["AppSpecification"].items() if k != "ContainerArguments"}
    assert app == {
        "ImageUri": settings.image_uri,
        "ContainerEntrypoint": ["python", "-m", "ci_scripts.runtime", command],
    }
    assert args["ProcessingResources"]["ClusterConfig"]["InstanceType"] == {
        "Get": "Parameters.ProcessingInstanceType"
    }
    assert args["RoleArn"] == settings.role_arn


def test_preprocess_reads_the_input_parameter_and_writes_splits_per_execution(doc, table) -> None:
    preprocess = step(doc, PREPROCESS)
    assert inputs_by_name(preprocess) == {
        "data": ({"Get": "Parameters.InputDataUrl"}, "/opt/ml/processing/input/data")
    }
    outputs = outputs_by_name(preprocess)
    assert {name: out["LocalPath"] for name, out in outputs.items()} == {
        name: f"/opt/ml/processing/{name}" for name in ("train", "validation", "test", "baseline")
    }
    for name, out in outputs.items():
        join = out["S3Uri"]["Std:Join"]
        assert join["On"] == "/"
        assert join["Values"] == [
            f"s3://{table['artifact_bucket']}/{table['project']}/pipeline-runs",
            EXECUTION_ID,
            PREPROCESS,
            name,
        ]


def test_train_consumes_the_preprocess_splits(doc, settings) -> None:
    args = step(doc, TUNE)["Arguments"]["TrainingJobDefinition"]  # every trial's job
    # No entrypoint: SageMaker runs `<image> train` and the image's ENTRYPOINT dispatches it.
    assert args["AlgorithmSpecification"]["TrainingImage"] == settings.image_uri
    assert "ContainerEntrypoint" not in args["AlgorithmSpecification"]
    channels = {
        c["ChannelName"]: (c["DataSource"]["S3DataSource"]["S3Uri"], c["ContentType"])
        for c in args["InputDataConfig"]
    }
    assert channels == {
        "train": (preprocess_output("train"), "text/csv"),
        "validation": (preprocess_output("validation"), "text/csv"),
    }
    assert args["ResourceConfig"]["InstanceType"] == {"Get": "Parameters.TrainingInstanceType"}
    # every execution's trials under one prefix (steps.tuning_models_url: see best_model)
    assert args["OutputDataConfig"]["S3OutputPath"] == (
        f"s3://{settings.default_bucket}/{settings.prefix}/tuning/model"
    )
    definitions = args["AlgorithmSpecification"]["MetricDefinitions"]
    assert [m["Name"] for m in definitions] == [f"validation:{name}" for name in settings.metrics]
    for metric in definitions:  # what train prints, negative values included
        for value in ("0.912345", "-0.123456", "3127.5"):
            line = f"noise {metric['Name']}={value}\n"
            assert re.search(metric["Regex"], line).group(1) == value


def test_hyperparameters_are_strings_the_train_step_accepts(doc, root, settings) -> None:
    sent = step(doc, TUNE)["Arguments"]["TrainingJobDefinition"]["StaticHyperParameters"]
    assert sent == {
        k: v for k, v in settings.hyperparameters.items() if k not in settings.search_space
    }
    assert all(isinstance(value, str) for value in sent.values())
    with team.bound_to(root / "src", settings.package):  # the runtime, on this render's model
        train = importlib.import_module("ci_scripts.runtime.train")
        assert set(sent) <= set(train.HYPERPARAMETERS)
        train.parse_hyperparameters(sent, "pipeline definition")  # raises on a value it rejects
        ranges = step(doc, TUNE)["Arguments"]["HyperParameterTuningJobConfig"]["ParameterRanges"]
        for kind, items in ranges.items():  # every bound and choice is a value train accepts
            for item in items:
                for value in item.get("Values") or (item["MinValue"], item["MaxValue"]):
                    train.parse_hyperparameters({item["Name"]: value}, kind)


def test_tune_searches_the_declared_space_for_the_primary_metric_within_the_budget(
    doc, settings, table
) -> None:
    config = step(doc, TUNE)["Arguments"]["HyperParameterTuningJobConfig"]
    budget = table["tuning"]
    assert config["Strategy"] == budget["strategy"]
    assert config["RandomSeed"] == budget["seed"]
    assert config["ResourceLimits"] == {
        "MaxNumberOfTrainingJobs": budget["max_trials"],
        "MaxParallelTrainingJobs": budget["max_parallel"],
    }
    assert config["HyperParameterTuningJobObjective"] == {
        "Type": "Maximize" if settings.higher_is_better else "Minimize",
        "MetricName": f"validation:{settings.primary_metric}",
    }
    names = {i["Name"] for items in config["ParameterRanges"].values() for i in items}
    assert names == set(settings.search_space) and len(names) >= 2


def test_a_budget_of_one_trial_is_one_training_job(settings) -> None:
    import dataclasses

    from ci_scripts.project import TuningBudget

    one = dataclasses.replace(settings, tuning=TuningBudget(max_trials=1))
    from ci_scripts.pipelines import steps as pipeline_steps

    def get_pipeline(s: PipelineSettings) -> Any:
        with pipeline_steps.build(s) as b:
            preprocess = pipeline_steps.preprocess_step(b)
            return pipeline_steps.pipeline(
                b, [preprocess, pipeline_steps.tuning_step(b, preprocess)]
            )

    doc = pipeline_steps.definition(one, get_pipeline)
    assert [(s["Name"], s["Type"]) for s in doc["Steps"]][1] == (TRAIN, "Training")
    assert doc["Steps"][1]["Arguments"]["HyperParameters"] == dict(settings.hyperparameters)


def test_metric_names_match_what_the_step_code_computes(root, settings, model) -> None:
    assert settings.metrics == model.METRICS
    assert (settings.primary_metric, settings.higher_is_better) == (
        model.PRIMARY_METRIC,
        model.HIGHER_IS_BETTER,
    )
    with team.bound_to(root / "src", settings.package):
        metrics = importlib.import_module("ci_scripts.runtime.metrics")
        report = metrics.model_quality_report(
            {name: 0.5 + i / 10 for i, name in enumerate(model.METRICS)}
        )
    value: Any = report
    for key in quality_metric_path(settings).split("."):
        value = value[key]
    assert value == 0.5 + model.METRICS.index(model.PRIMARY_METRIC) / 10


def test_hyperparameter_defaults_are_the_models(settings, model) -> None:
    assert dict(settings.hyperparameters) == {
        name: spec.default for name, spec in model.HYPERPARAMETERS.items()
    }


def test_the_metric_regex_reads_negative_values() -> None:
    assert re.fullmatch(METRIC_VALUE_REGEX, "-0.25")
    assert re.fullmatch(METRIC_VALUE_REGEX, "12")


def test_evaluate_scores_the_trained_model_on_the_test_split(doc, settings) -> None:
    evaluate = step(doc, EVALUATE)
    assert inputs_by_name(evaluate) == {
        "model": (best_model(settings), "/opt/ml/processing/model"),
        "test": (preprocess_output("test"), "/opt/ml/processing/test"),
    }
    assert outputs_by_name(evaluate)["evaluation"]["LocalPath"] == "/opt/ml/processing/evaluation"
    assert evaluate["PropertyFiles"] == [
        {
            "PropertyFileName": EVALUATION_REPORT,
            "OutputName": "evaluation",
            "FilePath": "evaluation.json",
        }
    ]


def test_gate_compares_the_primary_metric_with_the_threshold_parameter(doc, model, primary) -> None:
    kind = "GreaterThanOrEqualTo" if model.HIGHER_IS_BETTER else "LessThanOrEqualTo"
    assert step(doc, CHECK_METRIC)["Arguments"]["Conditions"] == [
        {
            "Type": kind,
            "LeftValue": primary,
            "RightValue": {"Get": "Parameters.MetricThreshold"},
        }
    ]


def test_failure_names_the_metric_its_value_and_the_threshold(doc, settings, primary) -> None:
    message = step(doc, METRIC_BELOW_THRESHOLD)["Arguments"]["ErrorMessage"]["Std:Join"]["Values"]
    path = quality_metric_path(settings)
    assert any(path in part for part in message if isinstance(part, str))
    assert primary in message
    assert {"Get": "Parameters.MetricThreshold"} in message


def test_bias_gets_the_facet_and_positive_outcome_of_pyproject(doc, table) -> None:
    bias = table.get("bias") or {}
    arguments = step(doc, CHECK_BIAS)["Arguments"]["AppSpecification"].get("ContainerArguments")
    if bias.get("facet"):
        assert arguments == [
            "--facet",
            bias["facet"],
            "--positive-outcome",
            str(bias["positive_outcome"]),
        ]
    else:
        assert not arguments


def test_register_creates_a_pending_version_with_metrics_and_metadata(doc, table, settings) -> None:
    args = step(doc, REGISTER_MODEL)["Arguments"]
    assert args["ModelPackageGroupName"] == table["model_package_group"]
    assert args["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    spec = args["InferenceSpecification"]
    assert [(c["Image"], c["ModelDataUrl"]) for c in spec["Containers"]] == [
        (settings.image_uri, best_model(settings))
    ]
    assert spec["SupportedContentTypes"] == ["text/csv", "application/json"]
    assert spec["SupportedResponseMIMETypes"] == ["application/json"]
    statistics = args["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics["ContentType"] == "application/json"
    assert statistics["S3Uri"]["Std:Join"]["Values"] == [
        {"Get": f"Steps.{EVALUATE}.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri"},
        "evaluation.json",
    ]
    metadata = args["CustomerMetadataProperties"]
    assert {k: v for k, v in metadata.items() if k.startswith("hyperparameter:")} == {
        f"hyperparameter:{k}": (
            {"Get": f"Steps.{TUNE}.BestTrainingJob.TunedHyperParameters['{k}']"}
            if k in settings.search_space
            else v
        )
        for k, v in settings.hyperparameters.items()
    }
    assert metadata["tuning_job"] == {"Get": f"Steps.{TUNE}.HyperParameterTuningJobName"}


def test_the_offline_session_refuses_aws_calls_by_name(settings) -> None:
    client = sdk.offline_boto_session(settings.region).client("s3")
    with pytest.raises(sdk.OfflineBuildError, match=r"^s3\.ListBuckets: "):
        client.list_buckets()


# One more build each: the image and the KMS key reach the jobs alike for every problem type, so
# the default render's build is enough (the suite's time budget).
@pytest.mark.parametrize("root", [DEFAULT_PROBLEM_TYPE], indirect=True)
def test_cli_prints_the_same_definition_for_another_image(doc, root, settings, capsys) -> None:
    """One more build, through ``python -m pipelines.pipeline``'s function: deterministic, and
    the image comes from the caller."""
    image = settings.image_uri.rsplit(":", 1)[0] + ":0123456789abcdef"
    with repo_on_path(root):
        from ci_scripts.pipeline_module import load_module

        pipeline = load_module(root)
        argv = ["--root", str(root), "--image-uri", image]
        assert print_definition(argv, "pipelines.pipeline", pipeline.definition) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(doc).replace(settings.image_uri, image))


def test_data_baseline_is_our_image_on_the_preprocess_baseline_and_the_model(doc, settings) -> None:
    baseline = step(doc, DATA_BASELINE)
    assert baseline["Arguments"]["AppSpecification"]["ContainerEntrypoint"][-1] == "baseline"
    assert "QualityCheck" not in json.dumps(doc) and "model-monitor" not in json.dumps(doc)
    assert inputs_by_name(baseline) == {
        "model": (best_model(settings), "/opt/ml/processing/model"),
        "baseline_dataset": (preprocess_output("baseline"), "/opt/ml/processing/baseline_dataset"),
    }
    (output,) = baseline["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    assert output["S3Output"]["LocalPath"] == "/opt/ml/processing/baseline"


@pytest.mark.parametrize(("name", "output"), [(CHECK_BIAS, "bias"), (EXPLAIN, "explainability")])
def test_bias_and_explain_score_the_trained_model_on_the_test_split(
    doc, settings, name, output
) -> None:
    args = step(doc, name)["Arguments"]
    assert inputs_by_name(step(doc, name)) == {
        "model": (best_model(settings), "/opt/ml/processing/model"),
        "test": (preprocess_output("test"), "/opt/ml/processing/test"),
    }
    (produced,) = args["ProcessingOutputConfig"]["Outputs"]
    assert (produced["OutputName"], produced["S3Output"]["LocalPath"]) == (
        output,
        f"/opt/ml/processing/{output}",
    )


def test_register_attaches_baseline_bias_and_explainability(doc) -> None:
    args = step(doc, REGISTER_MODEL)["Arguments"]
    metrics, drift = args["ModelMetrics"], args["DriftCheckBaselines"]
    baseline_output = (
        f"Steps.{DATA_BASELINE}.ProcessingOutputConfig.Outputs['baseline'].S3Output.S3Uri"
    )
    for part, file in (("Statistics", "statistics.json"), ("Constraints", "constraints.json")):
        for holder in (metrics, drift):
            assert holder["ModelDataQuality"][part]["S3Uri"]["Std:Join"]["Values"] == [
                {"Get": baseline_output},
                file,
            ]
    for section, name, output in (
        ("Bias", CHECK_BIAS, "bias"),
        ("Explainability", EXPLAIN, "explainability"),
    ):
        assert metrics[section]["Report"]["S3Uri"]["Std:Join"]["Values"] == [
            {"Get": f"Steps.{name}.ProcessingOutputConfig.Outputs['{output}'].S3Output.S3Uri"},
            "analysis.json",
        ]


def kms_key(project: ProjectConfig) -> str:
    return (
        f"arn:aws:kms:{project.region}:{project.accounts['dev']}:key/"
        "1234abcd-12ab-34cd-56ef-1234567890ab"
    )


def test_without_a_kms_key_no_job_names_one(doc) -> None:
    assert "KmsKeyId" not in json.dumps(doc)


@pytest.mark.parametrize("root", [DEFAULT_PROBLEM_TYPE], indirect=True)
def test_the_kms_key_encrypts_every_job_volume_and_output(project) -> None:
    """kms_key_arn from [tool.sagemaker-gitops]: every processing and training job's storage
    volume and S3 output use it (one more build, with the key)."""
    key = kms_key(project)
    # training on ml.g5 (local NVMe storage): SageMaker refuses a VolumeKmsKeyId there
    # (API_ResourceConfig), so only its output is keyed; processing on ml.m5 (EBS) keeps both
    keyed = build_definition(
        dataclasses.replace(project, kms_key_arn=key, training_instance_type="ml.g5.xlarge")
    )
    jobs = [s for s in all_steps(keyed).values() if s["Type"] in {"Processing", "Training"}]
    jobs += [s for s in all_steps(keyed).values() if s["Type"] == "QualityCheck"]
    assert len(jobs) >= 5
    for job in jobs:
        arguments = job["Arguments"]
        if job["Type"] == "Training":
            assert "VolumeKmsKeyId" not in arguments["ResourceConfig"]
            assert arguments["OutputDataConfig"]["KmsKeyId"] == key
        else:
            assert arguments["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == key
            assert arguments["ProcessingOutputConfig"]["KmsKeyId"] == key
