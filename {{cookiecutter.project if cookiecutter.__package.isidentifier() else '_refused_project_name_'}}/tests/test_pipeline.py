"""This repo's pipeline (pipelines/pipeline.py) builds offline, with the platform's steps and any
of yours; the platform's template tests check what each of its steps does."""

from pathlib import Path

from ci_scripts.pipelines.settings import PipelineSettings
from pipelines.pipeline import definition

REPO = Path(__file__).resolve().parents[1]


def test_the_definition_builds_with_the_training_line() -> None:
    doc = definition(PipelineSettings.from_pyproject(REPO))
    names = [step["Name"] for step in doc["Steps"]]
    assert {"Preprocess", "Tune", "Evaluate", "CheckMetric"} <= set(names), names
