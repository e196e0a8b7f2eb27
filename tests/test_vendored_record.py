"""A render records what it vendored into ci_scripts/, and ``validate`` names every file that no
longer matches it: changed, added or removed (platform changes go to the template, then
``cruft update``). A repo rendered before the record existed gets a warning, not a failure."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ci_scripts import vendored
from ci_scripts.commands.validate import check_vendored
from ci_scripts.errors import CIError
from ci_scripts.project import ProjectConfig

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
VERSION = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text("utf-8"))["__template_version"]
ADVICE = "platform changes go to the template (cruft update), not into one repo"


@pytest.fixture
def repo(bake_once, tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(bake_once(), copy, symlinks=True)
    return copy


def validate(repo: Path) -> subprocess.CompletedProcess[str]:
    """``python -m ci_scripts validate`` as the repo's CI runs it: its own vendored copy."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GITHUB_", "CI_"))}
    env.update(PYTHONPATH=str(repo), AWS_EC2_METADATA_DISABLED="true")
    return subprocess.run(
        [sys.executable, "-m", "ci_scripts", "--backend", "local", "validate"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_record_lists_every_vendored_file_but_itself(repo: Path) -> None:
    version, recorded = vendored.read_record(repo / "ci_scripts")
    assert version == VERSION
    files = {
        p.relative_to(repo).as_posix() for p in (repo / "ci_scripts").rglob("*") if p.is_file()
    }
    assert set(recorded) == files - {f"ci_scripts/{vendored.RECORD}"}
    assert "ci_scripts/aws_facts.json" in recorded


@pytest.mark.slow  # validate builds the definition with the SDK
def test_untouched_render_validates_clean(repo: Path) -> None:
    cache = repo / "ci_scripts" / "__pycache__"  # what running the CLI leaves: not a change
    cache.mkdir()
    (cache / "canary.cpython-311.pyc").write_bytes(b"bytecode")
    proc = validate(repo)
    assert proc.returncode == 0, proc.stderr
    assert f"ci_scripts/: as sagemaker-gitops {VERSION} vendored it\n" in proc.stdout
    assert "ci_scripts" not in proc.stderr


def test_changed_added_and_removed_files_are_each_named(repo: Path) -> None:
    package = repo / "ci_scripts"
    with (package / "canary.py").open("a", encoding="utf-8") as handle:
        handle.write("# a local fix\n")
    (package / "extra.py").write_text("X = 1\n", encoding="utf-8")
    (package / "commands" / "destroy.py").unlink()

    proc = validate(repo)

    assert proc.returncode == 1
    release = f"sagemaker-gitops {VERSION}"
    assert proc.stderr.splitlines() == [
        f"error: ci_scripts/canary.py: differs from what {release} vendored; {ADVICE}",
        f"error: ci_scripts/commands/destroy.py: vendored by {release}, missing here; {ADVICE}",
        f"error: ci_scripts/extra.py: not vendored by {release} (added in this repo); {ADVICE}",
    ]
    assert "deploy/" not in proc.stdout, "nothing else is checked past the platform check"


def test_one_edit_is_one_error_line(repo: Path, capsys) -> None:
    path = repo / "ci_scripts" / "schemas" / "manifest.schema.json"
    path.write_text(path.read_text("utf-8") + " ", encoding="utf-8")
    with pytest.raises(CIError) as raised:
        check_vendored(ProjectConfig.load(repo))
    assert str(raised.value).startswith(
        "ci_scripts/schemas/manifest.schema.json: differs from what sagemaker-gitops"
    )
    assert capsys.readouterr().err == ""


def test_line_endings_converted_by_git_still_match(repo: Path, capsys) -> None:
    path = repo / "ci_scripts" / "canary.py"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    check_vendored(ProjectConfig.load(repo))
    assert capsys.readouterr().out.startswith("ci_scripts/: as sagemaker-gitops")


def test_missing_record_is_only_a_warning(repo: Path, capsys) -> None:
    (repo / "ci_scripts" / vendored.RECORD).unlink()
    check_vendored(ProjectConfig.load(repo))
    err = capsys.readouterr().err
    assert err.startswith(f"warning: ci_scripts/{vendored.RECORD}: missing (rendered by a ")
    assert err.count("\n") == 1


def test_unreadable_record_is_one_line_naming_its_line(repo: Path) -> None:
    record = repo / "ci_scripts" / vendored.RECORD
    lines = record.read_text("utf-8").splitlines()
    record.write_text("\n".join([*lines[:2], "not a record line", *lines[2:]]) + "\n", "utf-8")
    with pytest.raises(CIError, match=rf"^ci_scripts/{vendored.RECORD}:3: not a record line"):
        check_vendored(ProjectConfig.load(repo))
