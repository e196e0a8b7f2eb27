"""Import the model repo's ``pipelines/pipeline.py`` and build its definition.

The pipeline module is the model team's code; ci_scripts only needs ``definition(settings)``
(a JSON-able dict, built without an AWS account). Settings come from the module itself
(``PipelineSettings.from_pyproject``), so the pipeline owns how it reads the project's facts; the
image tag ci_scripts computes (the hash of the image's inputs) is passed in.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from ci_scripts.errors import CIError
from ci_scripts.imagetag import image_tag
from ci_scripts.project import ProjectConfig

PIPELINE_FILE = Path("pipelines") / "pipeline.py"


@contextmanager
def repo_on_path(root: Path) -> Iterator[None]:
    """``root`` and ``root/src`` importable for the duration (the pipeline imports both)."""
    added = [entry for entry in (str(root / "src"), str(root)) if entry not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for entry in added:
            if entry in sys.path:
                sys.path.remove(entry)


def module_file(module: str) -> Path:
    """``pipelines.pipeline`` -> ``pipelines/pipeline.py``."""
    return Path(*module.split(".")).with_suffix(".py")


def load_module(root: Path, module: str = "pipelines.pipeline") -> ModuleType:
    """Import ``module`` (``pipelines.pipeline`` or ``pipelines.monitoring``) from ``root``
    (call inside :func:`repo_on_path`), fresh."""
    file = module_file(module)
    if not (root / file).is_file():
        raise CIError(f"{file.as_posix()}: not found under {root}")
    package = _package_name(root)
    for name in [m for m in sys.modules if m.split(".")[0] in ("pipelines", package)]:
        del sys.modules[name]  # another repo's pipeline or model may be cached (tests)
    try:
        return importlib.import_module(module)
    except Exception as exc:
        raise CIError(f"{file.as_posix()}: import failed: {type(exc).__name__}: {exc}") from exc


def _package_name(root: Path) -> str:
    """The repo's package (pipelines import its model.py), or "" when it has none."""
    try:
        return ProjectConfig.load(root).package
    except CIError:
        return ""


def settings_for(module: ModuleType, project: ProjectConfig, **overrides: Any) -> Any:
    """The settings object ``module`` wants, read from ``project``'s pyproject.toml.

    The template's pipeline reads its own settings (``PipelineSettings.from_pyproject(root,
    image_tag=...)``); a module without that gets the ProjectConfig itself.
    """
    settings_cls = getattr(module, "PipelineSettings", None)
    if settings_cls is None or not hasattr(settings_cls, "from_pyproject"):
        return project
    try:
        return settings_cls.from_pyproject(project.root, **overrides)
    except (ValueError, TypeError) as exc:  # PipelineConfigError is a ValueError
        raise CIError(f"{PIPELINE_FILE.as_posix()}: settings: {exc}") from exc


def build_definition(
    project: ProjectConfig, module: str = "pipelines.pipeline", **overrides: Any
) -> dict[str, Any]:
    """``definition(settings)`` of ``module`` as a dict; any failure is a CIError naming the file.

    ``overrides`` go to the settings (default: ``image_tag`` = the image-tag of the repo).
    """
    if "image_tag" not in overrides and (project.root / "Dockerfile").is_file():
        overrides["image_tag"] = image_tag(project.root)
    with repo_on_path(project.root):
        return _build(project, module, overrides)


def _build(project: ProjectConfig, name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    file = module_file(name).as_posix()
    module = load_module(project.root, name)
    if not callable(getattr(module, "definition", None)):
        raise CIError(f"{file}: defines no definition(settings) function")
    try:
        result = module.definition(settings_for(module, project, **overrides))
    except CIError:
        raise
    except Exception as exc:
        raise CIError(f"{file}: definition(settings) failed: {type(exc).__name__}: {exc}") from exc
    if isinstance(result, str):
        import json

        result = json.loads(result)
    if not isinstance(result, dict) or not isinstance(result.get("Steps"), list):
        raise CIError(f"{file}: definition(settings) returned no 'Steps' list")
    return result
