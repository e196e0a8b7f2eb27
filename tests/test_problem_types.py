"""Each problem type renders a working repo: its own suite passes and its local loop runs.

One render per problem type (tests/option_matrix.py). The default (binary classification) render's
suite runs in test_render and its loop in test_demo (``make demo``); the others run both here:
the generated repo's tests (the platform's runtime tests marked ``same_for_every_model`` run on
the default render only), then pipeline -> propose -> deploy staging -> smoke test -> monitor
with the real CLI on the local backend, which serves the model under gunicorn as the image does.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from option_matrix import DEFAULT_PROBLEM_TYPE, PROBLEM_TYPES, problem_type_answers
from test_render import failure_report, run_own_suite

from scripts.demo import Demo

OTHER_TYPES = [kind for kind in PROBLEM_TYPES if kind != DEFAULT_PROBLEM_TYPE]


def model_declarations(repo: Path) -> dict[str, object]:
    """PROBLEM_TYPE and PRIMARY_METRIC of the render's model.py (run as a file)."""
    code = (
        "import runpy, json, sys; m = runpy.run_path(sys.argv[1]); "
        "print(json.dumps({k: m[k] for k in ('PROBLEM_TYPE', 'PRIMARY_METRIC')}))"
    )
    model_py = next((repo / "src").glob("*/model.py"))
    out = subprocess.run(
        [sys.executable, "-c", code, str(model_py)],
        capture_output=True,
        text=True,
        check=True,
        cwd=repo,  # model.py imports ci_scripts' declarations, vendored at the root
    )
    return json.loads(out.stdout)


@pytest.mark.parametrize("kind", PROBLEM_TYPES)
def test_each_problem_type_renders_its_own_model_and_data(bake_once, kind: str) -> None:
    repo = bake_once(**problem_type_answers(kind))
    declared = model_declarations(repo)
    assert declared["PROBLEM_TYPE"] == kind
    header = (repo / "data" / "dataset.csv").read_text().splitlines()[0].split(",")
    features_py = next((repo / "src").glob("*/schema.py")).read_text()
    assert header[0] == "target"
    assert all(f'"{name}"' in features_py for name in header[1:])
    table = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["sagemaker-gitops"]
    assert table["bias"]["facet"] in header[1:]
    assert "{%" not in (repo / "data" / "dataset.csv").read_text()


def test_problem_types_render_different_data(bake_once) -> None:
    headers = {
        (bake_once(**problem_type_answers(kind)) / "data" / "dataset.csv")
        .read_text()
        .splitlines()[0]
        for kind in PROBLEM_TYPES
    }
    assert len(headers) == len(PROBLEM_TYPES)


@pytest.mark.slow
@pytest.mark.parametrize("kind", OTHER_TYPES)
def test_problem_type_repo_passes_its_suite_and_runs_the_local_loop(
    bake_once, tmp_path: Path, kind: str
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(bake_once(**problem_type_answers(kind)), repo, symlinks=True)
    suite = run_own_suite(repo, model_dependent_only=True)  # the rest: test_render, default
    assert suite.returncode == 0, failure_report(suite.stdout + suite.stderr)

    demo = Demo(tmp_path)
    demo.repo = repo
    try:
        registered = demo.run_pipeline()
        assert "registered" in registered.lower() or "version" in registered.lower(), registered
        demo.propose("staging")
        body = (repo / "pr-body-staging.md").read_text()
        primary = model_declarations(repo)["PRIMARY_METRIC"]
        assert f"**{primary}** (primary" in body  # the PR names the model's primary metric
        demo.merge()
        demo.deploy("staging")
        smoke = demo.smoke("staging")
        assert smoke.startswith("smoke-test staging: OK"), smoke
        monitor = demo.cli("monitor", "--env", "staging")
        assert monitor.returncode == 0, monitor.stdout + monitor.stderr
        # the monitor read the smoke test's captures (a model answer it could not read would
        # be skipped, leaving 0 rows and NoData)
        checked = re.search(r"(\d+) captured rows, (\w+)", monitor.stdout)
        assert checked and int(checked[1]) > 0, monitor.stdout
        assert checked[2] in ("Completed", "CompletedWithViolations"), monitor.stdout
        status = demo.cli("status", "--format", "json")
        staging = json.loads(status.stdout)["environments"][0]
        assert staging["primary_metric"] == primary
        assert staging["primary_metric_value"] is not None
    finally:
        demo.down()
