"""The rendered template on the local backend: the real definition, step code and server."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_testkit import running_pids

from ci_scripts.backends.local.backend import LocalBackend
from ci_scripts.project import ProjectConfig

TEMPLATE = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Default answers, no hooks; ci_scripts vendored as the post-gen hook does."""
    from cookiecutter.main import cookiecutter

    out = tmp_path_factory.mktemp("render")
    root = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(out), accept_hooks=False))
    shutil.copytree(
        TEMPLATE / "ci_scripts", root / "ci_scripts", ignore=shutil.ignore_patterns("__pycache__")
    )
    return root


@pytest.fixture
def backend(
    rendered: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalBackend]:
    monkeypatch.setenv("CI_SCRIPTS_CACHE_DIR", str(tmp_path / "user-cache"))  # build it for real
    local = LocalBackend(ProjectConfig.load(rendered))
    try:
        yield local
    finally:
        local.down()
        assert running_pids(local) == []


@pytest.mark.slow  # a whole local pipeline run
def test_real_pipeline_registers_a_version_that_serves_predictions(backend: LocalBackend) -> None:
    run = backend.run_pipeline(wait=True)

    assert run.status == "Succeeded", run.failure_reason
    succeeded = [s["name"] for s in run.steps if s["status"] == "Succeeded"]
    # Steps start in dependency order; the three model reports run side by side.
    assert succeeded[0] == "Preprocess" and succeeded[-2:] == ["CheckMetric", "RegisterModel"]
    assert sorted(succeeded[1:-2]) == [
        "CheckBias",
        "DataBaseline",
        "Evaluate",
        "Explain",
        "Tune",
    ]
    assert backend.last_run_definition_cached is False
    # The build that imported the SDK cached the monitoring definition too: `monitor` needs none.
    from ci_scripts.backends.local.definition import load_definition
    from ci_scripts.monitoring import MONITORING_MODULE

    assert backend.project.monitoring
    monitoring_definition, cached = load_definition(
        backend.project, backend.state, MONITORING_MODULE
    )
    assert cached and [s["Name"] for s in monitoring_definition["Steps"]] == ["Monitor"]
    version = backend.get_version(backend.project.model_package_group, run.registered_version)
    assert version.metrics["auc"] >= 0.9
    assert version.image_uri.endswith(":" + _image_tag(backend.project.root))
    assert version.baseline_uri and backend.state.s3_path(version.baseline_uri).is_file()
    assert version.baseline_uri.endswith("/statistics.json")  # what the monitor reads
    assert sorted(version.reports) == [
        "bias",
        "data_constraints",
        "data_statistics",
        "explainability",
    ]
    assert all(backend.state.s3_path(uri).is_file() for uri in version.reports.values())
    assert version.checks["data_statistics"] == {"features": 30, "rows": 455}
    assert {"DPL", "DPPL", "facet"} <= set(version.checks["bias"])
    assert len(version.checks["explainability"]["top"]) == 3

    manifest = json.loads(backend.project.manifest_path("staging").read_text())
    state = backend.deploy("staging", manifest, version)
    assert state.status == "InService" and state.model_version == version.version

    header, *rows = (backend.project.root / "data" / "dataset.csv").read_text().splitlines()
    target = header.split(",").index("target")
    features = [",".join(v for i, v in enumerate(r.split(",")) if i != target) for r in rows[:3]]
    status, body = backend.invoke("staging", ("\n".join(features) + "\n").encode())
    assert status == 200, body
    assert len(json.loads(body)["predictions"]) == 3

    again = backend.run_pipeline()
    assert backend.last_run_definition_cached is True
    jobs = [s for s in again.steps if s["type"] in ("Processing", "Training", "Tuning")]
    assert all(s["cache_hit"] for s in jobs), [(s["name"], s["cache_hit"]) for s in jobs]


def _image_tag(root: Path) -> str:
    from ci_scripts.imagetag import image_tag

    return image_tag(root)
