"""Documentation a team can adopt from, and the one version number, kept honest.

- docs/troubleshooting.md (shipped in every generated repo) lists every message ci_scripts can
  print with what to do about it: scripts/gen_troubleshooting.py extracts the messages from the
  code with ``ast``; a message missing from the doc, still saying TODO, or documented but gone
  from the code fails here.
- Both READMEs open with the mermaid flow (push -> image -> pipeline -> registry -> PR -> staging
  -> PR -> prod, monitoring -> retraining), then the first hour, the options, the troubleshooting
  link; the generated README's options table shows the answers it was rendered with.
- cookiecutter.json's __template_version, ci_scripts.__version__, pyproject's version and the
  newest CHANGELOG release agree, and a rendered repo's ``ci_scripts status`` shows it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from urllib.parse import quote

import pytest

from scripts import gen_troubleshooting as gen
from scripts.template_layout import PROJECT_FOLDER

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
COOKIECUTTER = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text("utf-8"))
VERSION = COOKIECUTTER["__template_version"]
OPTIONS = ("deployment", "monitoring", "api_gateway")
FIX = (
    "run `python -m scripts.gen_troubleshooting` and write what to do under each new message in "
    f"{PROJECT_FOLDER}/docs/troubleshooting.md"
)


# -- troubleshooting catalogue ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def catalogue() -> tuple[list[gen.Message], dict[str, str]]:
    return gen.extract(), gen.documented(gen.DOC.read_text("utf-8"))


def test_every_message_in_the_code_is_documented(catalogue) -> None:
    messages, notes = catalogue
    missing = [f"{m.text}   ({', '.join(m.modules)})" for m in messages if m.text not in notes]
    assert not missing, f"{len(missing)} messages not in the docs ({FIX}):\n" + "\n".join(missing)


def test_every_documented_message_says_what_to_do(catalogue) -> None:
    messages, notes = catalogue
    todo = [m.text for m in messages if notes.get(m.text, "x") in ("", gen.PLACEHOLDER)]
    assert not todo, "write what to do for:\n" + "\n".join(todo)


def test_no_documented_message_is_gone_from_the_code(catalogue) -> None:
    messages, notes = catalogue
    stale = sorted(set(notes) - {m.text for m in messages})
    assert not stale, f"no longer in ci_scripts (rerun the script to drop them): {stale}"


def test_extraction_finds_every_kind_of_message(tmp_path: Path) -> None:
    """The extractor on a small package: literal, f-string, conditional, helper, variable, print."""
    package = tmp_path / "ci_scripts"
    package.mkdir()
    (package / "errors.py").write_text(
        "class CIError(Exception): ...\nclass DriftError(CIError): ...\n"
        "class LateError(DriftError): ...\n"
    )
    (package / "mod.py").write_text(
        textwrap.dedent(
            """
            import logging, sys
            log = logging.getLogger(__name__)

            def _why(x):
                return f"{x}: the helper's reason"

            def f(path, n, ok):
                if n:
                    raise CIError(f"{path}: expected {n} rows,"
                                  " got   none")
                if ok:
                    raise DriftError("drift: " + ", ".join(path))
                message = f"{path}: from a variable"
                if path:
                    raise LateError(message)
                if n is None:
                    raise CIError(_why(path) if ok else "plain literal here")
                raise CIError(str(path))  # passed through: nothing to document
                print(f"error: {path}: printed", file=sys.stderr)
                print("progress, not an error")
                log.warning("report %s unreadable: %s", path, n)
                ValueError("internal, never printed")
            """
        )
    )
    found = {m.text for m in gen.extract(package)}
    assert found == {
        "error: …: expected … rows, got none",
        "error: drift: …",
        "error: …: from a variable",
        "error: …: the helper's reason",
        "error: plain literal here",
        "error: …: printed",
        "warning: report … unreadable: …",
    }


def test_the_catalogue_survives_regeneration(catalogue) -> None:
    """Regenerating keeps every hand-written text, adds new messages as TODO, drops gone ones."""
    messages, notes = catalogue
    doc = gen.DOC.read_text("utf-8")
    new_message = gen.Message("error: …: a message added since", ["ci_scripts/x.py"])
    regenerated = gen.documented(gen.regenerate(doc, [*messages[1:], new_message]))
    assert regenerated[new_message.text] == gen.PLACEHOLDER
    assert messages[0].text not in regenerated
    assert all(regenerated[m.text] == notes.get(m.text, gen.PLACEHOLDER) for m in messages[1:])


# -- READMEs ---------------------------------------------------------------------------------------
# The flow, as regexes on mermaid node labels, in the order a model travels.
FLOW = [
    ("push", r"push"),
    ("image", r"image"),
    ("pipeline", r"[Pp]ipeline|train"),
    ("registry", r"[Rr]egistry"),
    ("PR to staging", r"PR.*staging\.json"),
    ("staging", r"staging endpoint|deploy: staging"),
    ("PR to prod", r"PR.*prod\.json"),
    ("prod", r"prod endpoint|deploy: prod"),
]
MONITOR = r"monitor"
NODE_RE = re.compile(r"(\w+)\s*(?:\[\(?|\(\[?|\{)(.+?)(?:\)?\]|\]?\)|\})")
EDGE_RE = re.compile(r"(\w+)(?:[\[({].*?[\])}])?\s*--(?:[^->]*?--)?>\s*(\w+)")


def mermaid_graph(readme: str) -> tuple[dict[str, str], dict[str, set[str]]]:
    """(node id -> label, node id -> successors) of the first mermaid block, which opens the doc."""
    match = re.search(r"```mermaid\n(.*?)```", readme, re.S)
    assert match, "no mermaid diagram"
    first_section = re.search(r"^## ", readme, re.M)
    assert first_section is None or match.start() < first_section.start(), "diagram not first"
    labels: dict[str, str] = {}
    edges: dict[str, set[str]] = {}
    for line in match[1].splitlines():
        for node, label in NODE_RE.findall(line):
            labels.setdefault(node, label)
        for source, target in EDGE_RE.findall(line):
            edges.setdefault(source, set()).add(target)
    return labels, edges


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def flow_problems(readme: str, monitoring: bool) -> list[str]:
    labels, edges = mermaid_graph(readme)
    problems, previous = [], None
    stages = {}
    for name, pattern in FLOW:
        nodes = [n for n, label in labels.items() if re.search(pattern, label)]
        if not nodes:
            problems.append(f"no node for {name}")
            continue
        stages[name] = nodes
        if previous and not any(n in reachable(edges, p) for p in previous for n in nodes):
            problems.append(f"{name} is not reached from the stage before it")
        previous = nodes
    monitors = [n for n, label in labels.items() if re.search(MONITOR, label)]
    if monitoring:
        pipeline = stages.get("pipeline", [])
        if not monitors or not any(
            p in reachable(edges, m) for m in monitors for p in pipeline
        ):  # fmt: skip
            problems.append("monitoring does not lead back to the pipeline (retraining)")
    elif monitors:
        problems.append("monitoring drawn although the repo has none")
    return problems


def section_order(readme: str, headings: list[str]) -> list[int]:
    return [readme.find(h) for h in headings]


def test_template_readme() -> None:
    readme = (TEMPLATE_DIR / "README.md").read_text("utf-8")
    assert flow_problems(readme, monitoring=True) == []
    order = section_order(
        readme, ["```mermaid", "## The first hour", "### Options", "## Troubleshooting"]
    )
    assert -1 not in order and order == sorted(order), order
    table = readme[order[2] :]
    prompts = [k for k in COOKIECUTTER if not k.startswith("_")]
    assert [p for p in prompts if f"`{p}`" not in table] == []
    assert f"{quote(PROJECT_FOLDER)}/docs/troubleshooting.md" in readme
    assert "RELEASING.md" in readme or "## Releasing" in readme


@pytest.mark.parametrize(
    "combo",
    [
        {"deployment": "realtime", "monitoring": "yes", "api_gateway": "no"},
        {"deployment": "serverless", "monitoring": "no", "api_gateway": "yes"},
    ],
    ids=["default", "serverless-nomonitoring-api"],
)
def test_generated_readme(bake_once, combo: dict[str, str]) -> None:
    repo = bake_once(**combo)
    readme = (repo / "README.md").read_text("utf-8")
    assert flow_problems(readme, monitoring=combo["monitoring"] == "yes") == []
    order = section_order(
        readme, ["```mermaid", "## The first hour", "## Options", "## Troubleshooting"]
    )
    assert -1 not in order and order == sorted(order), order
    options = readme[order[2] : order[3]]
    for option, value in combo.items():
        assert re.search(rf"^\| `{option}` \| `{value}` \|", options, re.M), (option, value)
    assert "](docs/troubleshooting.md)" in readme
    doc = (repo / "docs" / "troubleshooting.md").read_text("utf-8")
    assert "{%" not in doc and gen.BEGIN in doc and "### ` error: " in doc


# -- versions --------------------------------------------------------------------------------------
def newest_release(changelog: str) -> str:
    match = re.search(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", changelog, re.M)
    assert match, "CHANGELOG.md has no release heading `## [X.Y.Z] - YYYY-MM-DD`"
    return match[1]


def test_one_version_everywhere() -> None:
    import ci_scripts

    changelog = (TEMPLATE_DIR / "CHANGELOG.md").read_text("utf-8")
    pyproject = tomllib.loads((TEMPLATE_DIR / "pyproject.toml").read_text("utf-8"))
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "ci_scripts.__version__"
    }
    assert "## [Unreleased]" in changelog
    versions = {
        "cookiecutter.json __template_version": VERSION,
        "ci_scripts.__version__": ci_scripts.__version__,
        "CHANGELOG.md newest release": newest_release(changelog),
    }
    assert len(set(versions.values())) == 1, versions


def test_status_shows_the_template_version(bake_once, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(bake_once(), repo, symlinks=True)
    run = [sys.executable, "-m", "ci_scripts", "--backend", "local", "status"]
    table = subprocess.run(run, cwd=repo, capture_output=True, text=True, timeout=60, check=True)
    assert f"template sagemaker-gitops {VERSION}" in table.stdout
    as_json = subprocess.run(
        [*run, "--format", "json"], cwd=repo, capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(as_json.stdout)["template_version"] == VERSION


def first_hour_commands(readme: str) -> list[str]:
    """The shell commands of the README's "The first hour" code block, without their comments."""
    section = readme[readme.index("## The first hour") :]
    start = section.index("```bash") + len("```bash")
    block = section[start : section.index("```", start)]
    return [line.split("  #")[0].strip() for line in block.strip().splitlines()]


def test_first_hour_commits_the_proposal_before_deploying(bake_once, tmp_path: Path) -> None:
    """`make propose` edits deploy/staging.json; deploying it uncommitted warns that the approval
    is recorded as an 'uncommitted change'. The first hour commits it in between, as the merge of
    the proposal's pull request would, so its deploy names a commit and warns of nothing."""
    from ci_scripts import manifest as manifests
    from ci_scripts.commands.deploy import uncommitted_manifest
    from ci_scripts.project import ProjectConfig

    repo = tmp_path / "repo"
    shutil.copytree(bake_once(), repo, symlinks=True)
    commands = first_hour_commands((repo / "README.md").read_text("utf-8"))
    between = commands[commands.index("make propose") + 1 : commands.index("make deploy-staging")]
    staging = repo / "deploy" / "staging.json"
    proposed = staging.read_text("utf-8").replace('"model_version": null', '"model_version": 1')
    staging.write_text(proposed)  # what `make propose` writes
    git = ("NAME", "A"), ("EMAIL", "a@example.com")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env |= {f"GIT_{who}_{key}": value for who in ("AUTHOR", "COMMITTER") for key, value in git}
    for command in between:
        subprocess.run(command, shell=True, cwd=repo, env=env, check=True, capture_output=True)

    project = ProjectConfig.load(repo)
    assert not uncommitted_manifest(project, manifests.load(project, "staging"), None), between
