"""Record every AWS request the CLI makes, with who makes it, for the IAM judge.

A ``before-call`` hook on the aws backend's session sees each operation and its parameters
(after validation, before sending). moto runs one world, so the harness plays the account
layout instead: the project's ``[tool.sagemaker-gitops.accounts]`` are the layout's, the
credentials report the account of the role the command's workflow job assumes
(``AwsClients.account``), and ``AwsClients.as_role`` records the ``sts:AssumeRole`` request and
hands back clients that are recorded as that role (the same moto world serves them).

Each request keeps the CLI command that made it (``deploy --env staging``): the judge maps the
command to the workflow job that runs it, and the job to the role it assumes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aws_harness import AwsHarness, aws_harness

from ci_scripts.backends.aws.backend import AwsBackend
from ci_scripts.backends.aws.session import AwsClients
from ci_scripts.project import ProjectConfig


@dataclass(frozen=True)
class Request:
    """One AWS API request: what the CLI sent, and as whom."""

    command: str  # the CLI command that made it, e.g. "deploy --env staging"
    identity: str | None  # None: the job's own role; else the ARN of a role the CLI assumed
    service: str  # botocore service name (sagemaker, s3, sts, ...)
    operation: str  # API operation (CreateModel)
    params: dict[str, Any] = field(hash=False, compare=False)
    # "<service>: <what>" when an AWS service makes the call as ``identity`` (SageMaker running
    # a job as its execution role: tests/iam/execution_role.py); "" for the CLI's own calls.
    via: str = ""

    def __str__(self) -> str:
        return f"{self.service}:{self.operation}"


def command_key(args: tuple[str, ...] | list[str]) -> str:
    """``deploy --env staging --commit x`` -> ``deploy --env staging``: the command and the
    flags that choose the environment, the part a workflow step and a test share."""
    words = [a for a in args if a]
    if not words:
        return ""
    key = [words[0]]
    for flag in ("--env", "--from", "--to"):
        if flag in words and words.index(flag) + 1 < len(words):
            key += [flag, words[words.index(flag) + 1]]
    return " ".join(key)


class RecordingHarness(AwsHarness):
    """AwsHarness whose CLI calls are recorded as :class:`Request` per command."""

    def __init__(self, root: Path, kms_key_arn: str = "", **answers: str) -> None:
        self.requests: list[Request] = []
        self.command = ""
        self.job_accounts: dict[str, str] = {}  # command key -> account of its job's role
        super().__init__(root, **answers)
        if kms_key_arn:
            self.use_kms_key(kms_key_arn)
        self.session.events.register_first("provide-client-params", self._request(None))

    def use_kms_key(self, arn: str) -> None:
        """Set [tool.sagemaker-gitops].kms_key_arn, as a team does after the bootstrap."""
        path = self.project.root / "pyproject.toml"
        text = path.read_text("utf-8")
        assert 'kms_key_arn = ""' in text, "the rendered pyproject has no empty kms_key_arn"
        path.write_text(text.replace('kms_key_arn = ""', f'kms_key_arn = "{arn}"', 1), "utf-8")
        self.commit("use the project KMS key")
        self.project = ProjectConfig.load(self.project.root)
        self.backend = AwsBackend(
            self.project, session=self.session, waiter_delay=0, shadow_wait=self._shadow_window
        )

    def _request(self, identity: str | None) -> Any:
        def record(params: dict[str, Any], model: Any, **_: Any) -> None:
            if self.command:
                self.requests.append(
                    Request(
                        self.command,
                        identity,
                        model.service_model.service_name,
                        model.name,
                        json.loads(json.dumps(params, default=str)),
                    )
                )

        return record

    def cli(self, *args: str, env: dict[str, str] | None = None) -> Any:
        self.command = command_key(args)
        try:
            return super().cli(*args, env=env)
        finally:
            self.command = ""

    # -- the account layout on one moto world ------------------------------------------------
    def caller_account(self, clients: AwsClients) -> str:
        assumed = getattr(clients, "assumed_role", None)
        if assumed:
            return assumed.split(":")[4]
        return self.job_accounts.get(self.command, self.project.accounts["dev"])

    def assume(self, parent: AwsClients, role_arn: str, session_name: str) -> AwsClients:
        """Record the AssumeRole request; serve the role from the same moto world."""
        if role_arn not in parent._assumed:
            params = {"RoleArn": role_arn, "RoleSessionName": session_name[:64]}
            identity = getattr(parent, "assumed_role", None)
            self.requests.append(Request(self.command, identity, "sts", "AssumeRole", params))
            child = AwsClients(parent.region, _child_session(self, role_arn))
            child.assumed_role = role_arn  # type: ignore[attr-defined]
            parent._assumed[role_arn] = child
        return parent._assumed[role_arn]


def _child_session(harness: RecordingHarness, role_arn: str) -> Any:
    from aws_harness import new_session

    session = new_session()
    session.events.register_first("provide-client-params", harness._request(role_arn))
    return session


@contextmanager
def recording_harness(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, job_accounts: dict[str, str], **answers: str
) -> Iterator[RecordingHarness]:
    """An aws harness on moto that records requests; ``answers`` set the account layout and
    ``job_accounts`` (command key -> account) the credentials each command runs with."""
    current: list[RecordingHarness] = []
    monkeypatch.setattr(AwsClients, "account", lambda self: current[0].caller_account(self))
    monkeypatch.setattr(
        AwsClients, "as_role", lambda self, arn, name: current[0].assume(self, arn, name)
    )
    with aws_harness(tmp_path, monkeypatch, harness_class=RecordingHarness, **answers) as harness:
        assert isinstance(harness, RecordingHarness)
        harness.job_accounts = job_accounts
        current.append(harness)
        yield harness
