"""Find the model team's package: the one thing of the repo the platform's container code imports.

The platform runs the team's code, never the reverse: a step imports ``<package>.model`` (the
estimator, its hyperparameters, metrics and gate) and ``<package>.schema`` (the data: target,
features, classes). Which package that is comes from ``$MODEL_PACKAGE`` (the Dockerfile sets it,
the local backend passes it to every step it runs) or, outside both, from the
``[tool.sagemaker-gitops]`` table of the pyproject.toml in the working directory (a developer's
shell, the generated repo's tests): the same table ci_scripts.project reads, so the name has one
source.
"""

from __future__ import annotations

import importlib
import os
import sys
import tomllib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from types import ModuleType

from .errors import StepError

ENV_VAR = "MODEL_PACKAGE"


@cache
def package() -> str:
    """The team's package name: ``$MODEL_PACKAGE``, else pyproject.toml's ``package``."""
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR]
    path = Path("pyproject.toml")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))["tool"]["sagemaker-gitops"]
        return str(table["package"])
    except (OSError, KeyError, TypeError, tomllib.TOMLDecodeError):
        raise StepError(
            f"${ENV_VAR} is not set and {path.resolve()} has no [tool.sagemaker-gitops].package:"
            " cannot tell which package holds the model"
        ) from None


def module(name: str) -> ModuleType:
    """``<package>.<name>`` (``model`` or ``schema``); a StepError naming it if it will not load."""
    qualified = f"{package()}.{name}"
    try:
        return importlib.import_module(qualified)
    except ImportError as exc:
        raise StepError(f"{qualified}: cannot import: {exc}") from exc


@contextmanager
def bound_to(src: Path, package_name: str) -> Iterator[None]:
    """Import the runtime in this process for the repo whose team package is ``src/<name>``.

    For the CLI, which runs one step's function in-process (the smoke test's split of the
    dataset): the runtime's modules bind the team's model when they are imported, so the ones
    already loaded (bound to another repo, or to none) are set aside for the duration and put
    back after, and what this repo's binding loaded is dropped: a process that holds several
    repos (a test session) never mixes their models.
    """

    def loaded() -> dict[str, ModuleType]:
        keep = (__name__, f"{__package__}.errors")
        return {
            name: module
            for name, module in sys.modules.items()
            if (name.split(".")[0] == package_name or name.startswith(f"{__package__}."))
            and name not in keep
        }

    def drop(names: Iterable[str]) -> None:
        # Out of sys.modules and off its parent package too: `from . import model` reads the
        # parent's attribute first, and would hand back the module bound to the other repo.
        for name in names:
            del sys.modules[name]
            parent, _, child = name.rpartition(".")
            if parent in sys.modules and getattr(sys.modules[parent], child, None) is not None:
                delattr(sys.modules[parent], child)

    saved_env, saved_modules = os.environ.get(ENV_VAR), loaded()
    drop(list(saved_modules))
    os.environ[ENV_VAR] = package_name
    sys.path.insert(0, str(src))
    package.cache_clear()
    try:
        yield
    finally:
        drop(list(loaded()))
        sys.modules.update(saved_modules)
        for name, module in saved_modules.items():
            parent, _, child = name.rpartition(".")
            if parent in sys.modules:
                setattr(sys.modules[parent], child, module)
        sys.path.remove(str(src))
        package.cache_clear()
        if saved_env is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = saved_env
