"""Backends behind one narrow interface: ``aws`` (boto3 + sagemaker SDK) and ``local`` (one
machine).

``get_backend`` imports the chosen backend lazily so ``--help`` never pays for boto3 or sagemaker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ci_scripts.errors import CIError

if TYPE_CHECKING:
    from ci_scripts.backends.base import Backend
    from ci_scripts.project import ProjectConfig

BACKENDS = ("aws", "local")


def get_backend(name: str, project: ProjectConfig) -> Backend:
    """Return the backend called ``name`` bound to ``project``."""
    if name == "aws":
        from ci_scripts.backends.aws.backend import AwsBackend

        return AwsBackend(project)
    if name == "local":
        from ci_scripts.backends.local.backend import LocalBackend

        return LocalBackend(project)
    raise CIError(f"--backend {name!r}: unknown backend; choose one of {', '.join(BACKENDS)}")
