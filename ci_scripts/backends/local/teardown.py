"""The end of an environment's life locally: ``destroy --env E`` and pruning after deploys.

Locally an environment runs a router and one model server per served version (processes
recorded in ``.mlops/pids`` with their ``env``) and its routes file; that is what ``destroy``
stops and removes, under the same per-environment lock a deploy takes. Captured requests stay,
as the capture bucket does on AWS. The local counterpart of old models and endpoint configs is
the model extracted for each version deployed (``.mlops/models/<group>/<version>``): ``prune``
removes those of versions outside the kept set that no environment serves (a later deploy of
such a version extracts it again from its model.tar.gz).
"""

from __future__ import annotations

import shutil
from typing import Any

from ci_scripts.backends.local import processes as procs
from ci_scripts.backends.local.endpoints import LocalEndpoints
from ci_scripts.backends.local.state import read_json
from ci_scripts.project import ENVIRONMENTS


class LocalTeardown:
    def __init__(self, endpoints: LocalEndpoints) -> None:
        self.endpoints = endpoints
        self.state = endpoints.state
        self.project = endpoints.project

    def _processes(self, env: str) -> list[dict[str, Any]]:
        return [r for r in procs.records(self.state) if r.get("env") == env]

    def plan(self, env: str) -> list[str]:
        """What destroy would stop and remove (reads only)."""
        found: list[str] = []
        routes = read_json(self.state.endpoint_file(env))
        if routes:
            found.append(
                f"endpoint {self.project.endpoint_name(env)} (serving version "
                f"{routes.get('model_version')})"
            )
        for record in self._processes(env):
            if procs.alive(record):
                found.append(
                    f"{record.get('role', 'process')} {record['name']} (pid {record['pid']})"
                )
        return found

    def destroy(self, env: str) -> list[str]:
        """Stop ``env``'s processes and forget its endpoint; what was removed."""
        with self.endpoints._lock(env):
            removed = self.plan(env)
            procs.stop_many(self.state, self._processes(env))
            had_routes = self.state.endpoint_file(env).exists()
            for path in (self.state.endpoint_file(env), self.state.router_file(env)):
                path.unlink(missing_ok=True)
            if had_routes:
                self.state.journal("DeleteEndpoint", self.project.endpoint_name(env))
        return removed

    def prune(self, keep_versions: set[int]) -> list[str]:
        """Remove extracted models of versions neither kept nor served by any environment."""
        group = self.project.model_package_group
        folder = self.state.home / "models" / group
        if not folder.is_dir():
            return []
        serving: set[int] = set()
        for env in ENVIRONMENTS:
            routes = read_json(self.state.endpoint_file(env)) or {}
            serving |= {t.get("version") for t in routes.get("targets", [])}
            serving.add(routes.get("previous_version"))
        removed = []
        for path in sorted(folder.iterdir()):
            if not path.name.isdigit():
                continue
            version = int(path.name)
            if version in keep_versions or version in serving:
                continue
            shutil.rmtree(path, ignore_errors=True)
            self.state.journal("DeleteModel", f"{group}/{version}")
            removed.append(f"model {group} v{version} (extracted copy)")
        return removed
