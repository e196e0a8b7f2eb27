"""Import the model repo's ``pipelines/pipeline.py`` and build its definition.

The pipeline module is the model team's code; ci_scripts only needs ``definition(settings)``
(a JSON-able dict, built without an AWS account) and ``get_pipeline(settings)``. Settings come from
the module itself (``Settings.from_project(project)`` or ``settings_from_project(project)``),
falling back to the ProjectConfig, so the pipeline owns how it reads the project's facts.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from ci_scripts.errors import CIError
from ci_scripts.project import ProjectConfig

PIPELINE_FILE = Path("pipelines") / "pipeline.py"


def load_module(root: Path) -> ModuleType:
    """Import ``pipelines.pipeline`` from ``root`` (and its ``src/``), fresh each time."""
    path = root / PIPELINE_FILE
    if not path.is_file():
        raise CIError(f"{PIPELINE_FILE.as_posix()}: not found under {root}")
    for name in [m for m in sys.modules if m == "pipelines" or m.startswith("pipelines.")]:
        del sys.modules[name]  # another repo's pipeline may be cached (tests, several repos)
    for entry in (str(root / "src"), str(root)):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    try:
        return importlib.import_module("pipelines.pipeline")
    except Exception as exc:
        raise CIError(
            f"{PIPELINE_FILE.as_posix()}: import failed: {type(exc).__name__}: {exc}"
        ) from exc


def settings_for(module: ModuleType, project: ProjectConfig, **overrides: Any) -> Any:
    """The settings object ``module`` wants, built from ``project`` (+ keyword overrides)."""
    factory = getattr(getattr(module, "Settings", None), "from_project", None)
    factory = factory or getattr(module, "settings_from_project", None)
    if factory is None:
        return project
    return factory(project, **overrides) if overrides else factory(project)


def build_definition(project: ProjectConfig, **overrides: Any) -> dict[str, Any]:
    """``definition(settings)`` as a dict; any failure is a CIError naming the file."""
    module = load_module(project.root)
    if not callable(getattr(module, "definition", None)):
        raise CIError(f"{PIPELINE_FILE.as_posix()}: defines no definition(settings) function")
    try:
        result = module.definition(settings_for(module, project, **overrides))
    except CIError:
        raise
    except Exception as exc:
        raise CIError(
            f"{PIPELINE_FILE.as_posix()}: definition(settings) failed: {type(exc).__name__}: {exc}"
        ) from exc
    if isinstance(result, str):
        import json

        result = json.loads(result)
    if not isinstance(result, dict) or not isinstance(result.get("Steps"), list):
        raise CIError(f"{PIPELINE_FILE.as_posix()}: definition(settings) returned no 'Steps' list")
    return result
