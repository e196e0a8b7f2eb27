"""The monitoring pipeline's definition (ci_scripts.pipelines.monitoring, built for a rendered
repo): one uncached Processing step of the repo's image running ``monitor``, every input a
parameter (EventBridge Scheduler sends them), reports per execution."""

from __future__ import annotations

from typing import Any

import pytest

from ci_scripts.monitoring import MONITORING_MODULE
from ci_scripts.pipeline_module import build_definition
from ci_scripts.pipelines import monitoring
from ci_scripts.pipelines.settings import PipelineSettings
from ci_scripts.project import ProjectConfig


@pytest.fixture(scope="module")
def project(bake_once) -> ProjectConfig:
    return ProjectConfig.load(bake_once())


@pytest.fixture(scope="module")
def settings(project: ProjectConfig) -> PipelineSettings:
    return PipelineSettings.from_project(project)


@pytest.fixture(scope="module")
def doc(project: ProjectConfig) -> dict[str, Any]:
    """What both backends build: the platform's module, for the repo's settings."""
    assert monitoring.__name__ == MONITORING_MODULE
    return build_definition(project, MONITORING_MODULE, image_tag="latest")


def test_one_uncached_processing_step_of_our_image_runs_the_monitor(doc, settings) -> None:
    (step,) = doc["Steps"]
    assert (step["Name"], step["Type"]) == (monitoring.MONITOR, "Processing")
    assert step["CacheConfig"]["Enabled"] is False  # every run must see the new traffic
    app = step["Arguments"]["AppSpecification"]
    assert app["ImageUri"] == settings.image_uri
    assert app["ContainerEntrypoint"] == ["python", "-m", "ci_scripts.runtime", "monitor"]
    assert step["Arguments"]["Environment"] == {
        "MONITOR_CONFIG": {"Get": "Parameters.MonitorConfig"}
    }
    cluster = step["Arguments"]["ProcessingResources"]["ClusterConfig"]
    assert cluster["InstanceType"] == {"Get": "Parameters.ProcessingInstanceType"}
    defaults = {p["Name"]: p.get("DefaultValue") for p in doc["Parameters"]}
    assert defaults["ProcessingInstanceType"] == settings.processing_instance_type


def test_every_input_is_a_parameter_and_reports_go_per_execution(doc) -> None:
    (step,) = doc["Steps"]
    inputs = {
        i["InputName"]: (i["S3Input"]["S3Uri"], i["S3Input"]["LocalPath"])
        for i in step["Arguments"]["ProcessingInputs"]
    }
    assert inputs == {
        folder: ({"Get": f"Parameters.{parameter}"}, f"/opt/ml/processing/input/{folder}")
        for parameter, folder in monitoring.INPUT_PARAMETERS.items()
    }
    outputs = {
        o["OutputName"]: o["S3Output"]
        for o in step["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    }
    assert outputs["report"]["S3Uri"] == {
        "Std:Join": {
            "On": "/",
            "Values": [{"Get": "Parameters.ReportsUrl"}, {"Get": "Execution.PipelineExecutionId"}],
        }
    }
    assert outputs["state"]["S3Uri"] == {"Get": "Parameters.StateUrl"}  # the next run's input


def test_the_role_is_the_one_ci_scripts_passes(project) -> None:
    """An environment's monitor runs as the execution role of the account hosting it."""
    role = project.role_arn("prod")
    doc = build_definition(project, MONITORING_MODULE, image_tag="latest", role_arn=role)
    assert doc["Steps"][0]["Arguments"]["RoleArn"] == role
