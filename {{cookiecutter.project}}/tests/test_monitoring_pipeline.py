"""The monitoring pipeline's definition: one uncached Processing step of this repo's image running
``monitor``, every input a parameter (EventBridge Scheduler sends them), reports per execution."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipelines import monitoring
from pipelines.settings import PipelineSettings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def settings() -> PipelineSettings:
    return PipelineSettings.from_pyproject(ROOT)


@pytest.fixture(scope="module")
def doc(settings: PipelineSettings) -> dict[str, Any]:
    return monitoring.definition(settings)


def test_one_uncached_processing_step_of_our_image_runs_the_monitor(doc, settings) -> None:
    (step,) = doc["Steps"]
    assert (step["Name"], step["Type"]) == (monitoring.MONITOR, "Processing")
    assert step["CacheConfig"]["Enabled"] is False  # every run must see the new traffic
    app = step["Arguments"]["AppSpecification"]
    assert app["ImageUri"] == settings.image_uri
    assert app["ContainerEntrypoint"] == ["python", "-m", settings.package, "monitor"]
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
