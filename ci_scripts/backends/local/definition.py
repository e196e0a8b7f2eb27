"""The pipeline definition the local backend runs: the real one, built once per content.

Building it means importing the sagemaker SDK (several seconds), yet it is a pure function of
the repo's ``pipelines/``, ``pyproject.toml`` and model declarations, ci_scripts' own
``pipelines/`` and the SDK version. So the JSON is cached under that content
hash, in ``.mlops/cache/`` and in a per-user cache (``$CI_SCRIPTS_CACHE_DIR``, else
``$XDG_CACHE_HOME/sagemaker-gitops``, else ``~/.cache/sagemaker-gitops``) that a freshly rendered
repo with the same pipeline code also hits. Change any input and it is rebuilt.

The image tag is the one input left out: ci_scripts tags the image by the content of src/, so
keying on it would rebuild the definition on every code change. The definition is built with a
placeholder tag instead, and the placeholder is replaced by the current tag on every load: the
SDK treats the image URI as an opaque string, so the result is what a build with the real tag
gives.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

from ci_scripts.backends.local.state import LocalState, read_json, write_json_atomic
from ci_scripts.definition_inputs import definition_key
from ci_scripts.errors import CIError
from ci_scripts.project import ProjectConfig

CACHE_ENV = "CI_SCRIPTS_CACHE_DIR"
PLACEHOLDER_TAG = "ci-scripts-local-image-tag"
INPUT_DATA_PARAMETER = "InputDataUrl"
SHIPPED_DATASET = Path("data") / "dataset.csv"


def user_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sagemaker-gitops"


def load_definition(
    project: ProjectConfig, state: LocalState, module: str = "pipelines.pipeline"
) -> tuple[dict[str, Any], bool]:
    """(definition of ``module`` with the current image tag, whether it came from a cache)."""
    definition, cached = _load_untagged(project, state, module)
    return _retag(definition, current_image_tag(project.root)), cached


def cache_monitoring_definition(project: ProjectConfig, state: LocalState) -> None:
    """Build and cache the monitoring definition while a build has the SDK loaded.

    Importing the sagemaker SDK is most of a build (about 3 s of CPU; the build itself a few
    tenths): run-pipeline, which has just paid it, builds the monitoring definition too (when
    the project monitors), so the first ``monitor`` starts from the cache instead of importing
    the SDK again. One that fails to build is left for ``monitor`` to report in its own words.
    """
    if not project.monitoring:
        return
    from ci_scripts.monitoring import MONITORING_MODULE

    with contextlib.suppress(CIError):
        _load_untagged(project, state, MONITORING_MODULE)


def current_image_tag(root: Path) -> str:
    """The tag ci_scripts gives the image (content hash); "latest" without a Dockerfile."""
    if not (root / "Dockerfile").is_file():
        return "latest"
    from ci_scripts.imagetag import image_tag

    return image_tag(root)


def _retag(value: Any, tag: str) -> Any:
    if isinstance(value, dict):
        return {k: _retag(v, tag) for k, v in value.items()}
    if isinstance(value, list):
        return [_retag(v, tag) for v in value]
    if isinstance(value, str) and value.endswith(":" + PLACEHOLDER_TAG):
        return value[: -len(PLACEHOLDER_TAG)] + tag
    return value


def _load_untagged(
    project: ProjectConfig, state: LocalState, module: str
) -> tuple[dict[str, Any], bool]:
    key = definition_key(project.root, module)
    local = state.dir("cache") / f"definition-{key}.json"
    shared = user_cache_dir() / f"definition-{key}.json"
    for path in (local, shared):
        try:
            cached = read_json(path)
        except CIError:
            cached = None
        if isinstance(cached, dict) and isinstance(cached.get("Steps"), list):
            if path is shared:
                write_json_atomic(local, cached)
            return cached, True
    from ci_scripts.pipeline_module import build_definition  # imports the sagemaker SDK

    built = build_definition(project, module, image_tag=PLACEHOLDER_TAG)
    write_json_atomic(local, built)
    with contextlib.suppress(OSError):  # a read-only home only costs fresh checkouts a rebuild
        write_json_atomic(shared, built)
    return built, False


def upload_shipped_dataset(
    project: ProjectConfig, state: LocalState, definition: dict[str, Any], overrides: dict[str, Any]
) -> Path | None:
    """Put data/dataset.csv where the default InputDataUrl points, as CI uploads it on aws.

    Only the default location is filled (an explicit ``InputDataUrl`` must already exist), and it
    is refreshed whenever the shipped file changed. Returns the local copy of that S3 object (its
    errors are data/dataset.csv's), None when the run reads no copy of the shipped file.
    """
    if INPUT_DATA_PARAMETER in overrides:
        return None
    spec = next(
        (p for p in definition.get("Parameters") or [] if p.get("Name") == INPUT_DATA_PARAMETER),
        None,
    )
    source = project.root / SHIPPED_DATASET
    default = (spec or {}).get("DefaultValue")
    if not isinstance(default, str) or not default.startswith("s3://") or not source.is_file():
        return None
    target = state.s3_path(default)
    if not default.endswith(".csv"):
        target = target / source.name
    if target.is_file() and target.read_bytes() == source.read_bytes():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target
