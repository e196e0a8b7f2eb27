"""Build a pipeline definition: the model repo's ``pipelines/pipeline.py`` or a platform one.

The training pipeline module is the model team's code (composing ci_scripts.pipelines.steps);
the monitoring and batch pipelines are the platform's (``ci_scripts.pipelines.monitoring`` /
``.batch``). ci_scripts only needs a module's ``definition(settings)`` (a JSON-able dict, built
without an AWS account). Settings are the module's ``PipelineSettings`` built from the project
(``from_project``: ProjectConfig and the model's declarations); the image tag ci_scripts computes
(the hash of the image's inputs) is passed in.
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
PLATFORM_PREFIX = "ci_scripts."  # a module of the platform, not of the model repo


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
    """Import ``module`` (``pipelines.pipeline``) from ``root``, fresh, or a platform module
    (``ci_scripts.pipelines.monitoring``) as installed (call inside :func:`repo_on_path`)."""
    file = module_file(module)
    if module.startswith(PLATFORM_PREFIX):
        package = _package_name(root)
        for name in [m for m in sys.modules if m.split(".")[0] == package]:
            del sys.modules[name]  # another repo's package may be cached (tests)
        try:
            return importlib.import_module(module)
        except Exception as exc:
            raise CIError(f"{file.as_posix()}: import failed: {type(exc).__name__}: {exc}") from exc
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
    """The settings object ``module`` wants, for ``project``.

    The template's pipelines take ``ci_scripts.pipelines.settings.PipelineSettings``
    (``from_project(project, image_tag=...)``: the one reading of the project's facts and the
    model's declarations, whose errors name the key or file); a module whose ``PipelineSettings``
    has only ``from_pyproject(root, ...)`` gets that; a module without either gets the
    ProjectConfig itself.
    """
    settings_cls = getattr(module, "PipelineSettings", None)
    file = module_file(module.__name__).as_posix()
    try:
        if hasattr(settings_cls, "from_project"):
            return settings_cls.from_project(project, **overrides)
        if hasattr(settings_cls, "from_pyproject"):
            return settings_cls.from_pyproject(project.root, **overrides)
    except CIError:
        raise
    except (ValueError, TypeError) as exc:
        raise CIError(f"{file}: settings: {exc}") from exc
    return project


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
