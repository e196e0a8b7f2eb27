"""An interrupted aws deploy says what it left (#29 point 6), on moto, through the CLI.

Ctrl-C (a KeyboardInterrupt) or SIGTERM (ci_scripts.interrupts turns it into one) is raised from
a botocore event hook at one AWS call of the deploy, so every phase is hit exactly where a real
interrupt could land: before any write, after the model and config exist, while UpdateEndpoint
is in flight, while the waiter polls, after the tags, while the monitor follows. Each run must
exit 130 with ONE line on stderr built from what the deploy did (aws.progress), and a rerun must
finish the job.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_harness import AwsHarness, admin_client, aws_harness
from click.testing import Result

from ci_scripts.backends.base import ModelVersion

ENDPOINT = "churn-model-staging"
PIPELINE = "churn-model-staging-batch"


class Tripwire:
    """Interrupt the deploy once, when ``operation`` of ``service`` is about to be sent.

    ``after`` arms it only once that call (``service:Operation``) was made in this deploy, e.g.
    the waiter's DescribeEndpoint after UpdateEndpoint. ``sigterm`` sends the process a real
    SIGTERM instead of raising Ctrl-C's KeyboardInterrupt.
    """

    def __init__(
        self,
        harness: AwsHarness,
        service: str,
        operation: str,
        *,
        after: str | None = None,
        sigterm: bool = False,
    ) -> None:
        self.harness, self.after, self.sigterm = harness, after, sigterm
        self.start = len(harness.calls)
        self.fired = False
        self.event = f"before-call.{service}.{operation}"
        self.events = harness.backend.clients(service).meta.events
        self.events.register_first(self.event, self.trip)

    def trip(self, **_: Any) -> None:
        if self.fired or (self.after and self.after not in self.harness.calls[self.start :]):
            return
        self.fired = True
        self.events.unregister(self.event, self.trip)
        if self.sigterm:
            signal.raise_signal(signal.SIGTERM)
        raise KeyboardInterrupt


def _interrupt(*_: Any, **__: Any) -> Any:
    """A method replaced by this is where Ctrl-C lands."""
    raise KeyboardInterrupt


@pytest.fixture(autouse=True)
def sigterm_ends_the_process() -> Iterator[None]:
    """Python's default for SIGTERM (the process ends) as an exception, so a deploy that does
    not turn SIGTERM into an interrupt fails the test instead of killing the test run; the
    deploy must put this handler back when it ends."""

    def default(signum: int, frame: Any) -> None:
        raise SystemExit("SIGTERM ended the process (Python's default)")

    previous = signal.signal(signal.SIGTERM, default)
    try:
        yield
        assert signal.getsignal(signal.SIGTERM) is default
    finally:
        signal.signal(signal.SIGTERM, previous)


def point(harness: AwsHarness, version: int) -> None:
    path = harness.project.manifest_path("staging")
    data = json.loads(path.read_text())
    data["model_version"] = version
    path.write_text(json.dumps(data, indent=2) + "\n")


def deploy(harness: AwsHarness, version: int) -> Result:
    point(harness, version)
    return harness.cli("deploy", "--env", "staging", "--commit", "f00dcafe", "--pr", "5")


def interrupted_line(result: Result) -> str:
    """The one line an interrupted deploy prints; fails unless it exited 130 with one line."""
    assert result.exit_code == 130, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def endpoint_tags() -> dict[str, str]:
    sagemaker = admin_client("sagemaker")
    arn = sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointArn"]
    tags = sagemaker.list_tags(ResourceArn=arn)["Tags"]
    return {t["Key"].split(":", 1)[1]: t["Value"] for t in tags}


def resource_name(harness: AwsHarness, version: ModelVersion) -> str:
    from ci_scripts.backends.aws.endpoints import desired_endpoint
    from ci_scripts.manifest import load

    manifest = dict(load(harness.project, "staging").effective)
    return desired_endpoint(harness.project, "staging", manifest, version).resource_name


@pytest.fixture
def on_v1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[AwsHarness, Any]]:
    """Staging serves version 1; version 2 is Approved (no registry write before the deploy)."""
    with aws_harness(tmp_path, monkeypatch) as harness:
        first = harness.seed_version(approval="Approved")
        second = harness.seed_version(approval="Approved")
        assert deploy(harness, first.version).exit_code == 0
        harness.reset_mutations()
        yield harness, second


def test_interrupted_before_any_write_says_nothing_changed(on_v1) -> None:
    aws, second = on_v1
    Tripwire(aws, "sagemaker", "DescribeModel")  # the read before CreateModel

    line = interrupted_line(deploy(aws, second.version))

    assert line == (
        "error: deploy staging interrupted before any change: nothing changed (endpoint "
        f"{ENDPOINT} serves version 1) - rerun deploy to start again"
    )
    assert aws.mutations() == []


def test_interrupted_after_model_and_config_says_the_endpoint_is_untouched(
    on_v1, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ci_scripts.backends.aws.endpoints import AwsEndpointHost

    aws, second = on_v1
    # Deciding how to update, after CreateEndpointConfig: no AWS call there to trip on (the
    # autoscaling bounds were read once, at the start of the command).
    monkeypatch.setattr(AwsEndpointHost, "_prepare_update", _interrupt)

    line = interrupted_line(deploy(aws, second.version))

    made = resource_name(aws, second)
    assert line == (
        f"error: deploy staging interrupted: endpoint {ENDPOINT} serves version 1; model {made} "
        f"exists; endpoint config {made} exists - rerun deploy to continue (it reuses what was "
        "created)"
    )
    assert aws.mutations() == ["sagemaker:CreateModel", "sagemaker:CreateEndpointConfig"]
    assert aws.backend.describe_endpoint("staging").model_version == 1


def test_interrupted_while_update_endpoint_is_in_flight_names_both_outcomes(on_v1) -> None:
    aws, second = on_v1
    Tripwire(aws, "sagemaker", "UpdateEndpoint", sigterm=True)

    line = interrupted_line(deploy(aws, second.version))

    assert line.startswith(
        "error: deploy staging interrupted by SIGTERM while sending UpdateEndpoint, which may or "
        f"may not have taken effect: if it did, endpoint {ENDPOINT} is updating to version 2 "
        "(UpdateEndpoint sent); its tags still name version 1; if not, endpoint "
        f"{ENDPOINT} serves version 1; model "
    ), line
    assert line.endswith(
        "its rollback alarms are set - once it is InService, rerun deploy to repair the record "
        "(or to retry the update, if it rolled back)"
    ), line


def test_interrupted_while_waiting_then_the_rerun_finishes_and_repairs_the_record(
    on_v1,
) -> None:
    aws, second = on_v1
    # The waiter's first poll after UpdateEndpoint (moto's update is done at once: the rerun
    # finds the endpoint InService on version 2, as it would be once SageMaker finished).
    Tripwire(aws, "sagemaker", "DescribeEndpoint", after="sagemaker:UpdateEndpoint")

    line = interrupted_line(deploy(aws, second.version))

    assert line == (
        f"error: deploy staging interrupted: endpoint {ENDPOINT} is updating to version 2 "
        "(UpdateEndpoint sent); its tags still name version 1 - once it is InService, rerun "
        "deploy to repair the record (or to retry the update, if it rolled back)"
    )
    assert endpoint_tags()["model-version"] == "1"  # the stale record the line names

    aws.reset_mutations()
    result = aws.cli("deploy", "--env", "staging", "--commit", "f00dcafe", "--pr", "5")

    assert result.exit_code == 0, result.output
    assert aws.mutations() == ["sagemaker:AddTags"]
    tags = endpoint_tags()
    assert (tags["model-version"], tags["previous-model-version"]) == ("2", "1")


def test_interrupted_while_tagging_says_the_endpoint_serves_the_new_version(on_v1) -> None:
    aws, second = on_v1
    Tripwire(aws, "sagemaker", "AddTags")

    line = interrupted_line(deploy(aws, second.version))

    assert line == (
        "error: deploy staging interrupted while sending AddTags, which may or may not have "
        f"taken effect: if it did, endpoint {ENDPOINT} serves version 2 and its tags name it; "
        f"its autoscaling is not applied yet; if not, endpoint {ENDPOINT} serves version 2; its "
        "tags still name version 1 - rerun deploy to apply it"
    )


def test_interrupted_after_lifting_autoscaling_says_so(on_v1) -> None:
    """An instance type change deregisters autoscaling before UpdateEndpoint (SageMaker refuses
    the update otherwise): stopped there, the endpoint runs without it until the rerun."""
    aws, second = on_v1
    path = aws.project.manifest_path("staging")
    data = json.loads(path.read_text())
    data["endpoint"]["instance_type"] = "ml.c5.xlarge"
    path.write_text(json.dumps(data, indent=2) + "\n")
    Tripwire(aws, "sagemaker", "UpdateEndpoint")

    line = interrupted_line(deploy(aws, second.version))

    assert (
        "if it did, endpoint churn-model-staging is updating to version 2 (UpdateEndpoint sent); "
        "its tags still name version 1; its autoscaling is lifted until the deploy is done; if "
        "not, endpoint churn-model-staging serves version 1; model "
    ) in line, line
    assert (
        "; its autoscaling is removed for the instance type change (the deploy registers it "
        "again once the update is done); its rollback alarms are set - once it is InService, "
        "rerun deploy to repair the record (or to retry the update, if it rolled back)"
    ) in line, line
    aws.reset_mutations()
    result = aws.cli("deploy", "--env", "staging", "--commit", "f00dcafe", "--pr", "5")
    assert result.exit_code == 0, result.output
    assert "application-autoscaling:RegisterScalableTarget" in aws.mutations()


def test_interrupted_while_a_failed_endpoint_is_deleted(on_v1) -> None:
    aws, second = on_v1
    aws.set_endpoint_status("staging", "Failed", "instance retired")
    # The endpoint_deleted waiter's poll (moto deletes at once).
    Tripwire(aws, "sagemaker", "DescribeEndpoint", after="sagemaker:DeleteEndpoint")

    line = interrupted_line(deploy(aws, second.version))

    assert line == (
        f"error: deploy staging interrupted: endpoint {ENDPOINT} (Failed) is being deleted "
        "(DeleteEndpoint sent) - once it is gone, rerun deploy to create it with version 2"
    )
    result = aws.cli("deploy", "--env", "staging", "--commit", "f00dcafe", "--pr", "5")
    assert result.exit_code == 0, result.output
    assert aws.backend.describe_endpoint("staging").model_version == 2


def test_interrupted_after_the_tags_says_only_autoscaling_is_left(
    on_v1, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ci_scripts.backends.aws.guardrails import EndpointScaling

    aws, second = on_v1
    # Applying autoscaling, after AddTags: the bounds read at the start are reused, no call.
    monkeypatch.setattr(EndpointScaling, "apply", _interrupt)

    line = interrupted_line(deploy(aws, second.version))

    assert line == (
        f"error: deploy staging interrupted: endpoint {ENDPOINT} serves version 2 and its tags "
        "name it; its autoscaling is not applied yet - rerun deploy to apply it"
    )
    assert endpoint_tags()["model-version"] == "2"


def test_interrupted_while_the_monitor_follows_says_the_endpoint_is_done(
    on_v1, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ci_scripts.backends.aws.monitoring import AwsMonitor

    aws, second = on_v1
    assert aws.project.monitoring

    def interrupted(*_: Any, **__: Any) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(AwsMonitor, "sync", interrupted)
    line = interrupted_line(deploy(aws, second.version))

    assert line == (
        f"error: deploy staging interrupted: endpoint {ENDPOINT} serves version 2; its monitor "
        "is being brought in line with version 2 - rerun deploy to finish"
    )


def test_interrupted_first_deploy_while_creating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with aws_harness(tmp_path, monkeypatch) as aws:
        first = aws.seed_version(approval="Approved")
        Tripwire(aws, "sagemaker", "DescribeEndpoint", after="sagemaker:CreateEndpoint")

        line = interrupted_line(deploy(aws, first.version))

        assert line == (
            f"error: deploy staging interrupted: endpoint {ENDPOINT} is being created with "
            "version 1 (CreateEndpoint sent) - once it is InService, rerun deploy to finish (it "
            "applies autoscaling)"
        )
        # moto's endpoint is InService at once: the rerun registers the autoscaling it lacks.
        aws.reset_mutations()
        result = aws.cli("deploy", "--env", "staging", "--commit", "f00dcafe", "--pr", "5")
        assert result.exit_code == 0, result.output
        assert "application-autoscaling:RegisterScalableTarget" in aws.mutations()


# -- deployment=batch -----------------------------------------------------------------------
@pytest.fixture
def batch_on_v1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[AwsHarness, Any]]:
    with aws_harness(tmp_path, monkeypatch, deployment="batch") as harness:
        first = harness.seed_version(approval="Approved")
        second = harness.seed_version(approval="Approved")
        assert deploy(harness, first.version).exit_code == 0
        harness.reset_mutations()
        yield harness, second


def test_batch_interrupted_before_any_write(batch_on_v1) -> None:
    aws, second = batch_on_v1
    Tripwire(aws, "sagemaker", "DescribeModel")

    line = interrupted_line(deploy(aws, second.version))

    assert line == (
        "error: deploy staging interrupted before any change: nothing changed (batch pipeline "
        f"{PIPELINE} scores with version 1) - rerun deploy to start again"
    )
    assert aws.mutations() == []


def test_batch_interrupted_before_the_schedule_says_it_still_runs_the_old_model(
    batch_on_v1,
) -> None:
    aws, second = batch_on_v1
    Tripwire(aws, "scheduler", "UpdateSchedule")

    line = interrupted_line(deploy(aws, second.version))

    assert line == (
        "error: deploy staging interrupted while sending UpdateSchedule, which may or may not "
        f"have taken effect: if it did, batch pipeline {PIPELINE} scores with version 2 on its "
        f"schedule; if not, batch pipeline {PIPELINE}'s tags name version 2, but its schedule "
        "still starts it with version 1's model - rerun deploy to point the schedule at "
        "version 2"
    )
    aws.reset_mutations()
    result = aws.cli("deploy", "--env", "staging", "--commit", "f00dcafe", "--pr", "5")
    assert result.exit_code == 0, result.output
    assert aws.mutations() == ["scheduler:UpdateSchedule"]
    assert (
        aws.backend.describe_endpoint("staging")
        .config["model_name"]
        .startswith(f"churn-model-staging-v{second.version}-")
    )


# -- the command around the backend's deploy (commands/deploy.py) ---------------------------
def test_sigterm_during_the_checks_says_nothing_changed(on_v1) -> None:
    """Before the command's own termination_interrupts, SIGTERM here ended the process with
    Python's default (exit -15, no line); the registry read comes before any change."""
    aws, second = on_v1
    Tripwire(aws, "sagemaker", "DescribeModelPackage", sigterm=True)

    line = interrupted_line(deploy(aws, second.version))

    assert line == (
        "error: deploy staging interrupted by SIGTERM before any change: nothing changed - "
        "rerun deploy to start again"
    )
    assert aws.mutations() == []


def test_interrupted_after_the_approval_says_the_version_stays_approved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A merge's staging deploy approves first: "nothing changed" would hide that write."""
    with aws_harness(tmp_path, monkeypatch) as aws:
        first = aws.seed_version(approval="Approved")
        assert deploy(aws, first.version).exit_code == 0
        second = aws.seed_version()  # PendingManualApproval, as the pipeline registers it
        Tripwire(aws, "sagemaker", "DescribeModel")  # the endpoint's first read

        line = interrupted_line(deploy(aws, second.version))

        assert line == (
            f"error: deploy staging interrupted after approving version {second.version} in the "
            f"registry: nothing else changed (endpoint {ENDPOINT} serves version 1) - rerun "
            "deploy to deploy it (it stays Approved)"
        )
        found = aws.backend.get_version(aws.project.model_package_group, second.version)
        assert found is not None and found.approval_status == "Approved"
        result = aws.cli("deploy", "--env", "staging", "--commit", "f00dcafe", "--pr", "5")
        assert result.exit_code == 0, result.output
        assert aws.backend.describe_endpoint("staging").model_version == second.version


def test_interrupted_after_the_backend_deploy_says_what_serves(
    on_v1, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ci_scripts.commands import retention

    aws, second = on_v1

    def interrupted(*_: Any, **__: Any) -> list[str]:
        raise KeyboardInterrupt

    monkeypatch.setattr(retention, "prune_after_deploy", interrupted)
    line = interrupted_line(deploy(aws, second.version))

    assert line == (
        f"error: deploy staging interrupted after the deploy: {ENDPOINT} serves version 2; the "
        "registry's note of its rollout or the pruning of versions no rollback needs may be "
        "unfinished - rerun deploy to finish the note (the next deploy that changes staging "
        "prunes)"
    )
