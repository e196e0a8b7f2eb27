"""The generated repo's environment is versioned: uv.lock matches the rendered pyproject.toml for
every option combination, and every workflow job and the Dockerfile install from it, frozen."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from gitops_testkit import answers_context, render_template_file
from option_matrix import COMBINATIONS, DEFAULT_COMBINATION, combination_id

BIN = Path(sys.executable).parent
UV = str(BIN / "uv") if (BIN / "uv").exists() else shutil.which("uv")
TEMPLATE_DIR = Path(__file__).resolve().parents[1]
PINS = json.loads((TEMPLATE_DIR / "scripts" / "action_pins.json").read_text("utf-8"))


def lock_check(repo: Path) -> subprocess.CompletedProcess:
    """``uv lock --check`` offline: the lock satisfies pyproject.toml without resolving again."""
    assert UV, "uv: not installed; `make test` installs it into .venv"
    return subprocess.run(
        [UV, "lock", "--check", "--offline", "--no-progress"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def render_lock_pair(directory: Path, **answers: str) -> Path:
    """pyproject.toml and uv.lock rendered as cookiecutter renders them (no full render)."""
    ctx = answers_context(**answers)
    directory.mkdir(parents=True)
    for name in ("pyproject.toml", "uv.lock"):
        (directory / name).write_text(render_template_file(name, ctx), "utf-8")
    return directory


@pytest.mark.parametrize("combo", COMBINATIONS, ids=[combination_id(c) for c in COMBINATIONS])
def test_rendered_lock_matches_the_rendered_pyproject(
    tmp_path: Path, combo: dict[str, str]
) -> None:
    repo = render_lock_pair(tmp_path / "repo", **combo)
    proc = lock_check(repo)
    assert proc.returncode == 0, proc.stderr
    assert "{{" not in (repo / "uv.lock").read_text("utf-8")


def test_lock_for_another_project_name_matches_too(tmp_path: Path) -> None:
    repo = render_lock_pair(tmp_path / "repo", project="fraud-score")
    proc = lock_check(repo)
    assert proc.returncode == 0, proc.stderr
    assert 'name = "fraud-score"' in (repo / "uv.lock").read_text("utf-8")


def test_a_lock_that_no_longer_matches_fails_the_check(tmp_path: Path) -> None:
    repo = render_lock_pair(tmp_path / "repo")
    assert lock_check(repo).returncode == 0  # the same pair passes before the change
    pyproject = repo / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text("utf-8").replace(
            '"joblib>=1.4",', '"joblib>=1.4",\n  "tabulate>=0.9",'
        ),
        "utf-8",
    )
    proc = lock_check(repo)
    # With uv's cache holding every package the check says the lock needs updating; with an
    # empty cache (a fresh CI machine) the offline re-resolution it attempts fails instead. Either
    # way the new requirement makes the check fail, and it says why on stderr.
    assert proc.returncode != 0
    assert "error" in proc.stderr.lower(), proc.stderr


def test_the_real_render_ships_the_lock(bake_once) -> None:
    repo = bake_once(**DEFAULT_COMBINATION)
    proc = lock_check(repo)
    assert proc.returncode == 0, proc.stderr


def test_every_job_installs_from_the_lock_with_pinned_uv(bake_once) -> None:
    repo = bake_once(**{**DEFAULT_COMBINATION, "monitoring": "yes"})
    pin = PINS["astral-sh/setup-uv"]
    installs = 0
    for path in sorted((repo / ".github" / "workflows").glob("*.yml")):
        text = path.read_text("utf-8")
        assert "uv>=" not in text and "uv pip install" not in text, path.name
        workflow = yaml.safe_load(text)
        for name, job in workflow["jobs"].items():
            steps = job.get("steps") or []
            scripts = "\n".join(s.get("run", "") for s in steps)
            if "python -m ci_scripts" not in scripts and "pytest" not in scripts:
                continue
            uses = [s.get("uses", "") for s in steps]
            assert f"astral-sh/setup-uv@{pin['sha']}" in uses, f"{path.name}:{name}"
            setup = next(s for s in steps if s.get("uses", "").startswith("astral-sh/setup-uv@"))
            assert re.fullmatch(r"\d+\.\d+\.\d+", setup["with"]["version"]), f"{path.name}:{name}"
            assert setup["with"]["enable-cache"] is False
            assert re.search(r"uv sync --locked --extra (ci|dev)", scripts), f"{path.name}:{name}"
            installs += 1
    assert installs >= 7  # ci, build-image, train, propose, deploy x2, monitor


def test_dockerfile_installs_the_lock_with_hashes(bake_once) -> None:
    repo = bake_once(**DEFAULT_COMBINATION)
    dockerfile = (repo / "Dockerfile").read_text("utf-8")
    assert "uv export --locked --no-emit-project --format requirements-txt" in dockerfile
    assert "pip install --require-hashes -r /wheels/requirements.txt" in dockerfile
    assert re.search(r"uv==(\d+\.\d+\.\d+) --hash=sha256:[0-9a-f]{64}", dockerfile)
    assert "gunicorn==" not in dockerfile  # comes from the lock (a runtime dependency)
    lock = (repo / "uv.lock").read_text("utf-8")
    assert 'name = "gunicorn"' in lock and 'name = "boto3"' in lock  # serve, and the monitor
    # The image's uv is the one the workflows install.
    deploy = (repo / ".github" / "workflows" / "deploy.yml").read_text("utf-8")
    version = re.search(r"uv==(\d+\.\d+\.\d+) --hash", dockerfile).group(1)
    assert f'version: "{version}"' in deploy


def test_dependabot_keeps_actions_and_the_lock_current(bake_once) -> None:
    repo = bake_once(**DEFAULT_COMBINATION)
    config = yaml.safe_load((repo / ".github" / "dependabot.yml").read_text("utf-8"))
    ecosystems = {u["package-ecosystem"] for u in config["updates"]}
    assert ecosystems == {"github-actions", "uv"}


def test_deploy_changes_need_a_code_owner_and_last_push_approval(bake_once) -> None:
    repo = bake_once(**DEFAULT_COMBINATION)
    answers = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text("utf-8"))
    approvers = answers["approvers"].replace(
        "{{ cookiecutter.github_owner }}", answers["github_owner"]
    )
    owners = [
        line.split()
        for line in (repo / ".github" / "CODEOWNERS").read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    owned = ("/deploy/", "/.github/", "/infra/", "/ci_scripts/")
    for path in (*owned, "/pyproject.toml", "/uv.lock", "/Dockerfile"):
        assert [path, *approvers.split()] in owners, f"CODEOWNERS does not cover {path}"
        assert (repo / path.strip("/")).exists(), f"CODEOWNERS names {path}, the render has none"
    readme = (repo / "README.md").read_text("utf-8")
    protection = re.search(
        r"branches/main/protection\" --input - <<'JSON'\n(.*?)\nJSON", readme, re.S
    )
    reviews = json.loads(protection.group(1))["required_pull_request_reviews"]
    assert reviews["require_code_owner_reviews"] is True
    assert reviews["require_last_push_approval"] is True
    assert "does not\n  count" in readme or "does not count" in readme.replace("\n  ", " ")
