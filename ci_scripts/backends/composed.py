"""The Backend methods both backends only hand over to one of their parts.

AwsBackend and LocalBackend are each bound to a ``registry`` (a :class:`base.Registry`) and an
``endpoints`` part that sends requests; these calls go straight through, so they are written once
here. The interface itself stays documented in :mod:`ci_scripts.backends.base`.
"""

from __future__ import annotations

from typing import Any

from ci_scripts.backends.base import ModelVersion, Registry


class ComposedBackend:
    """Mixin: the registry calls and ``invoke`` of a backend made of parts."""

    registry: Registry
    endpoints: Any  # AwsEndpointHost or LocalEndpoints: both have invoke(...)

    # -- Registry ---------------------------------------------------------------------------
    def list_versions(self, group: str) -> list[ModelVersion]:
        return self.registry.list_versions(group)

    def get_version(self, group: str, version: int) -> ModelVersion | None:
        return self.registry.get_version(group, version)

    def set_approval(self, group: str, version: int, status: str, description: str) -> ModelVersion:
        return self.registry.set_approval(group, version, status, description)

    def with_trials(self, version: ModelVersion) -> ModelVersion:
        return self.registry.with_trials(version)

    def with_checks(self, version: ModelVersion) -> ModelVersion:
        return self.registry.with_checks(version)

    # -- EndpointHost -----------------------------------------------------------------------
    def invoke(
        self,
        env: str,
        body: bytes,
        content_type: str = "text/csv",
        inference_id: str | None = None,
    ) -> tuple[int, bytes]:
        return self.endpoints.invoke(env, body, content_type, inference_id)
