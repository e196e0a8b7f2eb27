"""Running definitions: dependency order, caching, failures, the quality gate, registration."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from ci_scripts.backends.local.backend import LocalBackend
from ci_scripts.backends.local.processes import STDERR_TAIL_LINES


def test_runs_steps_in_dependency_order_and_registers_with_metrics(
    backend: LocalBackend, definition
) -> None:
    run = backend.run_definition(definition())

    assert run.status == "Succeeded", run.failure_reason
    executed = [s["name"] for s in run.steps if s["status"] == "Succeeded"]
    assert executed == ["Preprocess", "Train", "Evaluate", "CheckMetric", "RegisterModel"]
    assert {s["name"]: s["status"] for s in run.steps}["MetricBelowThreshold"] == "Skipped"
    version = backend.get_version("churn-model", run.registered_version)
    assert version.approval_status == "PendingManualApproval"
    assert version.metrics == {"auc": 0.95, "accuracy": 0.9}
    assert version.hyperparameters == {"auc": "0.95"}
    assert version.baseline_uri.endswith(f"/runs/{run.id}/Preprocess/baseline/baseline.csv")
    assert version.arn.endswith(":model-package/churn-model/1")
    # The model artifact is SageMaker's: model.tar.gz of /opt/ml/model under <output>/<job>/output.
    archive = backend.state.s3_path(version.model_data_url)
    assert archive.name == "model.tar.gz" and archive.is_file()
    assert f"/Train/model/pipelines-{run.id}-Train/output/" in version.model_data_url
    # The shipped dataset was uploaded where InputDataUrl's default points.
    uploaded = backend.state.s3_path(
        f"s3://{version.model_data_url.split('/')[2]}/churn-model/data/dataset.csv"
    )
    assert uploaded.read_text() == (backend.project.root / "data/dataset.csv").read_text()
    record = json.loads((backend.state.run_dir(run.id) / "run.json").read_text())
    assert record["status"] == "Succeeded" and record["registered_version"] == 1


def test_rerun_hits_the_cache_until_code_or_inputs_change(
    backend: LocalBackend, definition
) -> None:
    first = backend.run_definition(definition())
    second = backend.run_definition(definition())

    hits = {
        s["name"]: s["cache_hit"] for s in second.steps if s["type"] in ("Processing", "Training")
    }
    assert hits == {"Preprocess": True, "Train": True, "Evaluate": True}
    assert second.registered_version == first.registered_version + 1
    # Cache hits point at the outputs of the run that computed them, as on SageMaker.
    v2 = backend.get_version("churn-model", second.registered_version)
    assert f"/runs/{first.id}/Train/" in v2.model_data_url

    # A changed hyperparameter invalidates Train and what consumes its model, not Preprocess.
    third = backend.run_definition(definition(), {"Auc": "0.97"})
    hits = {
        s["name"]: s["cache_hit"] for s in third.steps if s["type"] in ("Processing", "Training")
    }
    assert hits == {"Preprocess": True, "Train": False, "Evaluate": False}

    # Changed step code (src/) invalidates every step that runs it.
    main = backend.project.root / "src" / "churn_model" / "__main__.py"
    main.write_text(main.read_text() + "\n# changed\n")
    fourth = backend.run_definition(definition())
    assert not any(s["cache_hit"] for s in fourth.steps)

    # Changed input data invalidates from the first step on.
    dataset = backend.project.root / "data" / "dataset.csv"
    dataset.write_text(dataset.read_text() + "0,0.2,2.2\n")
    fifth = backend.run_definition(definition())
    assert not {s["name"] for s in fifth.steps if s["cache_hit"]}


def test_cache_can_be_turned_off_per_step(backend: LocalBackend, definition) -> None:
    backend.run_definition(definition())
    spec = definition()
    for step in spec["Steps"]:
        step["CacheConfig"] = {"Enabled": False}
    again = backend.run_definition(spec)
    assert [s["name"] for s in again.steps if s["cache_hit"]] == []


def test_failing_step_stops_the_run_naming_the_step_and_its_stderr(
    backend: LocalBackend, definition
) -> None:
    run = backend.run_definition(definition(), {"FailTraining": "true"})

    assert run.status == "Failed"
    assert run.failure_reason.startswith("step Train (Training) failed: exited with code 1")
    assert "refusing to train because hyperparameter fail=true" in run.failure_reason
    assert "starting to train" in run.failure_reason  # a tail, not just the last line
    assert "\n" not in run.failure_reason
    statuses = {s["name"]: s["status"] for s in run.steps}
    assert statuses["Preprocess"] == "Succeeded" and statuses["Train"] == "Failed"
    assert "Evaluate" not in statuses and "RegisterModel" not in statuses
    assert run.registered_version is None
    assert backend.list_versions("churn-model") == []
    assert STDERR_TAIL_LINES >= 2


def test_a_dataset_error_names_data_dataset_csv_once(
    backend: LocalBackend, definition, repo: Path
) -> None:
    """The step reads a staged copy under .mlops/runs/<id>/Preprocess/opt_ml/...; the error is
    about the repo's data/dataset.csv, and the step's failure file and its stderr say the same
    thing: the line names the file the team edits, once."""
    dataset = repo / "data" / "dataset.csv"
    dataset.write_text(dataset.read_text() + "0,not-a-number,1.0\n")

    run = backend.run_definition(definition())

    assert run.status == "Failed"
    log = Path(".mlops", "runs", run.id, "Preprocess", "stderr.log")
    assert run.failure_reason == (
        "step Preprocess (Processing) failed: exited with code 1: data/dataset.csv: line 5: "
        f"'not-a-number' is not a number (full log: {log})"
    )


def test_condition_false_runs_the_fail_step_with_its_message(
    backend: LocalBackend, definition
) -> None:
    run = backend.run_definition(definition(), {"Auc": "0.5"})

    assert run.status == "Failed"
    assert run.failure_reason == (
        "step MetricBelowThreshold (Fail) failed: auc 0.5 is below MetricThreshold 0.9"
    )
    failed = {s["name"]: s for s in run.steps}["MetricBelowThreshold"]
    assert failed["failure_reason"] == "auc 0.5 is below MetricThreshold 0.9"
    assert {s["name"]: s["status"] for s in run.steps}["RegisterModel"] == "Skipped"
    assert backend.list_versions("churn-model") == []


def test_missing_input_fails_the_step_naming_the_uri(backend: LocalBackend, definition) -> None:
    missing = "s3://churn-model-artifacts-111111111111-eu-west-1/elsewhere/data.csv"
    run = backend.run_definition(definition(), {"InputDataUrl": missing})
    assert run.status == "Failed"
    assert run.failure_reason.startswith("step Preprocess (Processing) failed:")
    assert missing in run.failure_reason


def test_run_pipeline_uses_the_cached_real_definition(
    backend: LocalBackend, definition, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """run_pipeline reads the definition cache keyed by pipelines/ + pyproject content."""
    from ci_scripts.backends.local import definition as local_definition

    monkeypatch.setenv("CI_SCRIPTS_CACHE_DIR", str(tmp_path / "user-cache"))
    root = backend.project.root
    (root / "pipelines").mkdir()
    (root / "pipelines" / "pipeline.py").write_text("raise RuntimeError('not importable')\n")
    key = local_definition.definition_key(root)
    cached = backend.state.dir("cache") / f"definition-{key}.json"
    cached.write_text(json.dumps(definition()))

    run = backend.run_pipeline({"Auc": "0.96"}, wait=True)
    assert run.status == "Succeeded" and backend.last_run_definition_cached is True

    # Editing pipelines/ changes the key: the (broken) module is imported, and says so.
    (root / "pipelines" / "pipeline.py").write_text("raise RuntimeError('still not importable')\n")
    from ci_scripts.errors import CIError

    with pytest.raises(CIError, match=r"pipelines/pipeline\.py"):
        backend.run_pipeline()


def test_steps_are_shown_as_they_start_and_end_with_times_and_cache_hits(
    backend: LocalBackend, definition
) -> None:
    import io

    from ci_scripts.step_progress import show_steps

    backend.run_definition(definition())  # fills the step cache
    shown = io.StringIO()

    with show_steps(shown):
        result = backend.run_definition(definition())

    assert result.status == "Succeeded"
    lines = shown.getvalue().splitlines()
    steps = [s["name"] for s in result.steps if s["status"] == "Succeeded"]
    for name in steps:
        started = next(i for i, line in enumerate(lines) if line.startswith(f"step {name} ("))
        assert lines[started].endswith(" started")
        ended = [line for line in lines[started + 1 :] if line.startswith(f"step {name} (")]
        assert re.fullmatch(rf"step {name} \(\w+\) succeeded in \d+\.\d s.*", ended[0])
    assert any("cache hit" in line for line in lines)  # the second run reused cached outputs
    assert not logging.getLogger("ci_scripts.steps").handlers  # nothing left behind
