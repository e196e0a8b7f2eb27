"""Finish the rendered model repo: prune what the options exclude, git init.

Runs with cwd = the rendered project, under whatever Python runs cookiecutter or cruft: standard
library only. It needs nothing but the rendered project: pre_gen_project, the one hook that
locates the template, has already vendored ci_scripts/ into it. Any failure prints one
``error: ...`` line and exits 1, and cookiecutter then removes the half-made project; git problems
are the exception (the project is complete without a commit), they only warn.

- Tool caches (``CACHE_DIRS``) copied from a used template working tree are dropped.
- deployment=batch gets ``data/batch/sample.csv``, a batch input written from the dataset.
- Pruning is driven by ``PRUNED_WHEN`` alone. A listed path that the render did not produce is an
  error, so the table cannot silently rot when a file is renamed.
- The next steps (cd, make test, make pipeline) are printed last (not under cruft).
- ``git init -b main`` + one commit "Initial commit from sagemaker-gitops <version>". When git has
  no identity configured, the commit is made as the ``author`` answer with the address
  ``<github_owner>@users.noreply.github.com`` (a note says how to re-author it). Under cruft, git is
  left alone: cruft writes ``.cruft.json`` after this hook, and ``cruft update/diff`` render into
  temp dirs they diff, where a ``.git`` would be noise.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

# cookiecutter renders this file before running it; jsonify escapes every quote and backslash.
ANSWERS_JSON = r"""{{ cookiecutter | jsonify }}"""
# {% raw %} Jinja stops here: the rest of this file reaches Python exactly as written.

# (option, answer) -> paths (relative to the project root; a trailing "/" marks a directory)
# removed when that answer is given; ``{package}`` stands for the Python package.
BATCH_ONLY = (".github/workflows/batch-run.yml",)
PRUNED_WHEN: dict[tuple[str, str], tuple[str, ...]] = {
    ("api_gateway", "no"): ("infra/api.yml", "infra/api_handler/"),
    ("monitoring", "no"): (".github/workflows/monitor.yml",),
    # An endpoint has no batch job to run (the batch pipeline is ci_scripts'). A batch deployment
    # uses everything else (serve scores its files, the monitor reads its runs): nothing to prune.
    ("deployment", "realtime"): BATCH_ONLY,
    ("deployment", "serverless"): BATCH_ONLY,
}

# deployment=batch: a sample batch input written from the shipped dataset (every 10th row, without
# the target, its dataset line number as the id; ci_scripts/dataset.py), so the first batch run
# (the demo's, `ci_scripts batch-run`) has a file to score, and labels can be joined by that id.
DATASET_MODULE = Path("ci_scripts", "dataset.py")
TARGET = "target"  # the shipped dataset's label column (schema.py's TARGET)

# Tool caches a template working tree may hold (someone ran ruff or pytest in it): never output.
CACHE_DIRS = ("__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache")

# Variables that point git at another repository (set, e.g., when this runs inside a git hook).
GIT_REPO_ENV = (
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE", "GIT_PREFIX",
    "GIT_IMPLICIT_WORK_TREE", "GIT_GRAFT_FILE", "GIT_SHALLOW_FILE",
)  # fmt: skip


class HookError(Exception):
    """A failure that must stop the render (cookiecutter then deletes the project)."""


def prune(project_dir: Path, answers: dict) -> list[str]:
    """Remove what the chosen options exclude; every listed path must exist in the render."""
    removed = []
    for (option, answer), paths in PRUNED_WHEN.items():
        if answers[option] != answer:
            continue
        for rel in (entry.format(package=answers["__package"]) for entry in paths):
            path = project_dir / rel
            is_dir = rel.endswith("/")
            if is_dir and path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif not is_dir and path.is_file():
                path.unlink()
            else:
                kind = "directory" if is_dir else "file"
                raise HookError(
                    f"{rel}: PRUNED_WHEN[{option}={answer}] in hooks/post_gen_project.py lists "
                    f"this {kind} but the render has none; update the table or the template"
                )
            _remove_empty_parents(path.parent, project_dir)
            removed.append(rel)
    return removed


def write_batch_sample(project_dir: Path) -> Path:
    """``data/batch/sample.csv`` from ``data/dataset.csv``, by the vendored platform's own
    ``ci_scripts/dataset.py`` (loaded by path: ``data adopt`` rewrites the sample with it too)."""
    path = project_dir / DATASET_MODULE
    spec = importlib.util.spec_from_file_location("_vendored_dataset", path)
    if spec is None or spec.loader is None:
        raise HookError(f"{DATASET_MODULE.as_posix()}: cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    try:
        spec.loader.exec_module(module)
        return module.write_batch_sample(project_dir, TARGET)
    finally:
        sys.modules.pop(spec.name, None)


def remove_caches(project_dir: Path) -> None:
    """Drop tool caches cookiecutter copied from a used template checkout."""
    for name in CACHE_DIRS:
        for path in sorted(project_dir.rglob(name), reverse=True):
            if path.is_dir() and ".git" not in path.relative_to(project_dir).parts:
                shutil.rmtree(path, ignore_errors=True)


def _remove_empty_parents(directory: Path, stop: Path) -> None:
    while directory != stop and directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
        directory = directory.parent


def init_git(project_dir: Path, answers: dict) -> None:
    """git init + one commit; problems only warn (the project itself is already complete)."""
    if "_commit" in answers:  # cruft sets _commit; cookiecutter never does
        _note(
            "note: rendered by cruft, which manages git itself: on `cruft create`, run "
            "`git init -b main && git add -A && git commit -m 'Initial commit'` (nothing to do "
            "on `cruft update`/`cruft diff`)"
        )
        return
    if shutil.which("git") is None:
        _note("warning: git not found; the project was rendered without a git repository")
        return
    env = {k: v for k, v in os.environ.items() if k not in GIT_REPO_ENV}

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", *args], cwd=project_dir, env=env, capture_output=True, text=True, check=False
        )

    if git("init", "-q", "-b", "main").returncode != 0:  # git < 2.28 has no -b
        git("init", "-q")
        git("symbolic-ref", "HEAD", "refs/heads/main")
    identity: list[str] = []
    if not all(
        git("config", "--get", f"user.{key}").returncode == 0
        or {f"GIT_AUTHOR_{key.upper()}", f"GIT_COMMITTER_{key.upper()}"} <= env.keys()
        for key in ("name", "email")
    ):
        name, email = answers["author"], f"{answers['github_owner']}@users.noreply.github.com"
        identity = ["-c", f"user.name={name}", "-c", f"user.email={email}"]
        _note(
            f"note: git has no identity configured: initial commit made as {name} <{email}>; "
            "after `git config --global user.name/user.email`, run "
            "`git commit --amend --reset-author --no-edit`"
        )
    message = f"Initial commit from sagemaker-gitops {answers['__template_version']}"
    # --no-verify: this commit is the template's output, made before the project's own tooling
    # (pre-commit) is installed; a user's global git hooks would judge it with the wrong tools.
    for args in (("add", "-A"), (*identity, "commit", "-q", "--no-verify", "-m", message)):
        result = git(*args)
        if result.returncode != 0:
            shutil.rmtree(project_dir / ".git", ignore_errors=True)
            reason = " ".join((result.stderr or result.stdout).split())
            _note(f"warning: `git {' '.join(args)}` failed ({reason}); no git repository created")
            return


def _note(message: str) -> None:
    print(message, file=sys.stderr)


def main() -> int:
    try:
        answers = json.loads(ANSWERS_JSON)
        project_dir = Path.cwd()
        remove_caches(project_dir)
        prune(project_dir, answers)
        if answers["deployment"] == "batch":
            write_batch_sample(project_dir)
    except (HookError, RuntimeError, OSError, ValueError, KeyError) as exc:
        print(f"error: post_gen_project: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    init_git(project_dir, answers)
    if "_commit" not in answers:  # cruft also renders into temp dirs for update/diff: no noise
        print(next_steps(project_dir, os.environ.get("PWD")))
    return 0


def next_steps(project_dir: Path, cwd: str | None) -> str:
    """What to run first, from the directory the user rendered in (``$PWD``: cookiecutter runs
    this hook in the project, its own cwd is the template)."""
    where = str(project_dir)
    if cwd:
        relative = os.path.relpath(project_dir, cwd)
        if not relative.startswith(os.pardir):
            where = relative
    return "\n".join(
        [
            f'Rendered {project_dir.name}. Next steps (README.md, "The first hour"):',
            f"  cd {where}",
            "  make test       # builds .venv, lints, runs the tests, validates the manifests",
            "  make pipeline   # trains and registers version 1 locally (no AWS account needed)",
            "  make propose    # then commit deploy/staging.json, make deploy-staging (README)",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
# {% endraw %}
