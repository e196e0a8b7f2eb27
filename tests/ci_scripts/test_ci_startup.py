"""What a platform process imports when it starts: only what its work needs.

Every ``python -m ci_scripts ...`` the workflows, the Makefile and the test suite run, every local
router and every pipeline step pays its imports again, so a module that pulls in the pipeline
step runner, http.server or typer "just in case" costs CPU on each of hundreds of starts. These
tests read ``sys.modules`` of a real child process after a command ran (no timings: those belong
to ``make bench``), so a top-level import that brings such a module back fails here by name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from gitops_testkit import TEMPLATE_DIR, write_model_repo

# Run the CLI as ``python -m ci_scripts`` does, then write what the process imported.
CLI_CHILD = """
import json, sys
out, args = sys.argv[1], sys.argv[2:]
sys.argv = ["ci_scripts", *args]
from ci_scripts.cli import run
code = run()  # main() without its quick exit
with open(out, "w", encoding="utf-8") as handle:
    json.dump({"code": code, "modules": sorted(sys.modules)}, handle)
"""

# Never needed to read manifests and local state: the AWS SDKs, the model's libraries, and the
# local backend's pipeline runner and endpoint-serving code (a command that reads state runs none).
NOT_FOR_READING = (
    "boto3",
    "botocore",
    "sagemaker",
    "pandas",
    "sklearn",
    "numpy",
    "http.server",
    "ci_scripts.backends.aws",
    "ci_scripts.backends.local.pipeline",
    "ci_scripts.backends.local.steps",
    "ci_scripts.backends.local.warm",
    "ci_scripts.backends.local.tuning",
    "ci_scripts.backends.local.router",
    "ci_scripts.backends.local.canary",
)


def child_env() -> dict[str, str]:
    """This checkout's ci_scripts, and no AWS or CI settings from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GITHUB_", "CI_"))}
    env["PYTHONPATH"] = str(TEMPLATE_DIR)
    return env


def imported_by(tmp_path: Path, *args: str, cwd: Path) -> tuple[object, set[str]]:
    """Exit code and ``sys.modules`` of a ``python -m ci_scripts <args>`` run in ``cwd``."""
    out = tmp_path / "modules.json"
    subprocess.run(
        [sys.executable, "-c", CLI_CHILD, str(out), *args],
        cwd=cwd,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    result = json.loads(out.read_text(encoding="utf-8"))
    return result["code"], set(result["modules"])


def loaded(modules: set[str], name: str) -> bool:
    """``name`` or any of its submodules was imported."""
    return name in modules or any(m.startswith(f"{name}.") for m in modules)


@pytest.mark.parametrize("args", [("--help",), ("--version",)])
def test_help_and_version_import_no_command_code(tmp_path: Path, args: tuple[str, ...]) -> None:
    code, modules = imported_by(tmp_path, *args, cwd=TEMPLATE_DIR)
    assert code == 0
    heavy = ("jsonschema", "pydantic", "rich", "ci_scripts.backends.local", *NOT_FOR_READING)
    assert [name for name in heavy if loaded(modules, name)] == []


def test_status_imports_what_reading_state_needs(tmp_path: Path) -> None:
    """``status`` validates the manifests (jsonschema) and reads the local registry and
    endpoints; it starts no pipeline step, router or server, so it imports none of their code.
    Nor pydantic: typer 0.29 imports it to coerce every parameter, ~0.1 s of CPU per command
    start (pyproject.toml keeps typer below 0.29)."""
    repo = write_model_repo(tmp_path / "repo", pipeline="none")
    code, modules = imported_by(tmp_path, "status", "--format", "json", cwd=repo)
    assert code == 0
    # the work it does is really done: the manifests were validated, the local state read
    assert {"jsonschema", "ci_scripts.backends.local.backend"} <= modules
    assert [name for name in (*NOT_FOR_READING, "pydantic") if loaded(modules, name)] == []


def test_router_and_errors_import_only_the_standard_library(tmp_path: Path) -> None:
    """The router (``python -m ci_scripts.backends.local.router``, one per local endpoint start)
    is standard library only; so is ``ci_scripts.errors``, which every process that raises a
    CIError imports: typer is the CLI's, imported when a command is wrapped."""
    script = (
        "import json, sys\n"
        "import ci_scripts.errors, ci_scripts.backends.local.router\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    tops = {name.split(".")[0] for name in json.loads(proc.stdout)}
    # site may import the venv's own .pth hooks (editable installs): they are no import of ours
    outside = {
        name
        for name in tops - set(sys.stdlib_module_names) - {"ci_scripts", "__main__"}
        if not name.startswith(("__editable__", "_virtualenv", "_distutils_hack"))
    }
    assert outside == set()
