"""Which workflow job runs which ci_scripts command, with which role, and the OIDC ``sub`` GitHub
gives it: read from the rendered .github/workflows, so a new step needs no change here.

The ``sub`` claim (GitHub docs, "OpenID Connect reference" / "About security hardening with
OpenID Connect", subject claim examples): ``repo:<owner>/<repo>:environment:<name>`` for a job
that declares an environment, ``repo:<owner>/<repo>:pull_request`` for a pull_request event,
``repo:<owner>/<repo>:ref:<ref>`` otherwise. Repositories created on or after 2026-07-15 get
immutable claims by default (changelog 2026-04-23): ``repo:<owner>@<owner_id>/<repo>@<repo_id>``
in place of ``repo:<owner>/<repo>``. ``aud`` is ``sts.amazonaws.com`` with
aws-actions/configure-aws-credentials. A reusable workflow's jobs get the caller's event and ref.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import parsed_files
from iam_recorder import command_key

CREDENTIALS_ACTION = "aws-actions/configure-aws-credentials"
CLI = re.compile(r"python -m ci_scripts --backend aws ([^\n|&;>]+)")


@dataclass(frozen=True)
class Job:
    workflow: str  # file name, e.g. deploy.yml
    name: str  # job id
    role_name: str  # role-to-assume, after role/
    role_account: str  # the account in the rendered role ARN
    environment: str | None
    duration_seconds: int  # role-duration-seconds (configure-aws-credentials default: 3600)
    timeout_minutes: int
    events: tuple[str, ...]  # what starts it: push, schedule, workflow_dispatch, ...
    commands: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        return f"{self.workflow}:{self.name}"


def _expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{\{\s*env\.(\w+)\s*\}\}", lambda m: env[m[1]], value)


def _events(workflow: dict[str, Any], callers: dict[str, tuple[str, ...]], file: str) -> tuple:
    on = workflow.get("on", workflow.get(True, {}))  # PyYAML reads `on` as True
    names = [on] if isinstance(on, str) else list(on)
    events = [n for n in names if n != "workflow_call"]
    if "workflow_call" in names:
        events += callers.get(file, ())
    return tuple(sorted(set(events)))


# A reusable workflow of the same repository: ``./.github/workflows/x.yml`` or the
# self-repository form ``$/.github/workflows/x.yml`` the rendered workflows use (no @ref: the
# caller's commit). Another repository's workflow (owner/repo/...@ref) is not ours to read.
SELF_WORKFLOW = re.compile(r"(?:\./|\$/)\.github/workflows/([^/@]+\.ya?ml)")


def called_workflow(uses: str) -> str | None:
    """The file name of the same-repository reusable workflow ``uses`` calls, else None."""
    match = SELF_WORKFLOW.fullmatch(uses.strip())
    return match[1] if match else None


def load_jobs(project: Path) -> list[Job]:
    """Every job that assumes an AWS role, with the ci_scripts commands it runs."""
    files = sorted((project / ".github" / "workflows").glob("*.yml"))
    workflows = {p.name: parsed_files.workflow(p) for p in files}
    callers: dict[str, tuple[str, ...]] = {}
    for _ in range(3):  # reusable workflows inherit their callers' events
        for file, workflow in workflows.items():
            for job in workflow.get("jobs", {}).values():
                called = called_workflow(str(job.get("uses", "")))
                if called:
                    inherited = _events(workflow, callers, file)
                    callers[called] = tuple(sorted(set(callers.get(called, ())) | set(inherited)))
    jobs = []
    for file, workflow in workflows.items():
        env = {k: str(v) for k, v in (workflow.get("env") or {}).items()}
        for name, job in (workflow.get("jobs") or {}).items():
            steps = job.get("steps") or []
            credentials = [
                s for s in steps if str(s.get("uses", "")).startswith(CREDENTIALS_ACTION)
            ]
            if not credentials:
                continue
            assert len(credentials) == 1, f"{file}:{name}: one role per job"
            inputs = credentials[0]["with"]
            arn = _expand(str(inputs["role-to-assume"]), {**env, **(job.get("env") or {})})
            match = re.fullmatch(r"arn:aws:iam::(\d{12}):role/(.+)", arn)
            assert match, f"{file}:{name}: role-to-assume {arn!r} is not a role ARN"
            environment = job.get("environment")
            if isinstance(environment, dict):
                environment = environment.get("name")
            commands = []
            for step in steps:
                for found in CLI.finditer(str(step.get("run", ""))):
                    commands.append(command_key(shlex.split(found[1])))
            jobs.append(
                Job(
                    workflow=file,
                    name=name,
                    role_name=match[2],
                    role_account=match[1],
                    environment=environment,
                    duration_seconds=int(inputs.get("role-duration-seconds", 3600)),
                    timeout_minutes=int(job.get("timeout-minutes", 360)),
                    events=_events(workflow, callers, file),
                    commands=tuple(dict.fromkeys(commands)),
                )
            )
    return jobs


def jobs_running(jobs: list[Job], command: str) -> list[Job]:
    return [job for job in jobs if command in job.commands]


def subjects(job: Job, repo: str) -> list[str]:
    """The ``sub`` claims GitHub gives ``job`` for each event that starts it (``repo`` is
    ``owner/name`` or, immutable form, ``owner@id/name@id``). Jobs guarded to main run on main:
    push/schedule/dispatch on main give ``ref:refs/heads/main``."""
    if job.environment:
        return [f"repo:{repo}:environment:{job.environment}"]
    found = []
    for event in job.events:
        if event in ("pull_request", "pull_request_target"):
            found.append(f"repo:{repo}:pull_request")
        else:
            found.append(f"repo:{repo}:ref:refs/heads/main")
    return sorted(set(found))
