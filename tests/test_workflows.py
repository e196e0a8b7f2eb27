"""GitHub Actions of the generated repo (every option combination) and of the template itself.

Each combination is rendered once (through the real hooks) and then:
- actionlint (with shellcheck on every ``run:`` script) and ``zizmor --offline`` lint the workflows;
- the rules that hold everywhere are asserted on the parsed YAML: ``permissions: {}`` at the top and
  explicit permissions per job, ``id-token: write`` exactly where an AWS role is assumed, write
  scopes only where a branch is pushed or a pull request opened, ``persist-credentials: false``,
  every action pinned to the SHA in scripts/action_pins.json with its tag as a comment, no
  expression inside a script, per-environment concurrency, prod deploys only in ``prod``;
- every ``python -m ci_scripts ...`` line is parsed by the real CLI, so a renamed flag fails here
  and not in a user's first workflow run;
- the pre-commit hooks run the way pre-commit would run them, on the freshly rendered repo.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pre_commit_hooks
import pytest
from option_matrix import (
    COMBINATIONS,
    PRE_COMMIT_COMBINATIONS,
    REFUSED_COMBINATIONS,
    combination_id,
)
from parsed_files import load_yaml

TEMPLATE_DIR = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PINS: dict[str, dict[str, str]] = json.loads(
    (TEMPLATE_DIR / "scripts" / "action_pins.json").read_text(encoding="utf-8")
)
CONTEXT: dict[str, str] = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())

# Distinct accounts, so a job that assumes the wrong environment's role is caught.
ACCOUNTS = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}
COMBOS = COMBINATIONS
COMBO_IDS = [combination_id(c) for c in COMBOS]
REFUSED = REFUSED_COMBINATIONS
combo_id = combination_id
GENERATED_WORKFLOWS = {
    "ci.yml",
    "build-image.yml",
    "train.yml",
    "propose.yml",
    "deploy.yml",
    "template-update.yml",
}

SHA_RE = re.compile(r"^[0-9a-f]{40}$")
USES_LINE_RE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>[^\s#]+)\s*(?:#\s*(?P<comment>.*))?$")
LOCAL_PREFIXES = ("./", "$/")
AWS_CREDENTIALS_ACTION = "aws-actions/configure-aws-credentials"
CHECKOUT_ACTION = "actions/checkout"
OPEN_PR_ACTION = "$/.github/actions/open-pull-request"


def tool(name: str) -> str:
    """A linter shipped as a wheel into this venv (see the template's dev extras)."""
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name}: not installed; `make test` installs it from the dev extras"
    return found


# -- rendering ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def render(bake_once) -> Callable[[dict[str, str]], Path]:
    """A combination rendered with this module's accounts, through the real hooks (bake_once:
    once per test run)."""

    def get(combo: dict[str, str]) -> Path:
        return bake_once(**combo, **{f"{env}_account_id": a for env, a in ACCOUNTS.items()})

    return get


def load_workflow(path: Path) -> dict[str, Any]:
    doc = load_yaml(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict), f"{path}: not a YAML mapping"
    if True in doc:  # YAML 1.1 reads the key `on` as a boolean
        doc["on"] = doc.pop(True)
    return doc


def workflows_of(repo: Path) -> dict[str, dict[str, Any]]:
    directory = repo / ".github" / "workflows"
    return {p.name: load_workflow(p) for p in sorted(directory.glob("*.y*ml"))}


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job.get("steps") or []


def action_of(step_or_job: dict[str, Any]) -> str:
    """``owner/repo`` (or the local path) of a ``uses:``, without the ref."""
    uses = step_or_job.get("uses", "")
    if uses.startswith(LOCAL_PREFIXES):
        return uses
    owner_repo = uses.split("@", 1)[0].split("/")
    return "/".join(owner_repo[:2])


def run_scripts(job: dict[str, Any]) -> Iterator[str]:
    for step in steps(job):
        if "run" in step:
            yield step["run"]


# -- the rules ------------------------------------------------------------------------------------
def called_workflow(repo: Path, job: dict[str, Any]) -> dict[str, Any] | None:
    uses = job.get("uses", "")
    if uses.startswith(LOCAL_PREFIXES):
        return load_workflow(repo / uses[2:])
    return None


def assumes_aws_role(repo: Path, job: dict[str, Any]) -> bool:
    """A job assumes an AWS role itself, or calls a local workflow with a job that does."""
    if any(action_of(s) == AWS_CREDENTIALS_ACTION for s in steps(job)):
        return True
    called = called_workflow(repo, job)
    return bool(called) and any(assumes_aws_role(repo, j) for j in called["jobs"].values())


def writes_to_github(repo: Path, job: dict[str, Any]) -> bool:
    """A job pushes a branch, opens or edits a pull request (or calls a workflow with such a
    job)."""
    scripts = "\n".join(run_scripts(job))
    if any(action_of(s) == OPEN_PR_ACTION for s in steps(job)) or re.search(
        r"git push|gh pr (create|edit|merge)|gh api --method (PATCH|POST) \S*/pulls/", scripts
    ):
        return True
    called = called_workflow(repo, job)
    return bool(called) and any(writes_to_github(repo, j) for j in called["jobs"].values())


def dispatches_workflows(repo: Path, job: dict[str, Any]) -> bool:
    scripts = "\n".join(run_scripts(job))
    if "gh workflow run" in scripts or any(action_of(s) == OPEN_PR_ACTION for s in steps(job)):
        return True
    called = called_workflow(repo, job)
    return bool(called) and any(dispatches_workflows(repo, j) for j in called["jobs"].values())


def ci_scripts_envs(job: dict[str, Any], command: str) -> set[str]:
    """Environments a job passes to ``python -m ci_scripts ... <command> --env E``."""
    pattern = re.compile(rf"python -m ci_scripts\b[^\n]*\s{command}\s+--env\s+(\w+)")
    return {m for script in run_scripts(job) for m in pattern.findall(script)}


def rule_violations(repo: Path, name: str, wf: dict[str, Any], text: str) -> list[str]:
    """Every broken rule in one workflow, as ``file: job: what`` lines."""
    problems: list[str] = []
    if wf.get("permissions") != {}:
        problems.append(
            f"{name}: top-level permissions must be {{}}, not {wf.get('permissions')!r}"
        )
    triggers = wf["on"] if isinstance(wf["on"], dict) else {t: None for t in [wf["on"]]}
    for banned in ("pull_request_target", "workflow_run"):
        if banned in triggers:
            problems.append(f"{name}: triggers on {banned}")
    if re.search(r"aws-access-key-id|aws-secret-access-key|AWS_SECRET_ACCESS_KEY", text):
        problems.append(f"{name}: long-lived AWS keys; use OIDC role assumption")

    for job_id, job in wf["jobs"].items():
        where = f"{name}: {job_id}"
        perms = job.get("permissions")
        if not isinstance(perms, dict):
            problems.append(f"{where}: no explicit permissions")
            perms = {}
        if "runs-on" in job and "timeout-minutes" not in job:
            problems.append(f"{where}: no timeout-minutes")
        aws = assumes_aws_role(repo, job)
        if (perms.get("id-token") == "write") != aws:
            problems.append(f"{where}: id-token: write must be granted iff the job assumes a role")
        for scope in ("contents", "pull-requests"):
            if perms.get(scope) == "write" and not writes_to_github(repo, job):
                problems.append(f"{where}: {scope}: write but it pushes no branch, opens no PR")
        if perms.get("actions") == "write" and not dispatches_workflows(repo, job):
            problems.append(f"{where}: actions: write but it dispatches no workflow")
        for step in steps(job):
            if action_of(step) == CHECKOUT_ACTION:
                persist = (step.get("with") or {}).get("persist-credentials")
                if persist not in (False, "false"):
                    problems.append(f"{where}: checkout without persist-credentials: false")
            if action_of(step) == AWS_CREDENTIALS_ACTION:
                read_only = (name, job_id) in READ_ONLY_JOBS
                problems.extend(role_violations(where, wf, step, read_only=read_only))
        for script in run_scripts(job):
            if "${{" in script:
                problems.append(f"{where}: expression in a run script (pass it through env:)")
        deploy_envs = ci_scripts_envs(job, "deploy")
        env_name = job.get("environment")
        env_name = env_name.get("name") if isinstance(env_name, dict) else env_name
        if "prod" in deploy_envs and env_name != "prod":
            problems.append(f"{where}: deploys prod outside the protected `prod` environment")
        for env in deploy_envs:
            group = (job.get("concurrency") or {}).get("group")
            if (
                group != f"deploy-{env}"
                or job["concurrency"].get("cancel-in-progress") is not False
            ):
                problems.append(
                    f"{where}: deploying {env} needs concurrency group deploy-{env} with "
                    "cancel-in-progress: false"
                )
    return problems


# Jobs that only read: they assume the environment's ``<prefix>-readonly-<env>`` role
# (infra/bootstrap.yml) and never a deploy role. The drift check runs daily on main; with a
# deploy role it would hold prod's deploy rights (and wait for prod's reviewers) to read reports.
READ_ONLY_JOBS = {("monitor.yml", "monitor")}


def role_violations(
    where: str, wf: dict[str, Any], step: dict[str, Any], *, read_only: bool = False
) -> list[str]:
    """The role is the infra stack's ``<prefix>-deploy-<env>`` (``-readonly-<env>`` for a
    read-only job) in the right account and region."""
    inputs = step.get("with") or {}

    def resolve(value: str) -> str:
        match = re.fullmatch(r"\$\{\{\s*env\.(\w+)\s*\}\}", str(value))
        return str(wf.get("env", {}).get(match[1], "")) if match else str(value)

    role, region = resolve(inputs.get("role-to-assume", "")), resolve(inputs.get("aws-region", ""))
    problems = []
    kind = "readonly" if read_only else "deploy"
    envs = "staging|prod" if read_only else "dev|staging|prod"
    match = re.fullmatch(rf"arn:aws:iam::(\d{{12}}):role/(.+)-{kind}-({envs})", role)
    if not match or match[2] != f"{CONTEXT['project']}-github":
        problems.append(
            f"{where}: role {role!r} is not <account>:role/<project>-github-{kind}-<env>"
        )
    elif match[1] != ACCOUNTS[match[3]]:
        problems.append(f"{where}: role {role!r} is not in the {match[3]} account")
    if region != CONTEXT["aws_region"]:
        problems.append(f"{where}: aws-region {region!r} is not the answered region")
    if inputs.get("aws-access-key-id") or inputs.get("aws-secret-access-key"):
        problems.append(f"{where}: static AWS keys")
    return problems


def pin_violations(name: str, text: str) -> list[str]:
    """Every remote ``uses:`` is ``owner/repo[/path]@<the pinned sha> # <the pinned tag>``."""
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        match = USES_LINE_RE.match(line)
        if not match:
            continue
        ref = match["ref"].strip("'\"")
        if ref.startswith(LOCAL_PREFIXES):
            continue
        action, _, sha = ref.partition("@")
        owner_repo = "/".join(action.split("/")[:2])
        pin = PINS.get(owner_repo)
        where = f"{name}:{number}: {ref}"
        if pin is None:
            problems.append(f"{where}: {owner_repo} is not in scripts/action_pins.json")
        elif not SHA_RE.match(sha) or sha != pin["sha"]:
            problems.append(f"{where}: not pinned to {pin['sha']} ({pin['tag']})")
        elif (match["comment"] or "").split()[:1] != [pin["tag"]]:
            problems.append(f"{where}: needs the comment `# {pin['tag']}`")
    return problems


# -- linters --------------------------------------------------------------------------------------
# A `uses:` of a local action or reusable workflow: actionlint reads that file too.
LOCAL_USES_RE = re.compile(r"""uses:\s*['"]?(?:\./|\$/)(?P<path>[^\s'"#@]+)""")
ACTIONLINT_CONFIGS = (".github/actionlint.yaml", ".github/actionlint.yml")
# (what actionlint reads for one workflow) -> its findings: each worker lints a distinct input
# once. The eight renders share most workflows byte for byte, and every `run:` script costs a
# shellcheck process.
_actionlint_seen: dict[str, list[str]] = {}


def actionlint_inputs(cwd: Path, path: Path) -> str:
    """A digest of everything actionlint reads to lint ``path``: the file, the local actions and
    reusable workflows it calls (their inputs, outputs and secrets are checked) and the config.
    Equal digests mean equal findings, so a workflow seen before need not be linted again."""
    text = path.read_bytes()
    digest = hashlib.sha256(text)
    called = sorted(set(LOCAL_USES_RE.findall(text.decode("utf-8"))))
    read = [cwd / ref for ref in called] + [cwd / name for name in ACTIONLINT_CONFIGS]
    for target in read:
        if target.is_dir():
            target = next(target.glob("action.y*ml"), target / "action.yml")
        digest.update(b"\0" + target.relative_to(cwd).as_posix().encode() + b"\0")
        digest.update(target.read_bytes() if target.is_file() else b"<missing>")
    return digest.hexdigest()


def run_actionlint(cwd: Path, files: list[Path]) -> dict[Path, list[str]]:
    """One actionlint process over ``files`` (shellcheck on every ``run:`` script): each file's
    findings, by its resolved path."""
    proc = subprocess.run(
        [
            tool("actionlint"),
            "-format",
            "{{json .}}",
            "-shellcheck",
            tool("shellcheck"),
            "-pyflakes",
            "",
            *map(str, files),
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode in (0, 1), f"actionlint failed to run: {proc.stderr}"
    findings: dict[Path, list[str]] = {path.resolve(): [] for path in files}
    for e in json.loads(proc.stdout or "[]"):
        line = f"{e['filepath']}:{e['line']}:{e['column']}: {e['message']} [{e['kind']}]"
        where = (cwd / e["filepath"]).resolve()
        for path in [where] if where in findings else findings:  # never drop a finding
            findings[path].append(line)
    return findings


def actionlint(cwd: Path, files: list[Path]) -> list[str]:
    """actionlint's findings for ``files``; only those whose inputs this worker has not linted
    before are linted (in one process), the others' findings are the ones recorded then."""
    keys = {path: actionlint_inputs(cwd, path) for path in files}
    todo: dict[str, Path] = {}
    for path, key in keys.items():
        if key not in _actionlint_seen:
            todo.setdefault(key, path)
    if todo:
        findings = run_actionlint(cwd, list(todo.values()))
        _actionlint_seen.update({key: findings[path.resolve()] for key, path in todo.items()})
    return [line for key in dict.fromkeys(keys.values()) for line in _actionlint_seen[key]]


def zizmor_findings(target: Path) -> list[dict[str, Any]]:
    """zizmor's JSON (v1) findings for ``target`` with no network; ignored ones left out."""
    proc = subprocess.run(
        [tool("zizmor"), "--offline", "--no-progress", "--format", "json", str(target)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    # 0: no findings; 10-14: findings (by highest severity); anything else: zizmor itself failed.
    assert proc.returncode == 0 or 10 <= proc.returncode <= 14, f"zizmor failed: {proc.stderr}"
    return [f for f in json.loads(proc.stdout) if not f.get("ignored")]


def serious(findings: list[dict[str, Any]]) -> list[str]:
    return [
        f"{f['ident']} ({f['determinations']['severity']}): {f['desc']} at "
        + ", ".join(
            f"{loc['symbolic']['key']['Local']['verbatim_path']}:"
            f"{loc['concrete']['location']['start_point']['row'] + 1}"
            for loc in f["locations"]
            if "Local" in loc["symbolic"]["key"]
        )
        for f in findings
        if f["determinations"]["severity"] in ("Medium", "High")
    ]


def ci_scripts_calls(script: str) -> Iterator[list[str]]:
    """The argument lists of ``python -m ci_scripts ...`` in a shell script, variables as "1"."""
    for line in script.splitlines():
        start = line.find("python -m ci_scripts")
        if start < 0:
            continue
        lexer = shlex.shlex(line[start:], posix=True, punctuation_chars=";&|<>()")
        lexer.whitespace_split = True
        tokens = list(lexer)
        args = []
        for token, following in itertools.zip_longest(tokens, tokens[1:], fillvalue=""):
            operator = set(token) <= set(";&|<>()")
            redirect = token.isdigit() and following.startswith((">", "<"))  # e.g. 2> file
            if token == "#" or operator or redirect:
                break
            args.append("1" if "$" in token else token)
        yield args[3:]  # after python -m ci_scripts


def cli_usage_error(args: list[str]) -> str | None:
    """Parse ``args`` with the real ci_scripts CLI (nothing runs); the usage error, if any."""
    import typer

    from ci_scripts.cli import app

    group = typer.main.get_command(app)
    try:
        ctx = group.make_context("ci_scripts", list(args))
        protected = getattr(ctx, "_protected_args", None)
        if protected is None:
            protected = ctx.protected_args
        name, command, rest = group.resolve_command(ctx, [*protected, *ctx.args])
        if command is None:
            return f"no command in {args}"
        command.make_context(name, rest, parent=ctx)
    except Exception as exc:  # typer vendors click: its UsageError class is private
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        return f"`ci_scripts {' '.join(args)}`: {message}"
    return None


# -- tests ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("combo", COMBOS, ids=COMBO_IDS)
def test_generated_workflows(render, combo: dict[str, str]) -> None:
    repo = render(combo)
    directory = repo / ".github" / "workflows"
    names = {p.name for p in directory.iterdir()}
    expected = (
        GENERATED_WORKFLOWS
        | ({"monitor.yml"} if combo["monitoring"] == "yes" else set())
        | ({"batch-run.yml"} if combo["deployment"] == "batch" else set())
    )
    assert names == expected, (
        f"missing: {sorted(expected - names)}, extra: {sorted(names - expected)}"
    )

    files = sorted(directory.glob("*.y*ml"))
    assert actionlint(repo, files) == []
    assert serious(zizmor_findings(repo / ".github")) == []

    problems: list[str] = []
    calls: list[list[str]] = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        if re.search(r"cookiecutter|\{%|(?<!\$)\{\{", text):
            problems.append(f"{path.name}: unrendered Jinja (escape ${{{{ }}}} with raw blocks)")
        wf = load_workflow(path)
        problems += rule_violations(repo, path.name, wf, text)
        problems += pin_violations(path.name, text)
        for job in wf["jobs"].values():
            for script in run_scripts(job):
                calls.extend(ci_scripts_calls(script))
    action_text = _open_pr_action(repo).read_text(encoding="utf-8")
    problems += pin_violations("open-pull-request", action_text)
    if re.search(r"cookiecutter|\{%|(?<!\$)\{\{", action_text):
        problems.append("open-pull-request/action.yml: unrendered Jinja")
    problems += [e for e in map(cli_usage_error, calls) if e]
    assert not problems, "\n".join(problems)
    assert calls, "the workflows call no ci_scripts command"


@pytest.mark.parametrize("combo", REFUSED, ids=[combo_id(c) for c in REFUSED])
def test_refused_combinations_render_no_workflows(cookies, combo: dict[str, str]) -> None:
    result = cookies.bake(extra_context=combo, template=str(TEMPLATE_DIR))
    assert result.exit_code != 0 and result.exception is not None
    assert result.project_path is None or not Path(result.project_path).exists()


def _open_pr_action(repo: Path) -> Path:
    return repo / OPEN_PR_ACTION[2:] / "action.yml"


def test_deploy_flow_shape(render) -> None:
    """What the GitOps loop depends on, beyond the generic rules (default answers)."""
    repo = render(COMBOS[0])
    wfs = workflows_of(repo)
    deploy = wfs["deploy.yml"]
    assert deploy["on"]["push"] == {"branches": ["main"], "paths": ["deploy/*.json"]}
    jobs = deploy["jobs"]
    assert jobs["prod"]["environment"] == "prod"
    assert ci_scripts_envs(jobs["staging"], "deploy") == {"staging"}
    assert ci_scripts_envs(jobs["prod"], "deploy") == {"prod"}
    assert ci_scripts_envs(jobs["prod"], "smoke-test") == {"prod"}
    # Only one job anywhere deploys prod, and only deploy.yml's prod job.
    prod_deployers = [
        (n, j) for n, wf in wfs.items() for j, job in wf["jobs"].items()
        if "prod" in ci_scripts_envs(job, "deploy")
    ]  # fmt: skip
    assert prod_deployers == [("deploy.yml", "prod")]
    # promote runs only after staging deployed and smoke-tested, in the same job (one
    # concurrency group), so the next staging deploy cannot interleave with the proposal.
    assert "promote" not in jobs
    staging_calls = [c for s in run_scripts(jobs["staging"]) for c in ci_scripts_calls(s)]
    subcommands = [
        next(a for a in c if not a.startswith("-") and a != "aws") for c in staging_calls
    ]
    assert subcommands == ["deploy", "deploy", "smoke-test", "promote"]
    assert jobs["staging"]["concurrency"] == {
        "group": "deploy-staging",
        "cancel-in-progress": False,
    }
    # prod: after staging succeeded, or when staging was deliberately skipped; never after a
    # cancelled or failed staging.
    condition = jobs["prod"]["if"]
    assert "needs.staging.result == 'success' || needs.staging.result == 'skipped'" in condition
    assert "!= 'failure'" not in condition
    # The prod gate reads deploy/prod.json's history (a revert to a version prod ran before).
    checkout = next(s for s in steps(jobs["prod"]) if action_of(s) == CHECKOUT_ACTION)
    assert checkout["with"]["fetch-depth"] == 0
    # Pull requests opened by workflows either come from the App token or get CI dispatched.
    assert "workflow_dispatch" in wfs["ci.yml"]["on"]
    action = load_yaml(_open_pr_action(repo).read_text())
    script = action["runs"]["steps"][0]["run"]
    assert "gh workflow run ci.yml" in script and "${{" not in script
    # train -> image first, propose last; drift re-enters through workflow_dispatch's `reason`.
    train = wfs["train.yml"]
    assert train["jobs"]["pipeline"]["needs"] == "image"
    assert train["jobs"]["propose"]["uses"] == "$/.github/workflows/propose.yml"
    assert "reason" in train["on"]["workflow_dispatch"]["inputs"]
    assert train["concurrency"] == {"group": "train", "cancel-in-progress": False}
    # An image-only change trains too; train's image job and a standalone build-image run never
    # share a concurrency group (GitHub would cancel the older pending one).
    assert {"Dockerfile", "pyproject.toml", "uv.lock"} <= set(train["on"]["push"]["paths"])
    build = wfs["build-image.yml"]["jobs"]["image"]
    assert build["concurrency"]["group"] == "build-image-${{ github.workflow }}"
    assert not set(wfs["build-image.yml"]["on"]["push"]["paths"]) & {"Dockerfile", "src/**"}
    monitor = wfs["monitor.yml"]
    assert "gh workflow run train.yml" in "\n".join(run_scripts(monitor["jobs"]["retrain"]))


def test_prod_appends_the_shadow_report_to_the_merged_pull_request(render) -> None:
    """deployment.shadow's report reaches the merged prod PR's body: one step after the deploy,
    also when the deploy failed (a failed shadow), values through env only, and pull-requests:
    write on the prod job alone (staging's is its own PR-opening fallback)."""
    jobs = workflows_of(render(COMBOS[0]))["deploy.yml"]["jobs"]
    prod = steps(jobs["prod"])
    names = [s.get("name", "") for s in prod]
    deploy = next(i for i, s in enumerate(prod) if s.get("id") == "deploy")
    append = names.index("Append the shadow test's report to the merged pull request")
    assert deploy < append < names.index("Smoke-test prod")
    step = prod[append]
    assert "!cancelled()" in step["if"] and "steps.deploy.outputs.shadow_report != ''" in step["if"]
    assert step["env"]["SHADOW_REPORT"] == "${{ steps.deploy.outputs.shadow_report }}"
    assert step["env"]["PR_NUMBER"] == "${{ needs.changes.outputs.prod_pr }}"
    script = step["run"]
    assert "${{" not in script  # no template injection: everything comes through env
    assert 'gh api --method PATCH "repos/${GITHUB_REPOSITORY}/pulls/${PR_NUMBER}"' in script
    assert "-F body=@pr-body.md" in script and '"$SHADOW_REPORT"' in script
    assert jobs["prod"]["permissions"]["pull-requests"] == "write"
    assert jobs["changes"]["permissions"]["pull-requests"] == "read"


def test_oidc_subjects_are_trusted_by_the_infra_roles(render) -> None:
    """Every job that assumes a role presents an OIDC subject that role's trust policy names.

    GitHub's subject is ``repo:<owner>/<repo>:environment:<name>`` for a job that declares an
    environment and ``...:ref:<ref>`` otherwise (every role-assuming job runs on main only).
    """
    repo = render(COMBOS[0])  # monitoring=yes: every workflow is there
    bootstrap = (repo / "infra" / "bootstrap.yml").read_text(encoding="utf-8")
    missing = []
    for name, wf in workflows_of(repo).items():
        for job_id, job in wf["jobs"].items():
            if not any(action_of(s) == AWS_CREDENTIALS_ACTION for s in steps(job)):
                continue
            environment = job.get("environment")
            environment = environment.get("name") if isinstance(environment, dict) else environment
            claim = f"environment:{environment}" if environment else "ref:refs/heads/main"
            subject = f"repo:${{GitHubOwner}}/${{GitHubRepo}}:{claim}"
            if subject not in bootstrap:
                missing.append(f"{name}: {job_id}: {subject}")
    assert not missing, "infra/bootstrap.yml trusts no such OIDC subject:\n" + "\n".join(missing)


def test_open_pull_request_action_passes_shellcheck(render) -> None:
    """actionlint lints workflows only; the composite action's script gets shellcheck here."""
    action = load_yaml(_open_pr_action(render(COMBOS[0])).read_text())
    for step in action["runs"]["steps"]:
        proc = subprocess.run(
            [tool("shellcheck"), "--shell=bash", "-"],
            input=step["run"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout


def test_rules_catch_what_they_should(render, tmp_path: Path) -> None:
    """The checks above are not vacuous: each broken rule on a copy is reported."""
    repo = render(COMBOS[0])
    source = (repo / ".github" / "workflows" / "deploy.yml").read_text()
    pin = PINS[CHECKOUT_ACTION]
    breakages = {
        "top-level permissions": source.replace("permissions: {}", "permissions: write-all"),
        "persist-credentials": source.replace("persist-credentials: false", "", 1),
        "not pinned": source.replace(f"@{pin['sha']} # {pin['tag']}", "@v4", 1),
        "needs the comment": source.replace(f"@{pin['sha']} # {pin['tag']}", f"@{pin['sha']}", 1),
        "outside the protected": source.replace("    environment: prod\n", ""),
        "expression in a run script": source.replace('"$GITHUB_SHA"', '"${{ github.sha }}"', 1),
        "id-token": source.replace("      id-token: write # OIDC: assume the prod", "      #", 1),
        "concurrency group deploy-staging": source.replace("group: deploy-staging", "group: x"),
    }  # fmt: skip
    for expected, broken in breakages.items():
        assert broken != source, f"breakage {expected!r} did not apply"
        path = tmp_path / "deploy.yml"
        path.write_text(broken)
        found = rule_violations(repo, "deploy.yml", load_workflow(path), broken)
        found += pin_violations("deploy.yml", broken)
        assert any(expected in p for p in found), f"{expected!r} not reported: {found}"
    monitor = (repo / ".github" / "workflows" / "monitor.yml").read_text()
    with_deploy_role = monitor.replace("-readonly-prod", "-deploy-prod")
    assert with_deploy_role != monitor
    path = tmp_path / "monitor.yml"
    path.write_text(with_deploy_role)
    found = rule_violations(repo, "monitor.yml", load_workflow(path), with_deploy_role)
    assert any("github-readonly-<env>" in p for p in found), found
    assert cli_usage_error(["deploy", "--env", "staging", "--no-such-flag"])


@pytest.mark.slow  # every hook, cfn-lint's included
@pytest.mark.parametrize("combo", PRE_COMMIT_COMBINATIONS, ids=combo_id)
def test_pre_commit_hooks_pass_on_a_fresh_render(render, combo: dict[str, str]) -> None:
    """Every hook, run the way pre-commit runs it, passes on the first commit.

    pre-commit itself would build each hook's virtualenv from PyPI first (slow, and needs the
    network), so the hooks' entry points run from this venv instead, on the files pre-commit
    would pass them (its own file filters: files/exclude/types/types_or/exclude_types).
    """
    repo = render(combo)
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout
    files = [f for f in listed.split("\0") if f] or [
        str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts
    ]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    failures = []
    for hook in pre_commit_hooks.hooks(repo):
        assert hook["hook_repo"] == "local", "hooks come from PyPI, not from git clones"
        assert hook["language"] == "python", hook["id"]
        for dep in hook["additional_dependencies"]:
            assert re.fullmatch(r"[\w.-]+==[\w.]+", dep), f"{hook['id']}: unpinned {dep}"
        selected = pre_commit_hooks.selected(repo, hook, files)
        if hook["pass_filenames"] and not selected:
            continue
        command = [*shlex.split(hook["entry"]), *hook["args"]]
        command[0] = tool(command[0])
        proc = subprocess.run(
            [*command, *(selected if hook["pass_filenames"] else [])],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            failures.append(f"{hook['id']}: {(proc.stdout + proc.stderr).strip()[-2000:]}")
    assert not failures, "\n\n".join(failures)
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True
    )
    assert status.stdout == "", f"hooks changed files: {status.stdout}"


def test_template_ci_workflow() -> None:
    """The template's own CI obeys the same rules and runs `make test`."""
    directory = TEMPLATE_DIR / ".github" / "workflows"
    files = sorted(directory.glob("*.y*ml"))
    assert "ci.yml" in {f.name for f in files}
    assert actionlint(TEMPLATE_DIR, files) == []
    assert serious(zizmor_findings(directory)) == []
    problems = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        problems += rule_violations(TEMPLATE_DIR, path.name, load_workflow(path), text)
        problems += pin_violations(path.name, text)
    assert problems == []
    ci = load_workflow(directory / "ci.yml")
    assert any("make test" in s for job in ci["jobs"].values() for s in run_scripts(job))
