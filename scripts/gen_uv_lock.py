"""Regenerate the generated repo's ``uv.lock`` (``PROJECT_TEMPLATE / "uv.lock"``): its locked env.

Every workflow job and the Dockerfile install from this lock (``uv sync --locked``, ``uv export
--locked``), so a generated repo is reproducible from its first commit. The only answer the lock
depends on is ``project`` (the root package's name and its self-reference in the ``dev`` extra;
description and author are not in a lock), so one lock serves every option combination: this
script locks the pyproject rendered with the default answers and writes the project's name back
as ``{{ cookiecutter.project }}``. ``tests/test_uv_lock.py`` runs ``uv lock --check`` on the lock
of every rendered combination.

Run it with ``python -m scripts.gen_uv_lock`` after changing the template's pyproject.toml
(``--upgrade`` takes the newest versions the ranges allow; without it, versions already locked
are kept).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from scripts.template_layout import PROJECT_TEMPLATE

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
PROJECT_DIR = PROJECT_TEMPLATE
LOCK_PATH = PROJECT_DIR / "uv.lock"
PLACEHOLDER = "{{ cookiecutter.project }}"
JINJA_MARKERS = re.compile(r"\{\{|\{%|\{#")


def render_pyproject(project: str) -> str:
    """The template's pyproject.toml as cookiecutter renders it for the default answers."""
    import jinja2

    defaults = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text("utf-8"))
    context = {k: (v[0] if isinstance(v, list) and v else v) for k, v in defaults.items()}
    context["project"] = project
    env = jinja2.Environment(keep_trailing_newline=True)
    # Render the private keys first: they are templates of the public answers.
    for key, value in list(context.items()):
        if isinstance(value, str):
            context[key] = env.from_string(value).render(cookiecutter=context)
    return env.from_string((PROJECT_DIR / "pyproject.toml").read_text("utf-8")).render(
        cookiecutter=context
    )


def templated(lock: str, project: str) -> str:
    """``lock`` with the project's name written as the cookiecutter variable."""
    if JINJA_MARKERS.search(lock):
        raise SystemExit("error: uv.lock: contains Jinja markers; it cannot be rendered as is")
    return lock.replace(f'name = "{project}"', f'name = "{PLACEHOLDER}"')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upgrade", action="store_true")
    args = parser.parse_args(argv)
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if not uv:
        print("error: uv: not installed (make .venv/.installed)", file=sys.stderr)
        return 1
    project = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text("utf-8"))["project"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "pyproject.toml").write_text(render_pyproject(project), "utf-8")
        if LOCK_PATH.is_file():
            placeholder = f'name = "{PLACEHOLDER}"'
            rendered = LOCK_PATH.read_text("utf-8").replace(placeholder, f'name = "{project}"')
            (work / "uv.lock").write_text(rendered, "utf-8")
        command = [uv, "lock", "--quiet", *(["--upgrade"] if args.upgrade else [])]
        subprocess.run(command, cwd=work, check=True)
        LOCK_PATH.write_text(templated((work / "uv.lock").read_text("utf-8"), project), "utf-8")
    print(f"wrote {LOCK_PATH.relative_to(TEMPLATE_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
