"""cruft on rendered repos: create, then pull a later template commit into an edited repo.

The template is copied (its git-tracked files, as they are in the working tree) into a throwaway
git repository, so a test can make "the next template commit" without touching this checkout.
Everything runs in subprocesses with their own HOME and git config: no global state is read or
written. cruft renders through the real hooks; the post_gen hook leaves git alone under cruft
(``_commit`` in the answers), so a created project is a plain directory the user ``git init``s, and
``cruft update``'s two temp renders carry no ``.git`` to pollute the diff.

The template-update workflow's own step scripts are run here too, against a real template move,
so its "not linked", "apply" and "conflict" branches are exercised, not only linted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from parsed_files import load_yaml

from scripts.template_layout import PROJECT_FOLDER

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PROJECT = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text("utf-8"))["project"]
GENERATED_README = f"{PROJECT_FOLDER}/README.md"


class Sandbox:
    """A tmp HOME with its own git identity, a template repository copy, and an output dir."""

    def __init__(self, root: Path) -> None:
        self.root = root
        home = root / "home"
        home.mkdir()
        (home / ".gitconfig").write_text(
            "[user]\n\tname = Test User\n\temail = test@example.com\n"
            "[init]\n\tdefaultBranch = main\n",
            encoding="utf-8",
        )
        keep = ("PATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
        self.env = {k: v for k, v in os.environ.items() if k in keep}
        self.env.update(
            HOME=str(home),
            GIT_CONFIG_GLOBAL=str(home / ".gitconfig"),
            GIT_CONFIG_NOSYSTEM="1",
            PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        )
        self.template = root / "template"
        self.out = root / "out"

    def run(self, *args: str | Path, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [str(a) for a in args],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and proc.returncode != 0:
            pytest.fail(f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def git(self, cwd: Path, *args: str) -> str:
        return self.run("git", *args, cwd=cwd).stdout.strip()

    def cruft(self, cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run(sys.executable, "-m", "cruft", *args, cwd=cwd, check=check)

    def make_template_repo(self) -> str:
        """The template's tracked files (working-tree contents) committed once; returns the SHA."""
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=TEMPLATE_DIR, capture_output=True, check=True
        ).stdout.decode()
        for rel in filter(None, listed.split("\0")):
            source = TEMPLATE_DIR / rel
            if source.is_file():  # a tracked file deleted in the working tree is skipped
                target = self.template / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        self.git(self.template, "init", "-q")
        self.commit_template("template as under test")
        return self.git(self.template, "rev-parse", "HEAD")

    def commit_template(self, message: str) -> None:
        self.git(self.template, "add", "-A")
        self.git(self.template, "commit", "-q", "--no-verify", "-m", message)

    def create(self) -> Path:
        """``cruft create`` with the default answers, then the user's git init + first commit."""
        self.out.mkdir()
        args = ("create", "--no-input", str(self.template), "--output-dir", str(self.out))
        proc = self.cruft(self.root, *args)
        self.create_stderr = proc.stderr
        repo = self.out / PROJECT
        self.git(repo, "init", "-q", "-b", "main")
        self.git(repo, "add", "-A")
        self.git(repo, "commit", "-q", "--no-verify", "-m", "Initial commit")
        return repo


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text("utf-8")
    assert old in text, f"{path}: fixture text {old!r} not found"
    path.write_text(text.replace(old, new, 1), "utf-8")


def bump_template_version(sandbox: Sandbox, version: str) -> None:
    path = sandbox.template / "cookiecutter.json"
    answers = json.loads(path.read_text("utf-8"))
    answers["__template_version"] = version
    path.write_text(json.dumps(answers, indent=2) + "\n", "utf-8")


def recorded_version(repo: Path) -> str:
    table = tomllib.loads((repo / "pyproject.toml").read_text("utf-8"))["tool"]["sagemaker-gitops"]
    return table["template_version"]


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path)


def test_cruft_create_gives_a_complete_repo(sandbox: Sandbox) -> None:
    first = sandbox.make_template_repo()
    repo = sandbox.create()
    # The hook skipped git under cruft and said what to do instead.
    assert "rendered by cruft" in sandbox.create_stderr and "git init" in sandbox.create_stderr
    state = json.loads((repo / ".cruft.json").read_text("utf-8"))
    assert state["commit"] == first and state["template"] == str(sandbox.template)
    # Vendored and pruned like a cookiecutter render; .cruft.json is tracked, not ignored.
    assert (repo / "ci_scripts" / "__init__.py").is_file()
    assert (repo / ".github" / "workflows" / "template-update.yml").is_file()
    tracked = set(sandbox.git(repo, "ls-files").splitlines())
    assert ".cruft.json" in tracked
    assert sandbox.git(repo, "status", "--porcelain", "--ignored") == ""
    assert not [p for p in tracked if "__pycache__" in p or p.startswith(".git/")]
    assert sandbox.cruft(repo, "check").returncode == 0


@pytest.mark.slow  # three renders and a git merge: started early
def test_cruft_update_brings_template_changes_and_keeps_local_edits(sandbox: Sandbox) -> None:
    sandbox.make_template_repo()
    repo = sandbox.create()
    old_version = recorded_version(repo)

    # The model team's own edits, committed.
    readme = repo / "README.md"
    readme.write_text(readme.read_text("utf-8") + "\n## Our notes\n\nKept by the team.\n", "utf-8")
    edit(repo / "Makefile", "\n", "\n# team: our own make targets below\n")
    sandbox.git(repo, "commit", "-q", "-am", "team edits")

    # The next template commit: a generated file, the vendored ci_scripts, a version bump.
    edit(sandbox.template / GENERATED_README, "## The first hour", "## The first hour (updated)")
    errors_py = sandbox.template / "ci_scripts" / "errors.py"
    errors_py.write_text(errors_py.read_text("utf-8") + "\n# template fixture change\n", "utf-8")
    bump_template_version(sandbox, "99.0.0")
    sandbox.commit_template("template fixture change")
    new = sandbox.git(sandbox.template, "rev-parse", "HEAD")

    assert sandbox.cruft(repo, "check", check=False).returncode == 1  # out of date
    sandbox.cruft(repo, "update", "--skip-apply-ask", "--allow-untracked-files")

    text = readme.read_text("utf-8")
    assert "## The first hour (updated)" in text, "the template change did not arrive"
    assert "Kept by the team." in text, "the team's README edit was lost"
    assert "# team: our own make targets below" in (repo / "Makefile").read_text("utf-8")
    assert "# template fixture change" in (repo / "ci_scripts" / "errors.py").read_text("utf-8")
    assert (old_version, recorded_version(repo)) == (old_version, "99.0.0")
    assert json.loads((repo / ".cruft.json").read_text("utf-8"))["commit"] == new
    assert not list(repo.rglob("*.rej"))
    assert sandbox.git(repo, "diff", "--name-only", "--diff-filter=U") == ""

    sandbox.git(repo, "add", "-A")
    sandbox.git(repo, "commit", "-q", "--no-verify", "-m", "template update")
    assert sandbox.cruft(repo, "check").returncode == 0
    # The vendored CLI reports the version the repo was updated to.
    status = sandbox.run(
        sys.executable, "-m", "ci_scripts", "--backend", "local", "status", "--format", "json",
        cwd=repo,
    )  # fmt: skip
    assert json.loads(status.stdout)["template_version"] == "99.0.0"
    again = sandbox.cruft(repo, "update", "--skip-apply-ask")
    assert "Nothing to do" in again.stdout
    assert sandbox.git(repo, "status", "--porcelain") == ""


# -- the template-update workflow's scripts, run for real ------------------------------------
def workflow_steps(repo: Path) -> dict[str, dict]:
    workflow = load_yaml(
        (repo / ".github" / "workflows" / "template-update.yml").read_text("utf-8")
    )
    steps = workflow["jobs"]["update"]["steps"]
    return {s["id"]: s for s in steps if "id" in s}


def run_step(sandbox: Sandbox, repo: Path, step: dict) -> tuple[dict[str, str], str]:
    """Run one ``run:`` step the way a runner does (bash -e); its outputs and step summary."""
    output, summary = repo.parent / "github_output", repo.parent / "step_summary"
    output.write_text("")
    summary.write_text("")
    sandbox.env.update(GITHUB_OUTPUT=str(output), GITHUB_STEP_SUMMARY=str(summary))
    proc = sandbox.run("bash", "-e", "-c", step["run"], cwd=repo)
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return outputs, summary.read_text() + proc.stdout


def test_workflow_without_cruft_json_ends_with_a_notice(sandbox: Sandbox, bake_once) -> None:
    """A repo made by plain cookiecutter: the check step exits 0 and says how to link it."""
    repo = sandbox.root / "plain"
    shutil.copytree(bake_once(), repo, symlinks=True)
    assert not (repo / ".cruft.json").exists()
    outputs, printed = run_step(sandbox, repo, workflow_steps(repo)["check"])
    assert outputs == {"outdated": "false"}
    assert "::notice" in printed and "cruft link" in printed


@pytest.mark.slow  # three renders, a pip install and the update step: started early
def test_workflow_update_step_lists_conflicts(sandbox: Sandbox) -> None:
    """Template and team changed one line: the update step applies the rest, lists the clash."""
    sandbox.make_template_repo()
    repo = sandbox.create()
    edit(repo / "README.md", "## The first hour", "## Our first hour")
    sandbox.git(repo, "commit", "-q", "-am", "team edit")
    edit(sandbox.template / GENERATED_README, "## The first hour", "## The first hour (updated)")
    errors_py = sandbox.template / "ci_scripts" / "errors.py"
    errors_py.write_text(errors_py.read_text("utf-8") + "\n# template fixture change\n", "utf-8")
    bump_template_version(sandbox, "99.0.0")
    sandbox.commit_template("template fixture change")
    sandbox.git(sandbox.template, "tag", "v99.0.0")
    # The default branch moves on after the release: the update must not take it.
    errors_py.write_text(errors_py.read_text("utf-8") + "# unreleased change\n", "utf-8")
    sandbox.commit_template("unreleased work on main")

    workflow = load_yaml((repo / ".github/workflows/template-update.yml").read_text("utf-8"))
    sandbox.env["CRUFT_VERSION"] = workflow["env"]["CRUFT_VERSION"]  # installed in this venv
    checked, _ = run_step(sandbox, repo, workflow_steps(repo)["check"])
    assert checked == {"tag": "v99.0.0", "outdated": "true"}
    sandbox.env["TAG"] = checked["tag"]  # the update step's env: TAG from the check step
    outputs, _ = run_step(sandbox, repo, workflow_steps(repo)["update"])
    assert outputs["title"] == "Update from the sagemaker-gitops template 99.0.0"
    assert "# unreleased change" not in (repo / "ci_scripts" / "errors.py").read_text("utf-8")
    assert outputs["workflows"] == "false"
    body = (repo / "pr-body-template-update.md").read_text("utf-8")
    assert " to 99.0.0 " in body
    assert "released tag `v99.0.0`" in body and "never to its moving default branch" in body
    assert "Resolve these by hand" in body and "- README.md" in body
    assert "# template fixture change" in (repo / "ci_scripts" / "errors.py").read_text("utf-8")
    # Everything is staged for the commit the next step makes; the body file is git-ignored.
    assert sandbox.git(repo, "diff", "--name-only") == ""
    assert "pr-body" not in sandbox.git(repo, "diff", "--cached", "--name-only")


# The last commit before the thin-repo layout (#24): its renders had the step code in
# src/<package>/ and the SDK code in pipelines/. A repo rendered by it must move by cruft update.
PREVIOUS_LAYOUT = "2022bd8"


@pytest.mark.slow  # three renders and validate's SDK build: started early
def test_cruft_update_moves_a_repo_of_the_previous_layout(sandbox: Sandbox) -> None:
    """A repo rendered by the release before the thin layout takes it by ``cruft update``: the
    platform modules leave the team's package, schema.py arrives, and the repo validates."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", PREVIOUS_LAYOUT],
        cwd=TEMPLATE_DIR,
        capture_output=True,
        check=True,
    ).stdout
    sandbox.template.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(sandbox.template)], input=archive, check=True)
    sandbox.git(sandbox.template, "init", "-q")
    sandbox.commit_template("the previous layout")
    repo = sandbox.create()
    package = repo / "src" / PROJECT.replace("-", "_")
    assert (package / "serve.py").is_file() and (package / "features.py").is_file()

    for path in sandbox.template.iterdir():  # the template as under test replaces it
        if path.name != ".git":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=TEMPLATE_DIR, capture_output=True, check=True
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        if (TEMPLATE_DIR / rel).is_file():
            (sandbox.template / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(TEMPLATE_DIR / rel, sandbox.template / rel)
    sandbox.commit_template("the thin layout")
    sandbox.cruft(repo, "update", "--skip-apply-ask", "--allow-untracked-files")

    assert sorted(p.name for p in package.glob("*.py")) == ["__init__.py", "model.py", "schema.py"]
    assert not (repo / "pipelines" / "sdk.py").exists()
    assert (repo / "ci_scripts" / "runtime" / "serve.py").is_file()
    assert not list(repo.rglob("*.rej"))
    validate = sandbox.run(
        sys.executable, "-m", "ci_scripts", "--backend", "local", "validate", cwd=repo, check=False
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr
