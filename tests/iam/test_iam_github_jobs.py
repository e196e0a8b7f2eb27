"""github_jobs reads who runs what from the rendered workflows: a reusable workflow's jobs run
for their callers' events, whichever same-repository form the call uses."""

from __future__ import annotations

from pathlib import Path

import pytest
from github_jobs import called_workflow, load_jobs
from option_matrix import DEFAULT_COMBINATION

CALLED = """\
on:
  workflow_call:
  workflow_dispatch:
jobs:
  work:
    runs-on: ubuntu-latest
    steps:
      - uses: aws-actions/configure-aws-credentials@0000000000000000000000000000000000000000
        with:
          role-to-assume: arn:aws:iam::111111111111:role/p-github-deploy-dev
      - run: python -m ci_scripts --backend aws status
"""


@pytest.mark.parametrize("form", ["./", "$/"])
def test_a_reusable_workflow_inherits_its_callers_events(tmp_path: Path, form: str) -> None:
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "called.yml").write_text(CALLED)
    (workflows / "caller.yml").write_text(
        f"on:\n  pull_request:\n  schedule:\n    - cron: '0 3 * * 1'\njobs:\n"
        f"  call:\n    uses: {form}.github/workflows/called.yml\n"
    )
    (job,) = load_jobs(tmp_path)
    assert job.events == ("pull_request", "schedule", "workflow_dispatch")


def test_only_same_repository_workflows_are_followed() -> None:
    assert called_workflow("$/.github/workflows/propose.yml") == "propose.yml"
    assert called_workflow("./.github/workflows/build-image.yaml") == "build-image.yaml"
    assert called_workflow("$/.github/actions/open-pull-request") is None
    assert called_workflow("other/repo/.github/workflows/x.yml@0123abc") is None


def test_the_rendered_propose_job_runs_for_train_s_events(bake_once) -> None:
    """train.yml calls propose.yml (``$/``): the propose job runs on train's push and schedule,
    so its OIDC subjects are those of main's push and schedule too."""
    jobs = {str(job): job for job in load_jobs(bake_once(**DEFAULT_COMBINATION))}
    assert {"push", "schedule"} <= set(jobs["propose.yml:propose"].events)
