"""boto3 clients for the aws backend: one session, adaptive retries, created on first use.

Adaptive retry mode backs off on throttling (SageMaker's control plane throttles readily when
several workflows poll at once) and rate-limits the client, so no call site retries by hand.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import boto3
from botocore.config import Config

from ci_scripts import __version__
from ci_scripts.backends.aws.errors import aws_errors

RETRIES = {"mode": "adaptive", "max_attempts": 10}
# Operations that change nothing (every other call counts as a write).
READS = ("Describe", "List", "Get", "Head", "Search", "Query")


def client_config() -> Config:
    return Config(retries=dict(RETRIES), user_agent_extra=f"sagemaker-gitops/{__version__}")


class AwsClients:
    """Cache of boto3 clients for one region.

    Pass ``session`` to control credentials or to register botocore event hooks (tests count
    calls and inject throttling through ``session.events`` before the first client is made).
    """

    def __init__(self, region: str, session: boto3.session.Session | None = None) -> None:
        self.region = region
        self.session = session or boto3.session.Session()
        self._clients: dict[str, Any] = {}
        self._account: str | None = None
        self._assumed: dict[str, AwsClients] = {}
        # How many write calls these clients have made: a read remembered at one count is
        # still what is there while the count stays (aws.endpoints: describe once per command).
        self.writes = 0
        # CloudWatch alarms by name (None: none of that name), read at ``_alarms_read``, and the
        # names a later step of the command will ask for (read with the first ask).
        self._alarms: dict[str, dict[str, Any] | None] = {}
        self._alarms_read = -1
        self._alarms_expected: set[str] = set()

    def account(self) -> str:
        """The account these credentials belong to (one STS call, remembered)."""
        if self._account is None:
            with aws_errors("AWS credentials"):
                self._account = self("sts").get_caller_identity()["Account"]
        return self._account

    def as_role(self, role_arn: str, session_name: str) -> AwsClients:
        """Clients acting as ``role_arn`` (assumed once; another account's read-only view)."""
        if role_arn not in self._assumed:
            with aws_errors(f"role {role_arn}"):
                credentials = self("sts").assume_role(
                    RoleArn=role_arn, RoleSessionName=session_name[:64], DurationSeconds=900
                )["Credentials"]
            session = boto3.session.Session(
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
                region_name=self.region,
            )
            self._assumed[role_arn] = AwsClients(self.region, session)
        return self._assumed[role_arn]

    def expect_alarms(self, names: Iterable[str]) -> None:
        """Say that this command will read the alarms ``names`` (replacing what was said
        before; nothing: ``()``): the next DescribeAlarms asks for them too (a deploy reads the
        endpoint's rollback alarms and the monitor's in one call)."""
        self._alarms_expected = set(names)

    def describe_alarms(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """The metric alarms among ``names`` that exist, by name: one DescribeAlarms for every
        name asked or expected, answered again from that read while these clients wrote
        nothing since (SageMaker-side throttling aside, each Describe* is a call a no-op
        deploy need not make twice). At most 100 names (DescribeAlarms' AlarmNames)."""
        if self._alarms_read != self.writes:
            self._alarms, self._alarms_read = {}, self.writes
        missing = {name for name in names if name not in self._alarms}
        if missing:
            ask = sorted(missing | (self._alarms_expected - self._alarms.keys()))[:100]
            listed = self("cloudwatch").describe_alarms(AlarmNames=ask)["MetricAlarms"]
            found = {alarm["AlarmName"]: alarm for alarm in listed}
            self._alarms.update({name: found.get(name) for name in ask})
            self._alarms_expected -= set(ask)
        return {name: alarm for name in names if (alarm := self._alarms.get(name)) is not None}

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            client = self.session.client(service, region_name=self.region, config=client_config())
            client.meta.events.register("before-call", self._count_write)
            self._clients[service] = client
        return self._clients[service]

    def _count_write(self, model: Any, **_: Any) -> None:
        if not model.name.startswith(READS):
            self.writes += 1
