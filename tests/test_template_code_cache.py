"""The suite's shared Jinja bytecode cache (tests/template_code_cache.py) never changes a render.

Every in-process render of the suite uses it; these tests hold it to what it promises: the same
files as a render without it, and a template file changed between two renders is compiled anew.
"""

from __future__ import annotations

import contextlib
import filecmp
import io
import shutil
from pathlib import Path

import template_code_cache
from cookiecutter.main import cookiecutter
from gitops_testkit import TEMPLATE_DIR

TEMPLATE_FOLDER = next(p.name for p in TEMPLATE_DIR.iterdir() if p.name.startswith("{{"))


def _render(template: Path, out: Path) -> Path:
    with contextlib.redirect_stdout(io.StringIO()):  # the hook's next steps
        return Path(cookiecutter(str(template), no_input=True, output_dir=str(out)))


def _copy_template(target: Path) -> Path:
    ignore = shutil.ignore_patterns(".git", ".venv", ".demo", "__pycache__", "*.egg-info")
    shutil.copytree(TEMPLATE_DIR, target, ignore=ignore)
    return target


def _same_files(a: Path, b: Path) -> list[str]:
    """Paths whose content differs between two renders (git metadata aside)."""
    different: list[str] = []
    for path in a.rglob("*"):
        if ".git" in path.relative_to(a).parts or not path.is_file():
            continue
        twin = b / path.relative_to(a)
        if not twin.is_file() or not filecmp.cmp(path, twin, shallow=False):
            different.append(str(path.relative_to(a)))
    return different


def test_a_cached_render_is_the_uncached_one(tmp_path: Path, monkeypatch) -> None:
    template = _copy_template(tmp_path / "template")
    cached = _render(template, tmp_path / "cached")  # compiles and keeps
    cached_again = _render(template, tmp_path / "again")  # reuses
    assert template_code_cache.SHARED.code  # the renders went through the shared cache
    monkeypatch.setattr(template_code_cache.SHARED, "code", {})
    monkeypatch.setattr(template_code_cache.SharedTemplateCode, "dump_bytecode", lambda *_: None)
    uncached = _render(template, tmp_path / "uncached")
    assert _same_files(cached, uncached) == [] and _same_files(cached_again, uncached) == []


def test_a_changed_template_file_is_compiled_again(tmp_path: Path) -> None:
    template = _copy_template(tmp_path / "template")
    readme = template / TEMPLATE_FOLDER / "README.md"
    first = _render(template, tmp_path / "first")
    readme.write_text(readme.read_text() + "\nA line added between two renders.\n")
    second = _render(template, tmp_path / "second")
    assert "A line added between two renders." not in (first / "README.md").read_text()
    assert "A line added between two renders." in (second / "README.md").read_text()
