"""MLflow tracking of local pipeline runs (ci_scripts/backends/local/tracking.py): what a run
records, the link the registered version carries for the proposal, and the switch that turns it
off (the suite runs with it off, tests/conftest.py)."""

from __future__ import annotations

import importlib.util

import pytest

from ci_scripts.backends.local import tracking

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mlflow") is None, reason="mlflow (the tracking extra) not installed"
)


@pytest.mark.slow  # a local run tracked by MLflow
def test_a_run_is_recorded_and_its_version_links_it(
    registered, backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    monkeypatch.setenv(tracking.SWITCH, "1")
    version = registered()

    link = version.training.get("mlflow_run")
    assert link and link.startswith(f"{tracking.UI_URL}/#/experiments/"), version.training
    experiment_id, run_id = link.split("/")[-3], link.split("/")[-1]
    uri, _ = tracking.store(backend.state.home)
    client = mlflow.MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    assert run.info.experiment_id == experiment_id
    assert run.info.status == "FINISHED"
    assert run.data.tags["status"] == "Succeeded"
    assert run.data.tags["pipeline_execution_id"] == run.info.run_name
    assert "validation:auc" in run.data.metrics  # the training job's metric
    assert any(name.startswith("parameter.") for name in run.data.params)


def test_the_switch_turns_tracking_off(registered, backend, monkeypatch) -> None:
    monkeypatch.setenv(tracking.SWITCH, "0")
    version = registered()
    assert "mlflow_run" not in version.training
    assert not (backend.state.home / "mlflow").exists()
