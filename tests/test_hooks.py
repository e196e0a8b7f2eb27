"""hooks/pre_gen_project.py: every bad answer is refused cleanly, good answers pass.

"Cleanly" means what a user of ``cookiecutter``/``cruft`` sees: the render fails, the hook's stderr
is ONE line ``error: <field>=<value>: <rule>``, and no project directory is left behind. Refusals
go through the real cookiecutter API (pytest-cookies); answers cookiecutter itself would stop
earlier (choices) and the template-locating fallbacks run the rendered hook directly.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cookiecutter.environment import StrictEnvironment
from cookiecutter.exceptions import FailedHookException
from cookiecutter.find import find_template
from cookiecutter.generate import generate_context
from cookiecutter.hooks import run_script_with_context
from cookiecutter.prompt import prompt_for_config

from scripts.template_layout import PROJECT_FOLDER, PROJECT_TEMPLATE

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
HOOKS = TEMPLATE_DIR / "hooks"
FACTS = json.loads((HOOKS.parent / "ci_scripts" / "aws_facts.json").read_text("utf-8"))
TYPES = {kind: set(types) for kind, types in FACTS["instance_types"].items()}
# Real instance types that AWS accepts for another job kind but not for this one.
NOT_FOR_PROCESSING = min(TYPES["endpoint"] - TYPES["processing"])
NOT_FOR_TRAINING = min((TYPES["processing"] | TYPES["endpoint"]) - TYPES["training"])
NOT_FOR_ENDPOINT = min(TYPES["training"] - TYPES["endpoint"])

# The artifact bucket <project>-artifacts-<12 digits>-<region> is the longest derived name.
BUCKET_OVERHEAD = len("-artifacts-") + 12 + len("-")


def longest_project(region: str) -> str:
    """The longest project the bucket name allows in ``region`` (a valid slug)."""
    return ("p" * 63)[: 63 - BUCKET_OVERHEAD - len(region)]


# (field, value, other answers, a phrase the rule must contain)
REFUSED = [
    ("project", "Churn-Model", {}, "lowercase letters"),
    ("project", "1churn", {}, "starting with a letter"),
    ("project", "churn_model", {}, "single hyphens"),
    ("project", "churn--model", {}, "single hyphens"),
    ("project", "churn-", {}, "ending"),
    ("project", "churn model", {}, "lowercase letters"),
    ("project", "a", {}, "ECR repository 'a' would be 1 characters"),
    ("project", longest_project("eu-west-1") + "x", {}, "S3 artifact bucket"),
    (
        "project",
        longest_project("ap-southeast-5") + "p",  # fine in eu-west-1, see ACCEPTED
        {"aws_region": "ap-southeast-5"},
        "would be 64 characters (at most 63)",
    ),
    ("project", "sthree-model", {}, "prefix or suffix S3 reserves"),
    ("project", "json", {}, "Python package 'json' would clash"),
    ("project", "test", {}, "Python package 'test' would clash"),  # CPython's test suite
    ("project", "class", {}, "Python package 'class' would clash"),
    ("project", "ci-scripts", {}, "Python package 'ci_scripts' would clash"),
    ("project", "   ", {}, "use lowercase letters"),  # an empty one: see the test below
    ("description", "", {}, "must not be empty"),
    ("description", "   ", {}, "must not be empty"),
    ("description", " padded", {}, "leading/trailing spaces"),
    ("description", "two\nlines", {}, "control characters"),
    ("description", "tab\there", {}, "control characters"),
    ("description", 'say "hi"', {}, 'must not contain "'),
    ("description", "back\\slash", {}, "must not contain \\"),
    ("description", "costs $5", {}, "must not contain $"),
    ("description", "x" * 201, {}, "at most 200 characters"),
    ("author", "", {}, "must not be empty"),
    ("author", 'Jane "JD" Doe', {}, 'must not contain "'),
    ("github_owner", "-org", {}, "not a GitHub user or organisation name"),
    ("github_owner", "my_org", {}, "not a GitHub user or organisation name"),
    ("github_owner", "my--org", {}, "not a GitHub user or organisation name"),
    ("github_owner", "o" * 40, {}, "not a GitHub user or organisation name"),
    ("github_owner_id", "12a", {}, "a GitHub numeric id"),
    ("github_repo_id", "-1", {}, "a GitHub numeric id"),
    ("github_repo", "my repo", {}, "not a GitHub repository name"),
    ("approvers", "", {}, "GitHub users (@login) or teams (@org/team)"),
    ("approvers", "alice", {}, "GitHub users (@login) or teams (@org/team)"),
    ("approvers", "@my-org/", {}, "GitHub users (@login) or teams (@org/team)"),
    ("approvers", "@alice @dependabot[bot]", {}, "GitHub users (@login) or teams (@org/team)"),
    ("approvers", "alice@example.com", {}, "GitHub users (@login) or teams (@org/team)"),
    ("approvers", "@org/team/x", {}, "GitHub users (@login) or teams (@org/team)"),
    ("approvers", "@-alice", {}, "GitHub users (@login) or teams (@org/team)"),
    ("github_repo", "..", {}, "not a GitHub repository name"),
    ("github_repo", "a/b", {}, "not a GitHub repository name"),
    ("github_repo", "r" * 101, {}, "not a GitHub repository name"),
    ("aws_region", "eu-west-9", {}, "not a region where SageMaker is available"),
    ("aws_region", "cn-north-1", {}, "in the 'aws' partition"),
    ("aws_region", "EU-WEST-1", {}, "not a region where SageMaker is available"),
    ("dev_account_id", "12345678901", {}, "exactly 12 digits"),
    ("dev_account_id", "1234567890123", {}, "exactly 12 digits"),
    ("staging_account_id", "12345678901a", {}, "exactly 12 digits"),
    ("prod_account_id", " 123456789012", {}, "exactly 12 digits"),
    ("processing_instance_type", "ml.p9.huge", {}, "SageMaker processing jobs accept"),
    ("processing_instance_type", "m5.large", {}, "SageMaker processing jobs accept"),
    ("processing_instance_type", NOT_FOR_PROCESSING, {}, "SageMaker processing jobs accept"),
    ("training_instance_type", NOT_FOR_TRAINING, {}, "SageMaker training jobs accept"),
    ("endpoint_instance_type", NOT_FOR_ENDPOINT, {}, "endpoint production variants accept"),
    ("monitoring", "yes", {"deployment": "serverless"}, "serverless endpoints support neither"),
    ("api_gateway", "yes", {"deployment": "batch"}, "no endpoint to put an API in front of"),
]


def _refused_id(case: tuple) -> str:
    field, value = case[0], case[1]
    return f"{field}={value[:24]!r}"


@pytest.mark.parametrize(
    ("field", "value", "others", "rule"), REFUSED, ids=map(_refused_id, REFUSED)
)
def test_bad_answer_is_refused_cleanly(cookies, tmp_path, capfd, field, value, others, rule):
    result = cookies.bake(extra_context={field: value, **others}, template=str(TEMPLATE_DIR))

    assert isinstance(result.exception, FailedHookException), result.exception
    err = capfd.readouterr().err
    assert err.splitlines() == [err.strip()], f"expected one line, got {err!r}"
    assert err.startswith(f"error: {field}={value!r}: "), err
    assert rule in err
    leftovers = [p for p in (tmp_path / "cookies").rglob("*") if not p.name.startswith("bake")]
    assert leftovers == [], "the failed render left files behind"


def _context(**answers: str) -> dict:
    """The context cookiecutter hands the hook, with answers set past cookiecutter's own checks.

    Answers replace cookiecutter.json entries before the private names are derived, exactly as a
    replayed context would; ``_``-prefixed ones (``_repo_dir``) are added afterwards.
    """
    context = generate_context(context_file=str(TEMPLATE_DIR / "cookiecutter.json"))
    public = {k: v for k, v in answers.items() if not k.startswith("_")}
    context["cookiecutter"].update(public)
    context["cookiecutter"] = prompt_for_config(context, no_input=True)
    context["cookiecutter"].update({k: v for k, v in answers.items() if k.startswith("_")})
    return context


def run_pre_gen(project_dir: Path, **answers: str) -> bool:
    """Run the rendered pre_gen hook the way cookiecutter does; True when it accepts."""
    project_dir.mkdir(exist_ok=True)
    try:
        run_script_with_context(HOOKS / "pre_gen_project.py", project_dir, _context(**answers))
    except FailedHookException:
        return False
    return True


ACCEPTED = [
    {},
    {"project": longest_project("eu-west-1")},
    {"project": longest_project("ap-southeast-5"), "aws_region": "ap-southeast-5"},
    {"project": longest_project("ap-southeast-5") + "p", "aws_region": "eu-west-1"},
    {"project": "ab", "aws_region": "us-east-1"},
    {"project": "model-2-x9", "github_repo": "my.repo_name-2", "github_owner": "A-b-1"},
    {"github_owner_id": "583231", "github_repo_id": "1296269"},
    {"approvers": "@alice"},
    {"approvers": "@my-org/ml_approvers, @bob-2  @Other-Org/Team-1"},
    {"staging_account_id": "222222222222", "prod_account_id": "333333333333"},
    {"description": "Prédiction du churn, v2 (beta): 100% sklearn! #1", "author": "Zoë Ng"},
    {"deployment": "serverless", "monitoring": "no", "api_gateway": "yes"},
    {"deployment": "batch", "monitoring": "yes", "api_gateway": "no"},
    {
        "processing_instance_type": min(TYPES["processing"]),
        "training_instance_type": max(TYPES["training"]),
        "endpoint_instance_type": min(TYPES["endpoint"]),
    },
]


@pytest.mark.parametrize("answers", ACCEPTED, ids=lambda a: ",".join(a) or "defaults")
def test_good_answers_are_accepted(tmp_path, monkeypatch, capfd, answers):
    monkeypatch.chdir(TEMPLATE_DIR)
    assert run_pre_gen(tmp_path / "p", **answers), capfd.readouterr().err
    assert capfd.readouterr().err == ""


def test_defaults_render(bake_once):
    """The answers everyone starts from pass every rule, through the real cookiecutter API."""
    assert (bake_once() / "pyproject.toml").is_file()


def test_apostrophes_in_free_text_are_written_where_they_belong(bake_once):
    """O'Brien is a name, not an injection: pyproject.toml (a double-quoted TOML string) and the
    README keep it as typed."""
    import tomllib

    author, description = "Siobhán O'Brien", "The team's churn model"
    project = bake_once(author=author, description=description)

    meta = tomllib.loads((project / "pyproject.toml").read_text("utf-8"))["project"]
    assert meta["authors"] == [{"name": author}] and meta["description"] == description
    assert description in (project / "README.md").read_text("utf-8")


def test_choice_outside_the_options_is_refused(tmp_path, monkeypatch, capfd):
    """cookiecutter checks choices itself on a normal run; a replayed context is not checked."""
    monkeypatch.chdir(TEMPLATE_DIR)
    assert not run_pre_gen(tmp_path / "p", deployment="async")
    assert (
        capfd.readouterr().err
        == "error: deployment='async': choose one of realtime, serverless, batch\n"
    )


def test_template_found_through_repo_dir_when_parent_cwd_is_elsewhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the hook's parent process (this one) is not in the template
    assert run_pre_gen(tmp_path / "p", _repo_dir=str(TEMPLATE_DIR))
    assert not run_pre_gen(tmp_path / "p", aws_region="eu-west-9", _repo_dir=str(TEMPLATE_DIR))


def test_stale_repo_dir_is_ignored_when_parent_cwd_is_the_template(tmp_path, monkeypatch):
    """cruft renders without _repo_dir; a stale one must not hide the template being rendered."""
    monkeypatch.chdir(TEMPLATE_DIR)
    assert run_pre_gen(tmp_path / "p", _repo_dir=str(tmp_path / "gone"))


def test_no_template_dir_is_a_one_line_error(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    assert not run_pre_gen(tmp_path / "p", _repo_dir=str(tmp_path / "gone"))
    err = capfd.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(
        "error: pre_gen_project: ci_scripts/aws_facts.json: cannot locate the template"
    )


def _functions(path: Path) -> dict[str, str]:
    tree = ast.parse(path.read_text("utf-8"))
    return {node.name: ast.dump(node) for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_only_the_pre_gen_hook_locates_the_template():
    """cookiecutter runs each hook as a lone temp file (no shared module): one hook needs the
    template, so the code that finds it exists once."""
    pre, post = _functions(HOOKS / "pre_gen_project.py"), _functions(HOOKS / "post_gen_project.py")
    for name in ("find_template_dir", "_is_template_dir", "_parent_cwd", "vendor_ci_scripts"):
        assert name in pre and name not in post, name


def test_pre_gen_vendors_ci_scripts_with_its_record(tmp_path, monkeypatch):
    monkeypatch.chdir(TEMPLATE_DIR)
    assert run_pre_gen(tmp_path / "p")
    vendored = tmp_path / "p" / "ci_scripts"
    assert (vendored / "__init__.py").is_file() and (vendored / "VENDORED.sha256").is_file()
    assert not list(vendored.rglob("__pycache__"))


@pytest.mark.parametrize(
    "hook", ["pre_gen_project.py", "post_gen_project.py", "../ci_scripts/vendored.py"]
)
def test_hooks_use_only_the_standard_library(hook):
    """Users run `uvx cookiecutter`: the hook's Python has cookiecutter and nothing else (and
    pre_gen_project loads ci_scripts/vendored.py from the template)."""
    tree = ast.parse((HOOKS / hook).read_text("utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= sys.stdlib_module_names | {"__future__"}, imported


@pytest.fixture(scope="module")
def template_repo(tmp_path_factory) -> Path:
    """A git repo of the template as in this working tree (`cruft create` takes a git URL)."""
    repo = tmp_path_factory.mktemp("template-repo")
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=TEMPLATE_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for rel in filter(None, files):
        source = TEMPLATE_DIR / rel
        if source.is_file() and "__pycache__" not in source.parts:
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / rel)
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=0"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], [*identity, "commit", "-qm", "t"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    return repo


def test_cruft_create_runs_the_hooks_without_repo_dir(template_repo, tmp_path, monkeypatch, capfd):
    """cruft sets no _repo_dir: the hooks find the template through their parent's cwd."""
    from cruft import create

    monkeypatch.chdir(tmp_path)
    project = create(str(template_repo), output_dir=tmp_path / "out", no_input=True)

    assert json.loads((project / ".cruft.json").read_text("utf-8"))["template"] == str(
        template_repo
    )
    vendored = sorted(p.relative_to(project) for p in (project / "ci_scripts").rglob("*.py"))
    assert vendored == sorted(
        p.relative_to(template_repo) for p in (template_repo / "ci_scripts").rglob("*.py")
    )
    assert not (project / ".git").exists(), "cruft renders must not get a git repository"
    assert "rendered by cruft, which manages git itself" in capfd.readouterr().err


def test_cruft_create_refuses_a_bad_answer(template_repo, tmp_path, monkeypatch, capfd):
    from cruft import create

    monkeypatch.chdir(tmp_path)
    with pytest.raises(FailedHookException):
        create(
            str(template_repo),
            output_dir=tmp_path / "out",
            no_input=True,
            extra_context={"dev_account_id": "42"},
        )
    assert capfd.readouterr().err.startswith("error: dev_account_id='42': ")
    assert not any((tmp_path / "out").iterdir())


def test_post_gen_fails_loudly_when_a_pruned_path_is_missing(
    template_repo, tmp_path, cookies, capfd
):
    """The pruning table cannot rot: a listed path the render lacks stops the render, cleanly."""
    template = tmp_path / "template"
    shutil.copytree(template_repo, template, ignore=shutil.ignore_patterns(".git"))
    (template / PROJECT_FOLDER / "infra" / "api.yml").unlink()

    result = cookies.bake(extra_context={"api_gateway": "no"}, template=str(template))

    assert isinstance(result.exception, FailedHookException)
    err = capfd.readouterr().err
    assert err.splitlines() == [
        "error: post_gen_project: infra/api.yml: PRUNED_WHEN[api_gateway=no] in "
        "hooks/post_gen_project.py lists this file but the render has none; update the table or "
        "the template"
    ]
    leftovers = [p for p in (tmp_path / "cookies").rglob("*") if not p.name.startswith("bake")]
    assert leftovers == []


def test_render_without_git_on_path_warns_and_skips_git(cookies, monkeypatch, capfd, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "no-binaries-here"))  # the hook runs sys.executable
    result = cookies.bake(template=str(TEMPLATE_DIR))

    assert result.exception is None, result.exception
    assert (result.project_path / "ci_scripts" / "__init__.py").is_file()
    assert not (result.project_path / ".git").exists()
    assert "warning: git not found" in capfd.readouterr().err


def test_a_render_prints_the_next_steps(cookies, capfd, monkeypatch, tmp_path):
    """A plain render says where to go and what to run first (from the user's directory)."""
    monkeypatch.setenv("PWD", str(tmp_path))
    result = cookies.bake(template=str(TEMPLATE_DIR))

    assert result.exception is None, result.exception
    out = capfd.readouterr().out
    where = result.project_path.relative_to(tmp_path)
    steps = [line.split("#")[0].strip() for line in out.splitlines() if line.startswith("  ")]
    assert steps[:3] == [f"cd {where}", "make test", "make pipeline"], out
    assert 'README.md, "The first hour"' in out


# Answers that are no plain directory name. cookiecutter creates the project directory, named by
# the template folder, before pre_gen_project runs (cookiecutter issue #821): with a bare
# {{cookiecutter.project}} folder, "" and "." rendered to the output directory itself ("directory
# already exists": the hook never ran), "a/b" left a/ behind and "../outside" wrote beside it.
NOT_A_DIRECTORY_NAME = ["", ".", "a/b", "../outside"]


@pytest.mark.parametrize("project", NOT_A_DIRECTORY_NAME)
def test_a_project_that_is_no_directory_name_is_refused_by_the_hook(
    cookies, tmp_path, capfd, project
):
    result = cookies.bake(extra_context={"project": project}, template=str(TEMPLATE_DIR))

    assert isinstance(result.exception, FailedHookException), result.exception
    err = capfd.readouterr().err
    assert err.splitlines() == [err.strip()], f"expected one line, got {err!r}"
    assert err.startswith(f"error: project={project!r}: use lowercase letters"), err
    leftovers = [p for p in (tmp_path / "cookies").rglob("*") if not p.name.startswith("bake")]
    assert leftovers == [], "the failed render left files behind"


def test_cookiecutter_renders_the_folder_template_layout_names():
    """scripts/template_layout.py is the one name tests and scripts use: it is cookiecutter's."""
    assert find_template(TEMPLATE_DIR, StrictEnvironment()) == PROJECT_TEMPLATE


def test_an_empty_project_fails_the_cookiecutter_command_with_the_hooks_line(tmp_path):
    """What a user typing ``cookiecutter`` sees: exit 1, the hook's line, an empty output dir."""
    out, home = tmp_path / "out", tmp_path / "home"
    out.mkdir()
    home.mkdir()
    config = tmp_path / "config.yaml"  # replay and clone dirs inside tmp_path, not in ~
    config.write_text(f"cookiecutters_dir: {home / 'c'}\nreplay_dir: {home / 'r'}\n", "utf-8")
    command = [sys.executable, "-m", "cookiecutter", "--no-input", "--config-file", str(config)]
    proc = subprocess.run(
        [*command, "-o", str(out), str(TEMPLATE_DIR), "project="],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "HOME": str(home)},
    )

    assert proc.returncode == 1, proc.stderr
    hook_lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(hook_lines) == 1 and hook_lines[0].startswith("error: project='': "), proc.stderr
    assert "already exists" not in proc.stderr
    assert list(out.iterdir()) == []
