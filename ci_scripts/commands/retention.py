"""What a deploy leaves behind, and what must stay: the versions a rollback can go back to.

Every deploy creates a model and an endpoint config; nothing ever deleted them. After a
successful deploy the ones of versions no rollback needs are pruned: kept are the version that
serves now, the one that served before it (``smoke-test --rollback-on-failure``), and the
``KEEP_VERSIONS`` newest distinct versions named in the manifest's git history (what ``rollback``
and ``git revert`` go back to). A pruning failure is a warning, never a failed deploy: the
endpoint already serves what git says.
"""

from __future__ import annotations

import logging

from ci_scripts import gitinfo
from ci_scripts import manifest as manifests
from ci_scripts.backends.base import Backend, EndpointState
from ci_scripts.errors import CIError
from ci_scripts.project import ProjectConfig

KEEP_VERSIONS = 5
log = logging.getLogger(__name__)


def kept_versions(
    project: ProjectConfig,
    manifest: manifests.Manifest,
    state: EndpointState | None,
    limit: int | None = None,
) -> set[int]:
    """The versions whose models and configs must stay for a rollback of ``manifest.env``."""
    limit = limit or KEEP_VERSIONS
    keep: set[int] = set()
    for value in (manifest.model_version, *(_served(state))):
        if isinstance(value, int):
            keep.add(value)
    named: list[int] = []
    for _sha, content in gitinfo.iter_file_history(project.root, manifest.label, limit=50):
        version = (manifests.parse_text(content) or {}).get("model_version")
        if isinstance(version, int) and version not in named:
            named.append(version)
        if len(named) >= limit:
            break
    return keep | set(named)


def _served(state: EndpointState | None) -> tuple[object, object]:
    if state is None:
        return (None, None)
    return state.model_version, state.config.get("previous_version")


def prune_after_deploy(
    project: ProjectConfig,
    backend: Backend,
    manifest: manifests.Manifest,
    state: EndpointState,
) -> list[str]:
    """Delete what earlier deploys left for versions outside :func:`kept_versions`."""
    keep = kept_versions(project, manifest, state)
    try:
        return backend.prune(manifest.env, keep)
    except CIError as exc:
        log.warning("%s: old models and endpoint configs were not pruned: %s", manifest.env, exc)
        return []
