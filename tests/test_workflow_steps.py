"""The generated workflows' GitHub logic, run: their ``run:`` steps execute in bash against real
git repositories (a bare origin where a push is involved) and a recording fake of ``gh`` whose
answers go through the real ``jq`` with the step's own ``--jq`` expression.

What is proven here is what breaks on GitHub, not in lint (issue 28): a person's commits on a bot
branch survive the next run, a dispatched deploy names no pull request, a new repo's first push
asks no prod reviewer for anything, no manifest change is lost when the concurrency group cancels
a pending run, and a new proposal closes the ones it supersedes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from option_matrix import DEFAULT_COMBINATION
from parsed_files import load_yaml

REPO = "my-org/churn-model"
SERVER = "https://github.test"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"

FAKE_GH = r'''#!PYTHON
"""A recording fake of the GitHub CLI: the calls the workflows make, answered from a state file."""
import json, os, re, subprocess, sys

args = sys.argv[1:]
state_path = os.environ["FAKE_GH_STATE"]
with open(state_path, encoding="utf-8") as handle:
    state = json.load(handle)
with open(os.environ["FAKE_GH_LOG"], "a", encoding="utf-8") as handle:
    handle.write(json.dumps(args) + "\n")
jq = None
if "--jq" in args:
    at = args.index("--jq")
    jq = args[at + 1]
    del args[at : at + 2]


def option(name, default=None):
    return args[args.index(name) + 1] if name in args else default


def save():
    with open(state_path, "w", encoding="utf-8") as handle:
        json.dump(state, handle)


result = None
if args[:2] == ["run", "list"]:
    result = [{"headSha": sha} for sha in state.get("successful_runs", [])]
elif args[0] == "api" and re.fullmatch(r"repos/[^/]+/[^/]+/commits/[0-9a-f]+/pulls", args[1]):
    result = state.get("pulls_by_commit", {}).get(args[1].split("/")[4], [])
elif args[:2] == ["pr", "list"]:
    head = option("--head")
    result = [p for p in state.get("open_prs", []) if head in (None, p["headRefName"])]
elif args[:2] == ["pr", "create"]:
    number = state.get("next_number", 100)
    url = f"https://github.test/{os.environ['GH_REPO']}/pull/{number}"
    state["next_number"] = number + 1
    state.setdefault("open_prs", []).append(
        {"number": number, "headRefName": option("--head"), "url": url}
    )
    save()
    print(url)
    sys.exit(0)
elif args[:2] == ["pr", "close"]:
    target = args[2]
    state["open_prs"] = [
        p for p in state.get("open_prs", []) if target not in (str(p["number"]), p["url"])
    ]
    state.setdefault("closed", []).append({"pr": target, "comment": option("--comment", "")})
    save()
    sys.exit(0)
elif args[:2] in (["pr", "edit"], ["workflow", "run"]):
    sys.exit(0)
else:
    print(f"fake gh: unexpected call {args}", file=sys.stderr)
    sys.exit(2)
text = json.dumps(result)
if jq is not None:
    text = subprocess.run(
        ["jq", "-r", jq], input=text, capture_output=True, text=True, check=True
    ).stdout
    sys.stdout.write(text)
else:
    print(text)
'''


class World:
    """A tmp HOME, a fake gh on PATH with its state and log, and git run there."""

    def __init__(self, root: Path) -> None:
        self.root = root
        home = root / "home"
        home.mkdir()
        (home / ".gitconfig").write_text(
            "[user]\n\tname = A Person\n\temail = person@example.com\n"
            "[init]\n\tdefaultBranch = main\n",
            encoding="utf-8",
        )
        bin_dir = root / "bin"
        bin_dir.mkdir()
        gh = bin_dir / "gh"
        gh.write_text(FAKE_GH.replace("#!PYTHON", f"#!{sys.executable}", 1), encoding="utf-8")
        gh.chmod(0o755)
        self.state_path, self.log_path = root / "gh-state.json", root / "gh-log.jsonl"
        self.state_path.write_text("{}", encoding="utf-8")
        self.log_path.write_text("", encoding="utf-8")
        keep = ("LANG", "LC_ALL", "TMPDIR")
        self.env = {k: v for k, v in os.environ.items() if k in keep}
        self.env.update(
            HOME=str(home),
            GIT_CONFIG_GLOBAL=str(home / ".gitconfig"),
            GIT_CONFIG_NOSYSTEM="1",
            PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            FAKE_GH_STATE=str(self.state_path),
            FAKE_GH_LOG=str(self.log_path),
            GITHUB_REPOSITORY=REPO,
            GH_REPO=REPO,
            GITHUB_SERVER_URL=SERVER,
        )

    def git(self, cwd: Path, *args: str) -> str:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, env=self.env, capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, f"git {args}: {proc.stderr}"
        return proc.stdout.strip()

    @property
    def state(self) -> dict[str, Any]:
        return json.loads(self.state_path.read_text("utf-8"))

    @state.setter
    def state(self, value: dict[str, Any]) -> None:
        self.state_path.write_text(json.dumps(value), "utf-8")

    def gh_calls(self) -> list[list[str]]:
        return [json.loads(line) for line in self.log_path.read_text("utf-8").splitlines()]

    def origin(self, token: str) -> Path:
        """A bare origin that the workflows' token URL (https://x-access-token:...) reaches."""
        bare = self.root / "origin.git"
        if not bare.exists():
            self.git(self.root, "init", "-q", "--bare", "-b", "main", str(bare))
        url = f"https://x-access-token:{token}@{SERVER.removeprefix('https://')}/{REPO}.git"
        self.env.update(
            GIT_CONFIG_COUNT="1",
            GIT_CONFIG_KEY_0=f"url.{bare.as_uri()}.insteadOf",
            GIT_CONFIG_VALUE_0=url,
        )
        return bare

    def run(self, script: str, cwd: Path, env: dict[str, str]) -> tuple[dict[str, str], str]:
        """One ``run:`` step as a runner runs it (bash -e); its outputs and what it printed."""
        output, summary = self.root / "github_output", self.root / "step_summary"
        output.write_text("")
        summary.write_text("")
        proc = subprocess.run(
            ["bash", "-e", "-c", script],
            cwd=cwd,
            env={
                **self.env,
                **env,
                "GITHUB_OUTPUT": str(output),
                "GITHUB_STEP_SUMMARY": str(summary),
            },
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, (
            f"step failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
        outputs = dict(
            line.split("=", 1) for line in output.read_text().splitlines() if "=" in line
        )
        return outputs, summary.read_text() + proc.stdout + proc.stderr


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


@pytest.fixture(scope="module")
def rendered(bake_once) -> Path:
    return bake_once(**DEFAULT_COMBINATION)


def workflow(rendered: Path, name: str) -> dict[str, Any]:
    return load_yaml((rendered / ".github" / "workflows" / name).read_text("utf-8"))


def step(job: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in job["steps"] if s.get("id") == step_id)


# -- deploy.yml: which manifests a run applies, and whose pull request approves them -----------
class ManifestRepo:
    """main of a model repo: deploy/*.json as rendered, changed by one commit per merged PR."""

    def __init__(self, world: World, rendered: Path) -> None:
        self.world, self.path = world, world.root / "repo"
        (self.path / "deploy").mkdir(parents=True)
        for env in ("staging", "prod"):
            shutil.copy(rendered / "deploy" / f"{env}.json", self.path / "deploy" / f"{env}.json")
        world.git(self.path, "init", "-q", "-b", "main")
        world.git(self.path, "add", "-A")
        world.git(self.path, "commit", "-q", "-m", "Initial commit")
        self.pulls: dict[str, list[dict[str, Any]]] = {}

    @property
    def head(self) -> str:
        return self.world.git(self.path, "rev-parse", "HEAD")

    def merge(self, pr: int, **versions: int) -> str:
        """A merged pull request that sets each named environment's model_version."""
        for env, version in versions.items():
            path = self.path / "deploy" / f"{env}.json"
            manifest = json.loads(path.read_text("utf-8"))
            manifest["model_version"] = version
            path.write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
        self.world.git(self.path, "commit", "-q", "-am", f"Merge pull request #{pr}")
        sha = self.head
        self.pulls[sha] = [{"number": pr, "merged_at": "2025-01-01T00:00:00Z"}]
        return sha

    def changes(
        self, rendered: Path, *, successful_runs: list[str], event: str = "push", dispatched=""
    ) -> dict[str, str]:
        """Run deploy.yml's `changes` job (both steps) for main's head; the job's outputs."""
        self.world.state = {"successful_runs": successful_runs, "pulls_by_commit": self.pulls}
        job = workflow(rendered, "deploy.yml")["jobs"]["changes"]
        env = {"GITHUB_SHA": self.head, "GH_TOKEN": "t", "EVENT_NAME": event}
        diff, _ = self.world.run(
            step(job, "diff")["run"], self.path, {**env, "DISPATCHED_ENV": dispatched}
        )
        commits = {"STAGING_COMMIT": diff["staging_commit"], "PROD_COMMIT": diff["prod_commit"]}
        pr, _ = self.world.run(step(job, "pr")["run"], self.path, {**env, **commits})
        return {
            "staging": diff["staging"],
            "prod": diff["prod"],
            "staging_pr": pr["staging"],
            "prod_pr": pr["prod"],
        }


def test_first_push_asks_no_reviewer_to_deploy_nothing(world: World, rendered: Path) -> None:
    """A new repo's first push holds both manifests with no version: neither job runs (point 4),
    so nobody is asked to approve a prod deployment that deploys nothing."""
    repo = ManifestRepo(world, rendered)
    assert repo.changes(rendered, successful_runs=[]) == {
        "staging": "false", "prod": "false", "staging_pr": "", "prod_pr": "",
    }  # fmt: skip
    # The first version proposed for staging then deploys staging alone.
    repo.merge(7, staging=1)
    assert repo.changes(rendered, successful_runs=[]) == {
        "staging": "true", "prod": "false", "staging_pr": "7", "prod_pr": "",
    }  # fmt: skip


def test_a_superseded_run_loses_no_manifest_change(world: World, rendered: Path) -> None:
    """Three pushes (point 5): A changes staging and deploys; B changes both and its staging job
    waits; C changes staging, and GitHub cancels B's pending job (one pending per group), so B's
    prod job never runs. C's run applies prod too, naming B's pull request for it."""
    repo = ManifestRepo(world, rendered)
    initial = repo.head
    first = repo.merge(10, staging=1, prod=1)
    repo.merge(11, staging=2)  # A: running
    repo.merge(12, staging=3, prod=2)  # B: its staging job pending, then cancelled
    repo.merge(13, staging=4)  # C
    expected = {"staging": "true", "prod": "true", "staging_pr": "13", "prod_pr": "12"}
    assert repo.changes(rendered, successful_runs=[first, initial]) == expected
    # Also once A has succeeded: everything up to A is applied, B's prod change still is not.
    a = world.git(repo.path, "rev-parse", "HEAD~2")
    assert repo.changes(rendered, successful_runs=[a, first, initial]) == expected
    # And when B did succeed, C applies staging alone.
    b = world.git(repo.path, "rev-parse", "HEAD~1")
    assert repo.changes(rendered, successful_runs=[b, a, first]) == {
        "staging": "true", "prod": "false", "staging_pr": "13", "prod_pr": "",
    }  # fmt: skip


def test_a_dispatched_deploy_borrows_no_pull_request(world: World, rendered: Path) -> None:
    """A manual run re-applies main as it is (point 3): the pull request that made main's head
    (here a dependency bump) is not the approval, so no number reaches `deploy --pr`."""
    repo = ManifestRepo(world, rendered)
    repo.merge(20, staging=1, prod=1)
    (repo.path / "README.md").write_text("bump\n", "utf-8")
    world.git(repo.path, "add", "README.md")
    world.git(repo.path, "commit", "-q", "-m", "Bump a dependency (#21)")
    repo.pulls[repo.head] = [{"number": 21, "merged_at": "2025-01-02T00:00:00Z"}]
    outputs = repo.changes(
        rendered, successful_runs=[], event="workflow_dispatch", dispatched="prod"
    )
    assert outputs == {"staging": "false", "prod": "true", "staging_pr": "", "prod_pr": ""}
    assert not [c for c in world.gh_calls() if c[0] == "api"], world.gh_calls()


# -- bot branches: a person's commits survive the next run (point 1) ---------------------------
def clone_main(world: World, name: str) -> Path:
    """A fresh checkout of origin's main, as actions/checkout leaves it (no credentials kept)."""
    work = world.root / name
    world.git(world.root, "clone", "-q", str(world.root / "origin.git"), str(work))
    return work


def seed_origin(world: World) -> None:
    bare = world.origin(token="app-token")
    seed = world.root / "seed"
    seed.mkdir()
    (seed / "deploy").mkdir()
    (seed / "deploy" / "staging.json").write_text('{"model_version": 3}\n', "utf-8")
    (seed / "README.md").write_text("# model\n", "utf-8")
    world.git(seed, "init", "-q", "-b", "main")
    world.git(seed, "add", "-A")
    world.git(seed, "commit", "-q", "-m", "Initial commit")
    world.git(seed, "push", "-q", str(bare), "main")


def person_commits_on(world: World, branch: str, name: str) -> str:
    """A person checks out the bot's branch, resolves something, pushes; the commit's sha."""
    work = world.root / name
    world.git(world.root, "clone", "-q", "-b", branch, str(world.root / "origin.git"), str(work))
    (work / "README.md").write_text("# model\n\nresolved by a person\n", "utf-8")
    world.git(work, "commit", "-q", "-am", "Resolve the conflict")
    world.git(work, "push", "-q", "origin", branch)
    return world.git(work, "rev-parse", "HEAD")


def remote_tip(world: World, branch: str) -> str:
    return world.git(world.root / "origin.git", "rev-parse", f"refs/heads/{branch}")


def template_update_push(world: World, rendered: Path, name: str) -> str:
    """template-update.yml's last step on a fresh main with a staged update; what it printed."""
    wf = workflow(rendered, "template-update.yml")
    script = next(
        s for s in wf["jobs"]["update"]["steps"] if s.get("name") == "Open the pull request"
    )
    work = clone_main(world, name)
    (work / "README.md").write_text("# model\n\nfrom the template\n", "utf-8")
    world.git(work, "add", "-A")
    (work / "pr-body-template-update.md").write_text("body\n", "utf-8")
    title = "Update from the sagemaker-gitops template 99.0.0"
    env = {
        "TITLE": title,
        "GH_TOKEN": "app-token",
        "DISPATCH_CI": "false",
        "BRANCH": wf["env"]["BRANCH"],
    }
    _, printed = world.run(script["run"], work, env)
    return printed


def test_template_update_keeps_a_persons_resolution(world: World, rendered: Path) -> None:
    seed_origin(world)
    template_update_push(world, rendered, "run1")
    bot_commit = remote_tip(world, "template-update")
    # A run while the branch holds only the bot's commit rebuilds it on main, which moved (on
    # an unmoved main within the same second the rebuilt commit can be the very same sha).
    person_commits_on(world, "main", "main-moves")
    template_update_push(world, rendered, "run2")
    assert remote_tip(world, "template-update") != bot_commit
    # A person resolves the conflicts on the branch; the next weekly run must keep that.
    resolved = person_commits_on(world, "template-update", "person")
    printed = template_update_push(world, rendered, "run3")
    assert remote_tip(world, "template-update") == resolved, "the person's commit was thrown away"
    assert "::warning" in printed and "merge or close" in printed.lower()


def open_pull_request_script(rendered: Path) -> str:
    action = rendered / ".github" / "actions" / "open-pull-request" / "action.yml"
    return load_yaml(action.read_text("utf-8"))["runs"]["steps"][0]["run"]


def open_proposal(world: World, rendered: Path, name: str, env: str, version: int) -> str:
    """The open-pull-request action after `propose`/`promote` edited the manifest; printed."""
    work = clone_main(world, name)
    manifest = f"deploy/{env}.json"
    (work / manifest).write_text(json.dumps({"model_version": version}) + "\n", "utf-8")
    (work / "pr-body.md").write_text(f"{env} v{version}\n", "utf-8")
    inputs = {
        "MANIFEST": manifest,
        "BRANCH": f"propose/{env}-v{version}",
        "TITLE": f"Deploy model version {version} to {env}",
        "BODY_FILE": "pr-body.md",
        "GH_TOKEN": "app-token",
        "DISPATCH_CI": "false",
        "BASE": "main",
    }
    _, printed = world.run(open_pull_request_script(rendered), work, inputs)
    return printed


def test_a_proposal_branch_with_a_persons_commit_is_not_rewritten(
    world: World, rendered: Path
) -> None:
    seed_origin(world)
    open_proposal(world, rendered, "run1", "staging", 4)
    edited = person_commits_on(world, "propose/staging-v4", "person")
    printed = open_proposal(world, rendered, "run2", "staging", 4)  # a re-run proposes v4 again
    assert remote_tip(world, "propose/staging-v4") == edited
    assert "::warning" in printed


# -- superseded proposals are closed (point 8) --------------------------------------------------
def test_a_new_proposal_closes_the_ones_it_supersedes(world: World, rendered: Path) -> None:
    seed_origin(world)
    world.state = {
        "open_prs": [
            {"number": 5, "headRefName": "propose/staging-v3", "url": "https://github.test/p/5"},
            {"number": 6, "headRefName": "propose/prod-v3", "url": "https://github.test/p/6"},
            {"number": 7, "headRefName": "propose/staging-notes", "url": "https://github.test/p/7"},
            {"number": 8, "headRefName": "template-update", "url": "https://github.test/p/8"},
        ],
        "next_number": 9,
    }
    open_proposal(world, rendered, "run1", "staging", 4)
    state = world.state
    assert [c["pr"] for c in state["closed"]] == ["5"]
    assert f"https://github.test/{REPO}/pull/9" in state["closed"][0]["comment"]
    assert sorted(p["number"] for p in state["open_prs"]) == [6, 7, 8, 9]
    # Closing keeps the branch: a person's work on it is not deleted.
    assert remote_tip(world, "propose/staging-v4")
    assert not [c for c in world.gh_calls() if "--delete-branch" in c]


# -- the GitHub App's key lives in an environment limited to main (point 6) ---------------------
APP_KEY = "secrets.GITOPS_APP_PRIVATE_KEY"


def test_the_app_key_is_read_only_in_the_gitops_app_environment(rendered: Path) -> None:
    """Every job that hands the App's key to a step names the `gitops-app` environment and
    assumes no AWS role (an environment changes the job's OIDC subject); zizmor's auditor
    persona finds no secret outside an environment; the README keeps the key there, on main."""
    users = []
    for path in sorted((rendered / ".github" / "workflows").glob("*.yml")):
        for job_id, job in load_yaml(path.read_text("utf-8"))["jobs"].items():
            steps = job.get("steps") or []
            if not any(APP_KEY in json.dumps(s.get("with", {})) for s in steps):
                continue
            users.append((path.name, job_id))
            assert job.get("environment") == "gitops-app", (path.name, job_id)
            assert not any("configure-aws-credentials" in s.get("uses", "") for s in steps)
    assert {("propose.yml", "pull-request"), ("deploy.yml", "prod-proposal")} <= set(users)
    assert ("template-update.yml", "update") in users
    zizmor = Path(sys.executable).parent / "zizmor"
    proc = subprocess.run(
        [str(zizmor), "--offline", "--no-progress", "--persona", "auditor", "--format", "json",
         str(rendered / ".github")],
        capture_output=True, text=True, check=False, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    assert proc.returncode == 0 or 10 <= proc.returncode <= 14, proc.stderr
    assert [f for f in json.loads(proc.stdout) if f["ident"] == "secrets-outside-env"] == []
    readme = (rendered / "README.md").read_text("utf-8")
    assert 'gh secret set GITOPS_APP_PRIVATE_KEY --repo "$REPO" --env gitops-app' in readme
    assert "environments/gitops-app/deployment-branch-policies" in readme
    assert "-f name=main -f type=branch" in readme


# -- prod's reviewers cannot approve their own merge (point 7) ----------------------------------
def test_the_prod_environment_prevents_self_review(rendered: Path) -> None:
    readme = (rendered / "README.md").read_text("utf-8")
    body = re.search(r'environments/prod" --input - <<\'JSON\'\n(.*?)\nJSON', readme, re.S)
    assert body, "the README no longer creates the prod environment"
    settings = json.loads(body[1])
    assert settings["prevent_self_review"] is True
    assert settings["reviewers"]
    assert settings["deployment_branch_policy"]["protected_branches"] is True
