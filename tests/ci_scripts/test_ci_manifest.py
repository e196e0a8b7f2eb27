"""Manifests: schema errors name file and JSON path, defaults come from the schema, writes are
atomic and keep the file's layout."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from gitops_testkit import TEMPLATE_DIR, answers_context, render_template_file, write_model_repo
from jsonschema import Draft202012Validator

from ci_scripts import manifest as manifests
from ci_scripts.errors import CIError
from ci_scripts.project import ProjectConfig


@pytest.fixture
def project(tmp_path: Path) -> ProjectConfig:
    return ProjectConfig.load(write_model_repo(tmp_path / "repo", pipeline="none"))


def edit(project: ProjectConfig, env: str, change) -> None:
    path = project.manifest_path(env)
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2) + "\n")


def test_schema_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(manifests.load_schema())


@pytest.mark.parametrize("deployment", ["realtime", "serverless"])
@pytest.mark.parametrize("monitoring", ["yes", "no"])
@pytest.mark.parametrize("env", ["staging", "prod"])
def test_template_manifests_are_valid_and_formatted_as_written(
    env: str, deployment: str, monitoring: str
) -> None:
    ctx = answers_context(deployment=deployment, monitoring=monitoring)
    text = render_template_file(f"deploy/{env}.json", ctx)
    data = json.loads(text)
    assert manifests.schema_errors(data) == []
    assert manifests.render(data) == text  # a rewrite changes only what changed


def test_bad_field_names_file_and_json_path(project: ProjectConfig) -> None:
    edit(project, "prod", lambda d: d["endpoint"].update(instance_type="m5"))
    with pytest.raises(CIError) as caught:
        manifests.load(project, "prod")
    message = str(caught.value)
    assert message.startswith("deploy/prod.json: $.endpoint.instance_type: 'm5' does not match")
    assert "\n" not in message


def test_unknown_field_is_named(project: ProjectConfig) -> None:
    edit(project, "staging", lambda d: d["smoke_test"].update(rowz=3))
    with pytest.raises(CIError, match=r"deploy/staging.json: \$.smoke_test: .*'rowz'"):
        manifests.load(project, "staging")


def test_environment_must_match_file_name(project: ProjectConfig) -> None:
    edit(project, "staging", lambda d: d.update(environment="prod"))
    with pytest.raises(
        CIError, match=r"^deploy/staging.json: \$.environment: 'prod' does not match"
    ):
        manifests.load(project, "staging")


def test_group_must_be_the_projects(project: ProjectConfig) -> None:
    edit(project, "prod", lambda d: d.update(model_package_group="other"))
    with pytest.raises(CIError, match=r"^deploy/prod.json: \$.model_package_group: 'other' is not"):
        manifests.load(project, "prod")


def test_invalid_json_and_duplicate_keys(project: ProjectConfig) -> None:
    path = project.manifest_path("prod")
    path.write_text('{"environment": "prod",}')
    with pytest.raises(CIError, match=r"^deploy/prod.json: invalid JSON: .*line 1"):
        manifests.load(project, "prod")
    path.write_text('{"environment": "prod", "environment": "staging"}')
    with pytest.raises(CIError, match="duplicate key 'environment'"):
        manifests.load(project, "prod")


def test_missing_manifest(project: ProjectConfig) -> None:
    project.manifest_path("prod").unlink()
    with pytest.raises(CIError, match=r"^deploy/prod\.json: not found$"):
        manifests.load(project, "prod")


def test_a_manifest_that_is_a_directory_is_named_so(project: ProjectConfig) -> None:
    """Issue 29, point 10: a directory was reported "not found"."""
    path = project.manifest_path("prod")
    path.unlink()
    path.mkdir()
    with pytest.raises(CIError, match=r"^deploy/prod\.json: is a directory, not a JSON file$"):
        manifests.load(project, "prod")


@pytest.mark.parametrize(
    "nesting",
    ["[" * 100_000 + "]" * 100_000, '{"a":' * 5_000 + "1" + "}" * 5_000],
    ids=["arrays", "objects"],
)
def test_a_deeply_nested_manifest_is_one_error_not_a_recursion(
    project: ProjectConfig, nesting: str
) -> None:
    """Issue 29, point 9: a RecursionError traceback from validate."""
    path = project.manifest_path("prod")
    path.write_text('{"environment": "prod", "endpoint": ' + nesting + "}")
    with pytest.raises(CIError, match=r"^deploy/prod\.json: "):
        manifests.load(project, "prod")
    manifests.parse_text(path.read_text())  # the git-history reader does not raise either


def test_defaults_come_from_the_schema(project: ProjectConfig) -> None:
    def strip(d: dict) -> None:
        for key in ("smoke_test", "deployment", "data_capture"):
            d.pop(key)
        d["endpoint"].pop("initial_instance_count")

    edit(project, "staging", strip)
    manifest = manifests.load(project, "staging")
    effective = manifest.effective
    assert effective["smoke_test"] == {"rows": 20, "max_latency_ms": 1000}
    assert effective["deployment"]["alarms"] == {"max_5xx_errors": 1, "max_model_latency_ms": 500}
    assert effective["data_capture"] == {"enabled": True, "sampling_percentage": 100}
    assert effective["endpoint"]["initial_instance_count"] == 1
    assert "smoke_test" not in manifest.raw  # the file's own content is kept as written


def test_write_is_atomic_keeps_layout_and_mode(project: ProjectConfig) -> None:
    path = project.manifest_path("staging")
    os.chmod(path, 0o640)
    original = path.read_text()
    manifest = manifests.load(project, "staging")

    manifests.write(manifest.with_version(4), project)

    text = path.read_text()
    assert text == original.replace('"model_version": null', '"model_version": 4')
    assert oct(path.stat().st_mode & 0o777) == "0o640"
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_write_refuses_invalid_manifest(project: ProjectConfig) -> None:
    path = project.manifest_path("staging")
    before = path.read_text()
    manifest = manifests.load(project, "staging")
    with pytest.raises(CIError, match=r"\$.model_version: 0 is less than the minimum of 1"):
        manifests.write(manifest.with_version(0), project)
    assert path.read_text() == before


def test_template_schema_reference_resolves() -> None:
    """The manifests' "$schema" points at the vendored schema (editors validate with it)."""
    data = json.loads(render_template_file("deploy/prod.json", answers_context()))
    assert (TEMPLATE_DIR / "ci_scripts" / "schemas" / Path(data["$schema"]).name).is_file()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("alias/project", "is not a KMS key ARN"),
        ("arn:aws:kms:eu-west-1:111111111111:alias/project", "is not a KMS key ARN"),
        ("arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab", "not in the project's region"),
    ],
)
def test_kms_key_arn_must_be_a_key_in_the_projects_region(
    project: ProjectConfig, value: str, message: str
) -> None:
    path = project.root / "pyproject.toml"
    path.write_text(path.read_text().replace('kms_key_arn = ""', f'kms_key_arn = "{value}"'))
    with pytest.raises(CIError, match=r"\[tool.sagemaker-gitops\]\.kms_key_arn") as raised:
        ProjectConfig.load(project.root)
    assert message in str(raised.value)


def test_kms_key_arn_is_optional_and_read_once(project: ProjectConfig) -> None:
    assert project.kms_key_arn == "" and project.kms_key_id is None
    key = "arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    path = project.root / "pyproject.toml"
    path.write_text(path.read_text().replace('kms_key_arn = ""', f'kms_key_arn = "{key}"'))
    assert ProjectConfig.load(project.root).kms_key_id == key
