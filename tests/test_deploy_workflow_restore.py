"""The deploy workflow restores the previous version when a smoke test fails (issue 4)."""

from __future__ import annotations

import re

from scripts.template_layout import PROJECT_TEMPLATE

DEPLOY_YML = PROJECT_TEMPLATE / ".github" / "workflows" / "deploy.yml"


def test_every_smoke_test_in_deploy_rolls_back_on_failure() -> None:
    text = DEPLOY_YML.read_text(encoding="utf-8")
    calls = re.findall(r"python -m ci_scripts [^\n]*smoke-test --env (\w+)([^\n]*)", text)
    assert {env for env, _ in calls} == {"staging", "prod"}
    for env, rest in calls:
        assert "--rollback-on-failure" in rest, f"smoke-test --env {env} does not roll back"
        assert '--commit "$GITHUB_SHA"' in rest
