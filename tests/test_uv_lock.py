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
from gitops_testkit import answers_context, render_template_file
from option_matrix import COMBINATIONS, DEFAULT_COMBINATION, combination_id
from parsed_files import load_yaml

from scripts.template_layout import PROJECT_TEMPLATE

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
    # uv's wording differs by cache state ("error: ... needs to be updated", "No solution found
    # when resolving dependencies ... not found in the cache"): either names the failure.
    assert re.search(r"error|no solution found", proc.stderr, re.IGNORECASE), proc.stderr


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
        workflow = load_yaml(text)
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
    config = load_yaml((repo / ".github" / "dependabot.yml").read_text("utf-8"))
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


# --- Dependency floors -----------------------------------------------------------------------
# A lock refresh (`uv lock --upgrade`, what Dependabot's uv updates do) may pick any version a
# range admits, so a range's floor must be a version the code runs on. `sagemaker>=3,<4` let a
# refresh resolve sagemaker 3.0.1: no ModelTrainer.with_metric_definitions, no sagemaker.mlops,
# and torch, triton and 15 more GPU packages; the pipeline definition no longer built (issue 27,
# point 6).
#
# These checks are offline. A real refresh of the generated lock resolves 181 packages from the
# index: measured here 37 s cold and 49-55 s with a warm uv cache (uv revalidates every
# package's metadata), too slow and too network-bound for every `make test`. What a refresh
# can reach is decided by the floors, so the floors are what is checked:
# - every direct requirement has a floor, at or above the version where the API the code uses
#   appeared (FLOORS);
# - the generated repo's ranges are the template's own for every package both name: the
#   template's suite builds the definitions and runs the step code, so its ranges are the
#   evidence (the floors were checked by a `uv lock --resolution lowest-direct` of the template,
#   whose definitions built and whose demo ran, when they were set);
# - the two locks hold the same versions of what the code imports, so the template's suite
#   (which builds both pipeline definitions with the SDK) runs what the generated lock ships;
# - neither lock, on any platform, holds a GPU package, nor does the requirement closure of the
#   installed sagemaker (the locked version, read from its package metadata).
FLOORS = {
    # ModelTrainer.with_metric_definitions, sagemaker.mlops.workflow, sagemaker.core.shapes.
    # MlflowConfig; sagemaker 3.0.x also requires torch (17 GPU packages on Linux).
    "sagemaker": "3.27",
    # Below 0.16 typer breaks on the click a resolution picks ("Secondary flag is not valid for
    # non-boolean flag"); below 0.22 `ci_scripts --help` imports rich (test_ci_cli.py).
    "typer": "0.22",
    # ci_scripts/backends/local/tuning.py is written to Optuna 5 (5.0.0 ran the floors check).
    "optuna": "5",
    # ci_scripts/backends/local/tracking.py (3.17.0 ran the floors check).
    "mlflow": "3.17",
    # The aws tests (MockRawResponse, moto's SageMaker models): 5.1.0 ran the floors check.
    "moto": "5.1",
}
GPU_PACKAGE = re.compile(r"^(torch|torchvision|torchaudio|triton|nvidia-.*|cuda-.*|jax(lib)?)$")
# What the code imports, as locked: the template's suite must run the generated repo's versions.
SHARED_RUNTIME = (
    "sagemaker",
    "sagemaker-core",
    "sagemaker-train",
    "sagemaker-serve",
    "sagemaker-mlops",
    "scikit-learn",
    "pandas",
    "numpy",
    "scipy",
    "joblib",
    "optuna",
    "mlflow",
)


def _requirements(pyproject: dict) -> list:
    from packaging.requirements import Requirement

    project = pyproject["project"]
    texts = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        texts += extra
    own = project["name"]
    return [r for r in map(Requirement, texts) if r.name != own]


def _floor(requirement):
    from packaging.version import Version

    floors = [Version(s.version) for s in requirement.specifier if s.operator in (">=", "==", "~=")]
    return max(floors, default=None)


def _pyprojects() -> dict[str, dict]:
    import tomllib

    rendered = render_template_file("pyproject.toml", answers_context())
    template = (TEMPLATE_DIR / "pyproject.toml").read_text("utf-8")
    return {"generated repo": tomllib.loads(rendered), "template": tomllib.loads(template)}


def _locked(path: Path) -> dict[str, set[str]]:
    import tomllib

    versions: dict[str, set[str]] = {}
    for package in tomllib.loads(path.read_text("utf-8"))["package"]:
        versions.setdefault(package["name"], set()).add(package.get("version", ""))
    return versions


GENERATED_LOCK = PROJECT_TEMPLATE / "uv.lock"
TEMPLATE_LOCK = TEMPLATE_DIR / "uv.lock"


def test_every_floor_is_a_version_the_code_runs_on() -> None:
    from packaging.version import Version

    for where, pyproject in _pyprojects().items():
        for requirement in _requirements(pyproject):
            floor = _floor(requirement)
            assert floor is not None, f"{where}: {requirement} has no floor"
            minimum = FLOORS.get(requirement.name)
            if minimum is not None:
                assert floor >= Version(minimum), (
                    f"{where}: {requirement} admits versions below {minimum}, which the code "
                    "does not run on"
                )


def test_the_generated_repo_ranges_are_the_template_s_own() -> None:
    pyprojects = _pyprojects()
    template = {r.name: r.specifier for r in _requirements(pyprojects["template"])}
    shared = 0
    for requirement in _requirements(pyprojects["generated repo"]):
        if requirement.name in template:
            assert requirement.specifier == template[requirement.name], (
                f"{requirement.name}: the generated repo says {requirement.specifier}, the "
                f"template (whose suite runs the code) says {template[requirement.name]}"
            )
            shared += 1
    assert shared >= 10


def test_the_template_suite_runs_the_versions_the_generated_lock_ships() -> None:
    generated, template = _locked(GENERATED_LOCK), _locked(TEMPLATE_LOCK)
    for name in SHARED_RUNTIME:
        assert generated.get(name) == template.get(name), (
            f"{name}: the generated repo's uv.lock holds {generated.get(name)}, the template's "
            f"{template.get(name)} (re-lock one: `uv lock` / `python -m scripts.gen_uv_lock`)"
        )


@pytest.mark.parametrize("lock", [GENERATED_LOCK, TEMPLATE_LOCK], ids=["generated", "template"])
def test_no_lock_holds_a_gpu_package(lock: Path) -> None:
    gpu = sorted(name for name in _locked(lock) if GPU_PACKAGE.match(name))
    assert not gpu, f"{lock.relative_to(TEMPLATE_DIR)}: GPU packages {gpu}"
    from packaging.version import Version

    sagemaker = _locked(lock)["sagemaker"]
    assert all(Version(v) >= Version(FLOORS["sagemaker"]) for v in sagemaker), sagemaker


def test_the_installed_sdk_needs_no_gpu_package() -> None:
    """The requirement closure of the installed sagemaker, from its package metadata (extras
    left out, markers evaluated here): what a resolution at this version installs."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    todo = ["sagemaker"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    assert "sagemaker-mlops" in seen and "sagemaker-train" in seen
    gpu = sorted(name for name in seen if GPU_PACKAGE.match(name))
    assert not gpu, f"sagemaker {metadata.version('sagemaker')} requires {gpu}"
