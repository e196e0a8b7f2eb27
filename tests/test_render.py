"""Render every accepted option combination and check what comes out.

deployment x monitoring x api_gateway (minus what the pre_gen hook refuses) is rendered once per
session through the real hooks; each test then checks one property on every render: nothing of
the template left in it, the options really change it, ci_scripts vendored byte for byte, one git
commit. The default render also runs its own test suite, as a new user's first commit would.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import jsonschema
import pytest
from option_matrix import (
    ALL_COMBINATIONS,
    BATCH_COMBINATION,
    COMBINATIONS,
    COOKIECUTTER_JSON,
    DEFAULT_COMBINATION,
    combination_id,
    is_valid_combination,
)

from scripts.template_layout import PROJECT_TEMPLATE

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
RUNTIME_SUITE = TEMPLATE_DIR / "tests" / "runtime"
# tests/runtime/'s marker (registered by its conftest) of the tests no problem type changes.
SAME_FOR_EVERY_MODEL = "same_for_every_model"


def load_hook(name: str) -> ModuleType:
    """Import a hook as a module (its rendered-answers string stays unparsed until main())."""
    spec = importlib.util.spec_from_file_location(name, TEMPLATE_DIR / "hooks" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PRE_GEN, POST_GEN = load_hook("pre_gen_project"), load_hook("post_gen_project")


@pytest.fixture(params=COMBINATIONS, ids=combination_id)
def combo(request) -> dict[str, str]:
    return request.param


@pytest.fixture
def rendered(bake_once, combo) -> Path:
    return bake_once(**combo)


def project_files(root: Path) -> list[Path]:
    """Every file of a render, relative to its root, without git's own."""
    return sorted(
        path.relative_to(root)
        for path in root.rglob("*")
        if path.is_file() and ".git" not in path.relative_to(root).parts
    )


def test_filter_matches_the_hook():
    """The combinations left out are exactly those pre_gen_project refuses."""
    for combo in ALL_COMBINATIONS:
        try:
            PRE_GEN.check_combinations(combo)
            refused = False
        except PRE_GEN.Refused:
            refused = True
        assert refused is not is_valid_combination(combo), combo
    assert DEFAULT_COMBINATION in COMBINATIONS


# Jinja left unrendered: {{ }} that is not a GitHub expression ${{ }}, {% %}, {# #} that is not
# shell's ${#var}, or a cookiecutter.<variable> reference (cookiecutter.json is just a file name).
RESIDUE = re.compile(r"(?<!\$)\{\{|\{%|(?<!\$)\{#|\bcookiecutter\.(?!json\b)[A-Za-z_]")


def test_no_template_residue(rendered):
    """Nothing of the template in paths or contents; "cookiecutter" only where it is prose.

    ci_scripts/ is exempt from the content scan: it is copied, not rendered, and
    test_ci_scripts_vendored_byte_for_byte pins it to the template's copy.
    Markdown docs may name cookiecutter (how the repo was made, cruft updates); nothing else may.
    """
    problems = []
    for rel in project_files(rendered):
        if re.search(r"\{\{|\}\}|\{%|%\}|cookiecutter", rel.as_posix(), re.IGNORECASE):
            problems.append(f"{rel}: template syntax in the path")
        if rel.parts[0] == "ci_scripts":
            continue
        try:
            text = (rendered / rel).read_text("utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if RESIDUE.search(line) or (rel.suffix != ".md" and "cookiecutter" in line.lower()):
                problems.append(f"{rel}:{number}: {line.strip()[:120]}")
    assert problems == []


def test_api_gateway_option(rendered, combo):
    wanted = combo["api_gateway"] == "yes"
    assert (rendered / "infra" / "api.yml").is_file() is wanted
    assert (rendered / "infra" / "api_handler").is_dir() is wanted
    if not wanted:
        leftovers = [str(rel) for rel in project_files(rendered) if "api_handler" in rel.as_posix()]
        assert leftovers == []


def manifests(root: Path) -> dict[str, dict]:
    return {
        env: json.loads((root / "deploy" / f"{env}.json").read_text("utf-8"))
        for env in ("staging", "prod")
    }


def test_deployment_option(rendered, combo):
    for env, manifest in manifests(rendered).items():
        endpoint = manifest["endpoint"]
        assert endpoint["type"] == combo["deployment"], env
        if combo["deployment"] == "serverless":
            assert "instance_type" not in endpoint, env
            assert "serverless" in endpoint, env
        else:
            assert endpoint["instance_type"] == COOKIECUTTER_JSON["endpoint_instance_type"]
            assert "serverless" not in endpoint, env


def test_monitoring_option(rendered, combo):
    wanted = combo["monitoring"] == "yes"
    assert (rendered / ".github" / "workflows" / "monitor.yml").is_file() is wanted
    for env, manifest in manifests(rendered).items():
        assert manifest.get("data_capture", {}).get("enabled", False) is wanted, env


def test_manifests_valid_against_the_vendored_schema(rendered):
    for env, manifest in manifests(rendered).items():
        schema_path = (rendered / "deploy" / manifest["$schema"]).resolve()
        assert schema_path == rendered / "ci_scripts" / "schemas" / "manifest.schema.json"
        schema = json.loads(schema_path.read_text("utf-8"))
        jsonschema.validate(manifest, schema)
        assert manifest["environment"] == env


def test_project_table_records_the_answers(rendered, combo):
    from ci_scripts.project import ProjectConfig

    table = tomllib.loads((rendered / "pyproject.toml").read_text("utf-8"))["tool"][
        "sagemaker-gitops"
    ]
    assert table["deployment"] == combo["deployment"]
    assert table["monitoring"] is (combo["monitoring"] == "yes")
    assert table["api_gateway"] is (combo["api_gateway"] == "yes")
    config = ProjectConfig.load(rendered)
    assert config.project == rendered.name == COOKIECUTTER_JSON["project"]
    assert config.package == config.project.replace("-", "_")
    assert (rendered / "src" / config.package / "__init__.py").is_file()
    assert config.artifact_bucket == (
        f"{config.project}-artifacts-{config.accounts['dev']}-{config.region}"
    )


def test_codeowners_name_the_approvers(bake_once):
    """Every CODEOWNERS rule names the approvers answered at generation (issue 28): the default
    is a team of the owner, never the owner alone (an organisation is no owner, so GitHub would
    ignore the line and the approval of a model version would need nobody)."""

    def rules(root: Path) -> dict[str, list[str]]:
        lines = (root / ".github" / "CODEOWNERS").read_text("utf-8").splitlines()
        return {line.split()[0]: line.split()[1:] for line in lines if line and line[0] != "#"}

    default = rules(bake_once(**DEFAULT_COMBINATION))
    owner = COOKIECUTTER_JSON["github_owner"]
    assert set(default) >= {"/deploy/", "/.github/", "/infra/", "/ci_scripts/"}
    assert all(owners == [f"@{owner}/ml-approvers"] for owners in default.values()), default
    several = rules(bake_once(**DEFAULT_COMBINATION, approvers="@alice, @my-org/ml-team  @bob"))
    assert set(several) == set(default)
    assert all(o == ["@alice", "@my-org/ml-team", "@bob"] for o in several.values()), several


def test_pruned_paths_exist_in_the_template():
    """Every path the post_gen hook may remove is one the template renders (the table can't rot)."""
    for (option, answer), paths in POST_GEN.PRUNED_WHEN.items():
        assert answer in COOKIECUTTER_JSON[option], (option, answer)
        for entry in paths:
            rel = entry.format(package="{{cookiecutter.__package}}")
            path = PROJECT_TEMPLATE / rel
            assert path.is_dir() if rel.endswith("/") else path.is_file(), rel


def vendorable_files(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.suffix not in (".pyc", ".pyo")
    }


def test_ci_scripts_vendored_byte_for_byte(rendered):
    vendored = vendorable_files(rendered / "ci_scripts")
    assert vendored.pop("VENDORED.sha256"), "no record of what was vendored"
    source = vendorable_files(TEMPLATE_DIR / "ci_scripts")
    differing = sorted(
        name for name in vendored.keys() | source.keys() if vendored.get(name) != source.get(name)
    )
    assert differing == [], "vendored ci_scripts differ from the template's copy"
    assert "__init__.py" in vendored
    assert not (PROJECT_TEMPLATE / "ci_scripts").exists(), "the template must keep ONE copy"


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_git_initialised_with_one_commit(rendered):
    version = COOKIECUTTER_JSON["__template_version"]
    assert git(rendered, "rev-list", "--count", "HEAD") == "1"
    assert git(rendered, "branch", "--show-current") == "main"
    assert (
        git(rendered, "log", "-1", "--format=%s")
        == f"Initial commit from sagemaker-gitops {version}"
    )
    assert git(rendered, "status", "--porcelain", "--ignored") == ""
    tracked = sorted(Path(p) for p in git(rendered, "ls-files").splitlines())
    assert tracked == project_files(rendered)
    # bake_once renders with no git identity: the hook's fallback is the author answer.
    author = COOKIECUTTER_JSON["author"]
    owner = COOKIECUTTER_JSON["github_owner"]
    assert git(rendered, "log", "-1", "--format=%an <%ae>") == (
        f"{author} <{owner}@users.noreply.github.com>"
    )


def test_git_commit_uses_a_configured_identity(bake_once):
    root = bake_once(git_identity=("Dana Dev", "dana@example.com"))
    assert git(root, "log", "-1", "--format=%an <%ae>") == "Dana Dev <dana@example.com>"


@pytest.mark.slow
def test_rendered_repo_passes_its_own_tests(bake_once, tmp_path):
    """A new user's first CI run: the generated repo's own suite, on the default answers."""
    repo = tmp_path / "repo"
    shutil.copytree(bake_once(**DEFAULT_COMBINATION), repo, symlinks=True)
    proc = run_own_suite(repo)
    assert proc.returncode == 0, failure_report(proc.stdout + proc.stderr)


def test_the_marker_run_own_suite_deselects_is_tests_runtimes() -> None:
    """Per problem type, run_own_suite leaves out the runtime tests marked SAME_FOR_EVERY_MODEL:
    the marker must be the one tests/runtime/ registers and puts on tests, or -m would select
    nothing away (silently) or everything (a marker unknown to pytest is only a warning)."""
    conftest = (RUNTIME_SUITE / "conftest.py").read_text("utf-8")
    assert re.search(rf'^SAME_FOR_EVERY_MODEL = "{SAME_FOR_EVERY_MODEL}"', conftest, re.M)
    marked = [
        path.name
        for path in sorted(RUNTIME_SUITE.glob("test_*.py"))
        if f"@pytest.mark.{SAME_FOR_EVERY_MODEL}\n" in path.read_text("utf-8")
    ]
    assert marked == ["test_preprocess.py", "test_serve.py"]


def test_batch_render(bake_once, tmp_path: Path) -> None:
    """deployment=batch: batch manifests (staging 1 instance, prod 2 of the endpoint instance
    type; prefixes per environment in the artifact bucket), the batch modules and a sample input,
    and the render's own batch tests pass (the rest of its suite is the default render's, which
    test_rendered_repo_passes_its_own_tests runs)."""
    root = bake_once(**BATCH_COMBINATION)
    bucket = f"s3://{COOKIECUTTER_JSON['project']}-artifacts-"
    for env, count in (("staging", 1), ("prod", 2)):
        manifest = manifests(root)[env]
        assert manifest["endpoint"] == {
            "type": "batch",
            "instance_type": COOKIECUTTER_JSON["endpoint_instance_type"],
            "initial_instance_count": count,
        }
        batch = manifest["batch"]
        assert batch["input_prefix"].startswith(bucket) and batch["input_prefix"].endswith(
            f"/batch/{env}/input/"
        )
        assert batch["output_prefix"] == batch["input_prefix"].replace("/input/", "/output/")
        assert "deployment" not in manifest  # no canary on a transform
    assert (root / "data/batch/sample.csv").is_file()
    repo = tmp_path / "repo"
    shutil.copytree(root, repo, symlinks=True)
    proc = run_own_suite(repo, files=("tests/runtime/test_batch_check.py",))
    assert proc.returncode == 0, failure_report(proc.stdout + proc.stderr)


def test_endpoint_renders_have_no_batch_modules(rendered, combo) -> None:
    batch = combo["deployment"] == "batch"
    found = [
        rel.as_posix()
        for rel in project_files(rendered)
        if "batch" in rel.as_posix() and rel.parts[0] != "ci_scripts"  # vendored for every render
    ]
    assert bool(found) is batch, found


# The render's own check that its pipelines/pipeline.py builds (the same file for every model):
# left out of a non-default render's run, whose definition tests/pipelines/test_training_definition
# builds from the same render in this process, where the SDK is imported already (its import
# alone is about 3 s of CPU in each render's pytest).
PIPELINE_TEST = "tests/test_pipeline.py"


def run_own_suite(
    repo: Path,
    timeout: float = 300,
    files: tuple[str, ...] = (),
    *,
    model_dependent_only: bool = False,
) -> subprocess.CompletedProcess[str]:
    """The generated repo's own test suite (or ``files`` of it), run as its CI runs it (no
    pytest state of ours), together with the platform's container-code tests (tests/runtime/ of
    the template, copied into ``repo`` as tests/runtime/: they test ci_scripts.runtime on this
    render's model and data). ``model_dependent_only`` leaves out the runtime tests marked
    ``same_for_every_model`` and :data:`PIPELINE_TEST` (for a render other than the default,
    whose suite runs them).
    ``repo`` must be a throw-away copy."""
    shutil.copytree(RUNTIME_SUITE, repo / "tests" / "runtime", dirs_exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    selection = []
    if model_dependent_only:
        assert (repo / PIPELINE_TEST).is_file(), PIPELINE_TEST
        selection = ["-m", f"not {SAME_FOR_EVERY_MODEL}", f"--ignore={PIPELINE_TEST}"]
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *selection, *files],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def failure_report(output: str) -> str:
    """The first failure's traceback and pytest's summary, not a screenful of warnings."""
    lines = output.splitlines()
    start = next(
        (i for i, line in enumerate(lines) if re.match(r"=+ (FAILURES|ERRORS) =+", line)), 0
    )
    summary = [line for line in lines if line.startswith(("FAILED ", "ERROR "))] + lines[-1:]
    return "\n".join([*lines[start : start + 60], "...", *summary])
