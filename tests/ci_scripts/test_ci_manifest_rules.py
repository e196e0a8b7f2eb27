"""What SageMaker would refuse halfway through a deploy is refused by validate, naming the path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gitops_testkit import run_cli, use_stub_platform_pipelines, write_model_repo

from ci_scripts import manifest_rules
from ci_scripts.project import ProjectConfig


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model_repo(tmp_path_factory.mktemp("rules") / "repo")


def validate_with(repo: Path, env: str, change) -> tuple[int, str]:
    """Run ``validate`` on ``repo`` with deploy/<env>.json edited by ``change``; restore it."""
    path = ProjectConfig.load(repo).manifest_path(env)
    original = path.read_text()
    data = json.loads(original)
    change(data)
    path.write_text(json.dumps(data, indent=2) + "\n")
    try:
        result = run_cli(repo, None, "validate")
    finally:
        path.write_text(original)
    return result.exit_code, result.stderr.strip()


@pytest.mark.parametrize(
    ("env", "change", "expected"),
    [
        (
            "prod",
            lambda d: d["endpoint"].update(instance_type="ml.bogus.huge"),
            "error: deploy/prod.json: $.endpoint.instance_type: 'ml.bogus.huge' is not an "
            "instance type SageMaker endpoints accept",
        ),
        (
            "staging",
            lambda d: d["deployment"].update(canary_percent=60),
            "error: deploy/staging.json: $.deployment.canary_percent: 60 is above 50",
        ),
        (
            "prod",
            lambda d: d["endpoint"]["autoscaling"].update(min_capacity=5, max_capacity=3),
            "error: deploy/prod.json: $.endpoint.autoscaling.min_capacity: 5 is above "
            "max_capacity 3",
        ),
        (
            "staging",
            lambda d: d.update(model_version=2**31),
            "error: deploy/staging.json: $.model_version: 2147483648 is greater than the maximum",
        ),
        (
            "staging",
            lambda d: d.update(model_version=2**63),
            "error: deploy/staging.json: $.model_version: 9223372036854775808 is greater than",
        ),
    ],
    ids=["instance-type", "canary", "autoscaling", "version-2**31", "version-2**63"],
)
def test_validate_refuses_naming_the_json_path(repo: Path, env: str, change, expected: str) -> None:
    code, stderr = validate_with(repo, env, change)
    assert code == 1
    assert stderr.startswith(expected), stderr
    assert "\n" not in stderr


def test_validate_accepts_the_largest_registry_version_and_a_half_fleet_canary(repo: Path) -> None:
    def change(d: dict) -> None:
        d["model_version"] = 2**31 - 1
        d["deployment"]["canary_percent"] = 50

    code, stderr = validate_with(repo, "staging", change)
    assert (code, stderr) == (0, "")


def test_validate_warns_of_a_fleet_no_quota_grants(repo: Path) -> None:
    """AWS documents no maximum instance count (an account quota is the bound): a billion
    instances is valid, and validate says, in one line naming the field, that it is no plan."""
    code, err = validate_with(
        repo, "staging", lambda d: d["endpoint"]["autoscaling"].update(max_capacity=1000000000)
    )
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "max_capacity" in line]
    assert len(warnings) == 1, err
    assert warnings[0].startswith(
        "warning: deploy/staging.json: $.endpoint.autoscaling.max_capacity: 1000000000 "
        f"instances of ml.m5.large is above {manifest_rules.SANE_MAX_INSTANCES}; AWS sets no "
        "maximum, the account's SageMaker quota"
    ), warnings[0]
    code, err = validate_with(
        repo, "staging", lambda d: d["endpoint"]["autoscaling"].update(max_capacity=100)
    )
    assert (code, [line for line in err.splitlines() if "max_capacity" in line]) == (0, [])


def test_canary_refusal_judges_the_real_fleet() -> None:
    assert manifest_rules.canary_refusal(60, 1) is None  # one instance: no canary at all
    assert manifest_rules.canary_refusal(50, 4) is None
    assert "at most 50% of the variant's 4 instances" in manifest_rules.canary_refusal(51, 4)


def test_instance_types_are_botocores_endpoint_list() -> None:
    facts = json.loads(manifest_rules.FACTS_PATH.read_text("utf-8"))
    assert manifest_rules.endpoint_instance_types() == set(facts["instance_types"]["endpoint"])
    assert "ml.m5.large" in manifest_rules.endpoint_instance_types()


def test_a_batch_job_and_an_endpoint_do_not_turn_into_each_other() -> None:
    for running, desired in (("realtime", "batch"), ("serverless", "batch"), ("batch", "realtime")):
        assert "run `ci_scripts destroy --env E` first" in manifest_rules.switch_refusal(
            running, desired
        )
    assert manifest_rules.switch_refusal("batch", "batch") is None
    assert manifest_rules.switch_refusal(None, "batch") is None


def test_only_realtime_to_serverless_is_refused_in_place() -> None:
    assert manifest_rules.switch_refusal(None, "serverless") is None
    assert manifest_rules.switch_refusal("serverless", "realtime") is None
    assert "cannot update a running instance-based" in manifest_rules.switch_refusal(
        "realtime", "serverless"
    )


def _shadow_on(d: dict) -> None:
    d["deployment"]["shadow"] = {"enabled": True}


@pytest.mark.parametrize(
    ("env", "change", "expected"),
    [
        (
            "prod",
            lambda d: (_shadow_on(d), d["data_capture"].update(enabled=False)),
            "error: deploy/prod.json: $.deployment.shadow.enabled: true with data capture off",
        ),
        (
            "prod",
            lambda d: (_shadow_on(d), d["data_capture"].update(sampling_percentage=0)),
            "error: deploy/prod.json: $.deployment.shadow.enabled: true with data capture off",
        ),
        (
            "prod",
            lambda d: (
                _shadow_on(d),
                d.update(endpoint={"type": "serverless"}),
            ),
            "error: deploy/prod.json: $.deployment.shadow.enabled: true on a serverless "
            "endpoint: SageMaker shadow variants need an instance-based realtime endpoint",
        ),
        (
            "staging",
            _shadow_on,
            "error: deploy/staging.json: $.deployment.shadow.enabled: true, but the shadow test "
            "runs only before prod switches",
        ),
        (
            "prod",
            lambda d: d["deployment"].update(shadow={"enabled": True, "duration_minutes": 31}),
            "error: deploy/prod.json: $.deployment.shadow.duration_minutes: 31 is greater than "
            "the maximum of 30",
        ),
    ],
    ids=["capture-off", "capture-0-percent", "serverless", "staging", "duration"],
)
def test_impossible_shadow_policies_are_refused(repo: Path, env: str, change, expected) -> None:
    code, stderr = validate_with(repo, env, change)
    assert code == 1
    assert stderr.startswith(expected), stderr
    assert "\n" not in stderr


def test_validate_says_what_the_shadow_policy_will_do(repo: Path) -> None:
    path = ProjectConfig.load(repo).manifest_path("prod")
    original = path.read_text()
    try:
        assert "deploy/prod.json: shadow test: off" in run_cli(repo, None, "validate").stdout
        data = json.loads(original)
        data["deployment"]["shadow"] = {"enabled": True, "duration_minutes": 15}
        path.write_text(json.dumps(data))
        result = run_cli(repo, None, "validate")
        out = result.stdout
    finally:
        path.write_text(original)
    assert result.exit_code == 0
    # prod ships capturing 20 % of requests: only those can be paired, and validate says so.
    assert (
        "with data_capture.sampling_percentage 20, about 20% of the shadow's requests can "
        "be paired (min_requests 100 needs about 500 prod requests in 15 min)" in result.stderr
    )
    assert (
        "deploy/prod.json: shadow test: before prod switches, the candidate shadows prod's "
        "traffic for 15 min" in out
    )


# -- endpoint.type batch ---------------------------------------------------------------------
FACTS = json.loads(manifest_rules.FACTS_PATH.read_text("utf-8"))["instance_types"]
# An instance type endpoints take but batch transform does not (botocore's two enums differ).
NOT_FOR_TRANSFORM = min(set(FACTS["endpoint"]) - set(FACTS["transform"]))


@pytest.fixture(scope="module")
def batch_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model_repo(tmp_path_factory.mktemp("batch") / "repo", deployment="batch")


def test_rendered_batch_manifests_are_valid_and_validate_says_the_policy(
    batch_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_stub_platform_pipelines(monkeypatch)  # the policy lines, not the SDK's batch build
    assert validate_with(batch_repo, "staging", lambda d: None) == (0, "")
    said = " ".join(run_cli(batch_repo, None, "validate").stdout.split())
    assert "deploy/prod.json: batch: each run scores every file under s3://" in said
    assert "on 2 x ml.m5.large, started cron(0 3 * * ? *) (UTC) by EventBridge Scheduler" in said


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["endpoint"].update(instance_type=NOT_FOR_TRANSFORM),
            f"$.endpoint.instance_type: {NOT_FOR_TRANSFORM!r} is not an instance type SageMaker "
            "batch transform accepts",
        ),
        (
            lambda d: d["endpoint"].update(autoscaling={"max_capacity": 3}),
            "$.endpoint.autoscaling: makes no sense for endpoint.type 'batch'",
        ),
        (
            lambda d: d["endpoint"].update(serverless={}),
            "$.endpoint.serverless: makes no sense for endpoint.type 'batch'",
        ),
        (
            lambda d: d["batch"].update(output_prefix=d["batch"]["input_prefix"] + "out/"),
            "$.batch.output_prefix: ",
        ),
        (lambda d: d.pop("batch"), "$: 'batch' is a required property"),
        (lambda d: d["batch"].update(input_prefix="s3://b/no-slash"), "$.batch.input_prefix: "),
        (lambda d: d["batch"].update(content_type="application/json"), "$.batch.content_type: "),
        (lambda d: d["endpoint"].pop("instance_type"), "$.endpoint: 'instance_type' is a requir"),
    ],
    ids=[
        "transform-type", "autoscaling", "serverless", "output-under-input", "no-batch",
        "prefix-slash", "content-type", "no-instance-type",
    ],
)  # fmt: skip
def test_batch_rules_refuse_naming_the_json_path(batch_repo: Path, change, expected: str) -> None:
    code, stderr = validate_with(batch_repo, "prod", change)
    assert code == 1
    assert stderr.startswith(f"error: deploy/prod.json: {expected}"), stderr
    assert "\n" not in stderr


def test_a_shadow_test_is_refused_on_a_batch_job(batch_repo: Path) -> None:
    code, stderr = validate_with(
        batch_repo,
        "prod",
        lambda d: d.setdefault("deployment", {}).update(shadow={"enabled": True}),
    )
    assert code == 1
    assert stderr.startswith(
        "error: deploy/prod.json: $.deployment.shadow.enabled: true on a batch job (no "
        "endpoint): SageMaker shadow variants need an instance-based realtime endpoint"
    ), stderr


def test_a_batch_section_is_refused_on_an_endpoint(repo: Path) -> None:
    def change(d: dict) -> None:
        d["batch"] = {"input_prefix": "s3://bucket/in/", "output_prefix": "s3://bucket/out/"}

    code, stderr = validate_with(repo, "staging", change)
    assert code == 1
    assert stderr == (
        "error: deploy/staging.json: $.batch: only for endpoint.type 'batch' (this one is "
        "'realtime')"
    )


def test_batch_defaults_come_from_the_schema(batch_repo: Path) -> None:
    from ci_scripts import manifest

    effective = manifest.load(ProjectConfig.load(batch_repo), "prod").effective
    assert effective["batch"]["schedule"] == "cron(0 3 * * ? *)"
    assert effective["batch"]["id_column"] == "id"
    assert (
        effective["batch"]["max_payload_mb"],
        effective["batch"]["max_concurrent_transforms"],
    ) == (6, 1)
    assert effective["endpoint"]["initial_instance_count"] == 2
