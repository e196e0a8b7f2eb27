"""Refuse a bad answer before anything is written; then vendor ci_scripts into the project.

Runs under whatever Python runs cookiecutter (``uvx cookiecutter``, ``pipx run cookiecutter``,
cruft): standard library only. On the first bad answer it prints ONE line,
``error: <field>='<value>': <rule>``, and exits 1; cookiecutter then removes the project
directory it created for the hook, so nothing is left behind.

With every answer accepted, it copies the template's ``ci_scripts/`` into the (still empty)
project directory and writes ``ci_scripts/VENDORED.sha256``, the record ``ci_scripts validate``
checks the copy against (written by ``ci_scripts/vendored.py``, loaded from the template by path).
This is the one hook that needs the template directory: cookiecutter runs each hook as a lone
rendered temp file (a hook cannot import a sibling module, cookiecutter issue #824), so locating
the template lives here only and post_gen_project works on the rendered project alone.

Facts from AWS (SageMaker regions, instance types per job kind, name limits) come from
``ci_scripts/aws_facts.json`` in the template (vendored with ci_scripts, which checks
manifests against it), generated from botocore by ``make aws-facts``.
The hook itself runs from a rendered temp copy, so the template directory is located at run time
(see ``find_template_dir``). Choice options come from the template's ``cookiecutter.json``.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import keyword
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

# cookiecutter renders this file before running it; jsonify escapes every quote and backslash,
# so any answer survives as data (never as code) in this raw string.
ANSWERS_JSON = r"""{{ cookiecutter | jsonify }}"""
# {% raw %} Jinja stops here: the rest of this file reaches Python exactly as written.

FACTS_FILE = Path("ci_scripts", "aws_facts.json")
VENDORED = "ci_scripts"
VENDOR_IGNORE = shutil.ignore_patterns("__pycache__", "*.py[co]")
RECORD_MODULE = Path(VENDORED, "vendored.py")

ACCOUNT_FIELDS = ("dev_account_id", "staging_account_id", "prod_account_id")
INSTANCE_TYPE_FIELDS = {  # field -> (facts key, what AWS accepts it for)
    "processing_instance_type": ("processing", "SageMaker processing jobs"),
    "training_instance_type": ("training", "SageMaker training jobs"),
    "endpoint_instance_type": ("endpoint", "SageMaker endpoint production variants"),
}
ENVIRONMENTS = ("staging", "prod")
DEPLOY_ROLE_ACCOUNTS = ("dev", "staging", "prod")

# project: lowercase (S3, ECR), starts with a letter (Python package, CloudFormation stack), single
# hyphens between letters/digits (the package is the project with "_" for "-").
PROJECT_RE = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
# Top-level modules a generated repo already has or imports: a package of the same name would
# shadow them (pythonpath is "src" and ".").
RESERVED_PACKAGES = frozenset(
    {
        "ci_scripts", "pipelines", "tests", "src", "data", "deploy", "infra",
        "sklearn", "scipy", "numpy", "pandas", "joblib", "sagemaker", "boto3", "botocore",
        "moto", "typer", "rich", "jsonschema", "pytest", "setuptools", "pip",
    }
)  # fmt: skip
# Packages CPython ships that sys.stdlib_module_names leaves out (it lists modules, not the
# test suite); some distributions split them off, but python:3.x images (what the generated
# Dockerfile builds on) have them, and `python -m test` there runs CPython's regression tests.
CPYTHON_EXTRA_PACKAGES = frozenset({"test", "idlelib", "lib2to3", "turtledemo", "ensurepip"})
GITHUB_OWNER_RE = re.compile(r"[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}")
GITHUB_REPO_RE = re.compile(r"[A-Za-z0-9._-]{1,100}")
# An approver in .github/CODEOWNERS: a user (@login) or a team (@org/team-slug). An organisation
# alone is no owner (GitHub ignores the line), and neither is a bot: nobody else is accepted.
APPROVER_RE = re.compile(
    r"@[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}(?:/[A-Za-z0-9](?:[A-Za-z0-9_-]{0,98}[A-Za-z0-9])?)?"
)
ACCOUNT_RE = re.compile(r"[0-9]{12}")
# Free text lands inside double-quoted TOML strings (pyproject.toml) and Markdown (README.md);
# cookiecutter's replay and cruft's .cruft.json JSON-encode it. Quotes, backslashes and template
# or shell syntax are refused so a later template change cannot turn them into code.
# An apostrophe is fine: the text lands in double-quoted TOML strings and Markdown only.
TEXT_FORBIDDEN = frozenset('"\\`${}')
TEXT_MAX = {"description": 200, "author": 100}
# S3 general purpose bucket naming rules (not expressible as one botocore shape pattern).
S3_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
S3_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
S3_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


class Refused(Exception):
    """One bad answer: the field, the value given, and the rule it breaks."""

    def __init__(self, field: str, value: object, rule: str) -> None:
        super().__init__(f"{field}={value!r}: {rule}")


def find_template_dir(answers: dict) -> Path:
    """The template checkout this render comes from.

    cookiecutter and cruft both run hooks inside ``work_in(repo_dir)``, so the parent process's
    working directory is the template that is being rendered; it is read first because it cannot be
    stale. ``_repo_dir`` (set by cookiecutter, not by cruft) is the fallback where the parent's
    cwd cannot be read.
    """
    candidates = [_parent_cwd(), answers.get("_repo_dir")]
    for candidate in candidates:
        if candidate and _is_template_dir(Path(candidate)):
            return Path(candidate).resolve()
    raise RuntimeError(
        f"{FACTS_FILE.as_posix()}: cannot locate the template directory (parent process cwd: "
        f"{candidates[0]!r}, _repo_dir: {candidates[1]!r}); render with cookiecutter or cruft"
    )


def _is_template_dir(path: Path) -> bool:
    return (path / "cookiecutter.json").is_file() and (path / FACTS_FILE).is_file()


def _parent_cwd() -> str | None:
    """The cwd of the process that ran this hook: /proc on Linux, lsof elsewhere (macOS)."""
    ppid = os.getppid()
    try:
        return os.readlink(f"/proc/{ppid}/cwd")
    except OSError:
        pass
    try:
        out = subprocess.run(
            ["lsof", "-a", "-p", str(ppid), "-d", "cwd", "-Fn"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return next((line[1:] for line in out.splitlines() if line.startswith("n")), None)


def _check_name(label: str, name: str, limits: dict) -> str | None:
    """A derived resource name against its botocore shape limits; the broken rule, or None."""
    if not limits["min"] <= len(name) <= limits["max"]:
        return (
            f"the {label} {name!r} would be {len(name)} characters "
            f"({limits['source']} allows {limits['min']}-{limits['max']})"
        )
    if not re.fullmatch(limits["pattern"], name, flags=re.ASCII):
        return f"the {label} {name!r} does not match {limits['source']} pattern {limits['pattern']}"
    return None


def _bucket_rule(bucket: str) -> str | None:
    """S3 general purpose bucket naming rules; the broken rule, or None."""
    if len(bucket) > 63:
        return f"the S3 artifact bucket {bucket!r} would be {len(bucket)} characters (at most 63)"
    if not S3_BUCKET_RE.fullmatch(bucket) or ".." in bucket:
        return f"the S3 artifact bucket {bucket!r} breaks S3 naming rules"
    if bucket.startswith(S3_RESERVED_PREFIXES) or bucket.endswith(S3_RESERVED_SUFFIXES):
        return f"the S3 artifact bucket {bucket!r} uses a prefix or suffix S3 reserves"
    try:
        ipaddress.ip_address(bucket)
    except ValueError:
        return None
    return f"the S3 artifact bucket {bucket!r} looks like an IP address"


def shadows_stdlib(package: str) -> bool:
    """True when ``import <package>`` would mean a standard library module or package.

    ``sys.stdlib_module_names`` misses CPython's own packages such as ``test``; the stdlib
    directory of the running Python is read too (a name there is importable from every
    interpreter built the same way), plus CPYTHON_EXTRA_PACKAGES for distributions that split
    those packages off.
    """
    if package in sys.stdlib_module_names or package in CPYTHON_EXTRA_PACKAGES:
        return True
    for key in ("stdlib", "platstdlib"):
        folder = Path(sysconfig.get_paths()[key])
        if (folder / package / "__init__.py").is_file() or (folder / f"{package}.py").is_file():
            return True
    return False


def check_project(answers: dict) -> None:
    project = answers["project"]
    if not PROJECT_RE.fullmatch(project):
        raise Refused(
            "project",
            project,
            "use lowercase letters, digits and single hyphens, starting with a letter and ending "
            "with a letter or digit (it names the S3 bucket, ECR repository, endpoints and the "
            "Python package)",
        )
    package = answers["__package"]
    if (
        not package.isidentifier()
        or keyword.iskeyword(package)
        or package in RESERVED_PACKAGES
        or shadows_stdlib(package)
    ):
        raise Refused(
            "project",
            project,
            f"the Python package {package!r} would clash with a keyword, the standard library or "
            "a module the generated repo uses; pick another name",
        )


def check_text(answers: dict, field: str) -> None:
    value = answers[field]
    if not value.strip():
        raise Refused(field, value, "must not be empty")
    if value != value.strip() or not value.isprintable():
        raise Refused(
            field, value, "must be one line without leading/trailing spaces or control characters"
        )
    bad = sorted(set(value) & TEXT_FORBIDDEN)
    if bad:
        raise Refused(
            field,
            value,
            f"must not contain {' '.join(bad)} (the text is written into TOML/YAML/JSON strings "
            "and GitHub workflows)",
        )
    if len(value) > TEXT_MAX[field]:
        raise Refused(field, value, f"must be at most {TEXT_MAX[field]} characters")


def check_github(answers: dict) -> None:
    owner = answers["github_owner"]
    if not GITHUB_OWNER_RE.fullmatch(owner):
        raise Refused(
            "github_owner",
            owner,
            "not a GitHub user or organisation name (1-39 letters, digits or single hyphens, "
            "not starting or ending with a hyphen)",
        )
    repo = answers["github_repo"]
    if not GITHUB_REPO_RE.fullmatch(repo) or repo in (".", ".."):
        raise Refused(
            "github_repo",
            repo,
            "not a GitHub repository name (1-100 letters, digits, '.', '-' or '_')",
        )
    # The numeric ids GitHub's immutable OIDC subject claims embed (0: not known yet).
    for field in ("github_owner_id", "github_repo_id"):
        value = str(answers.get(field, "0"))
        if not value.isascii() or not value.isdigit():
            raise Refused(
                field,
                value,
                "a GitHub numeric id (digits only; gh api repos/OWNER/REPO --jq '.owner.id, .id')",
            )
    # Rendered into .github/CODEOWNERS (spaces or commas between several).
    approvers = str(answers.get("approvers", ""))
    names = approvers.replace(",", " ").split()
    if not names or not all(APPROVER_RE.fullmatch(name) for name in names):
        raise Refused(
            "approvers",
            approvers,
            "one or more GitHub users (@login) or teams (@org/team), separated by spaces; "
            "an organisation alone (@org) owns nothing in CODEOWNERS",
        )


def check_region(answers: dict, facts: dict) -> None:
    region = answers["aws_region"]
    if region not in facts["sagemaker_regions"]:
        raise Refused(
            "aws_region",
            region,
            f"not a region where SageMaker is available in the {facts['partition']!r} partition "
            f"(see {FACTS_FILE.as_posix()})",
        )


def check_accounts(answers: dict) -> None:
    for field in ACCOUNT_FIELDS:
        if not ACCOUNT_RE.fullmatch(answers[field]):
            raise Refused(field, answers[field], "an AWS account id is exactly 12 digits")


def check_instance_types(answers: dict, facts: dict) -> None:
    for field, (kind, accepted_by) in INSTANCE_TYPE_FIELDS.items():
        value = answers[field]
        if value not in facts["instance_types"][kind]:
            raise Refused(
                field,
                value,
                f"not an instance type {accepted_by} accept (see {FACTS_FILE.as_posix()})",
            )


def check_choices(answers: dict, options: dict) -> None:
    for field, choices in options.items():
        if (
            isinstance(choices, list)
            and not field.startswith("_")
            and answers.get(field) not in choices
        ):
            raise Refused(field, answers.get(field), f"choose one of {', '.join(choices)}")


def derived_names(answers: dict) -> list[tuple[str, str, str]]:
    """(label, name, facts["names"] key) for every AWS resource named after the project.

    Names that cookiecutter.json derives are taken from the rendered answers, so they are computed
    exactly as the template computes them; the per-environment ones follow the conventions of
    ci_scripts (endpoint ``<project>-<env>``) and infra (deploy role ``<prefix>-deploy-<env>``).
    """
    project = answers["project"]
    group = answers["__model_package_group"]
    names = [
        ("SageMaker model package group", group, "sagemaker_model_package_group"),
        ("SageMaker pipeline", answers["__pipeline_name"], "sagemaker_pipeline"),
        ("ECR repository", answers["__ecr_repository"], "ecr_repository"),
        ("IAM role", answers["__sagemaker_role"], "iam_role"),
    ]
    names += [
        ("SageMaker endpoint", f"{project}-{env}", "sagemaker_endpoint") for env in ENVIRONMENTS
    ]
    names += [
        ("IAM role", f"{answers['__github_role_prefix']}-deploy-{env}", "iam_role")
        for env in DEPLOY_ROLE_ACCOUNTS
    ]
    return names


def check_derived_names(answers: dict, facts: dict) -> None:
    """Every name built from ``project`` fits its AWS limits; the answer to change is project."""
    project = answers["project"]
    rule = _bucket_rule(answers["__artifact_bucket"])
    for label, name, key in derived_names(answers):
        rule = rule or _check_name(label, name, facts["names"][key])
    if rule:
        raise Refused("project", project, f"{rule}; choose a shorter or different project name")


def check_combinations(answers: dict) -> None:
    if answers["deployment"] == "serverless" and answers["monitoring"] == "yes":
        raise Refused(
            "monitoring",
            answers["monitoring"],
            "SageMaker serverless endpoints support neither data capture nor Model Monitor; "
            "answer monitoring=no, or deployment=realtime",
        )
    # monitoring=yes stays allowed for batch: the monitor reads each run's inputs and outputs.
    if answers["deployment"] == "batch" and answers["api_gateway"] == "yes":
        raise Refused(
            "api_gateway",
            answers["api_gateway"],
            "deployment=batch has no endpoint to put an API in front of; answer api_gateway=no, "
            "or deployment=realtime",
        )


def validate(answers: dict, facts: dict, options: dict) -> None:
    """All rules, in prompt order, so the first refusal names the first bad answer."""
    check_project(answers)
    check_text(answers, "description")
    check_text(answers, "author")
    check_github(answers)
    check_region(answers, facts)
    check_accounts(answers)
    check_instance_types(answers, facts)
    check_choices(answers, options)
    check_derived_names(answers, facts)
    check_combinations(answers)


def vendor_ci_scripts(template_dir: Path, project_dir: Path, version: str) -> Path:
    """Copy the template's single ci_scripts package into the project (no bytecode) and write
    its record; the path of the record."""
    source, target = template_dir / VENDORED, project_dir / VENDORED
    if not (source / "__init__.py").is_file():
        raise RuntimeError(f"{source}: the template has no {VENDORED} package to vendor")
    rendered = [p / VENDORED for p in template_dir.glob("{{*}}") if (p / VENDORED).exists()]
    if rendered or target.exists():
        raise RuntimeError(
            f"{VENDORED}/: the render already has one; it must exist only at the template root"
        )
    shutil.copytree(source, target, ignore=VENDOR_IGNORE)
    return _load_module(template_dir / RECORD_MODULE).write_record(target, version)


def _load_module(path: Path):
    """Load one standard-library-only module of the template by path (no package, no bytecode)."""
    sys.dont_write_bytecode = True  # nothing written into the template checkout
    spec = importlib.util.spec_from_file_location(f"_template_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"{path}: cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    try:
        answers = json.loads(ANSWERS_JSON)
        template_dir = find_template_dir(answers)
        facts = json.loads((template_dir / FACTS_FILE).read_text(encoding="utf-8"))
        options = json.loads((template_dir / "cookiecutter.json").read_text(encoding="utf-8"))
        validate(answers, facts, options)
        vendor_ci_scripts(template_dir, Path.cwd(), answers["__template_version"])
    except Refused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (RuntimeError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        print(f"error: pre_gen_project: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
# {% endraw %}
