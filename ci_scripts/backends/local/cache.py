"""Step caching for the local pipeline runner.

A Processing or Training step is reused when what it would compute is what an earlier run
computed: the key hashes the step's resolved arguments *without* its output locations (they hold
the execution id, so they differ on every run) with every input location replaced by the content
hash of the data there, plus the hash of the project's ``src/`` (the code inside the "image").

On a hit the step's properties are those of the run that produced the outputs, pointing at that
run's output locations, as SageMaker's own step caching does; an entry whose outputs were deleted
is a miss.
"""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ci_scripts.backends.local.state import LocalState, read_json, write_json_atomic
from ci_scripts.definition_inputs import hash_tree
from ci_scripts.errors import CIError

# Where each step type keeps its input and output locations in its (resolved) arguments.
_INPUTS = {
    "Processing": ("ProcessingInputs", ("S3Input", "S3Uri")),
    "Training": ("InputDataConfig", ("DataSource", "S3DataSource", "S3Uri")),
}


def caching_enabled(step: dict[str, Any]) -> bool:
    """Cache unless the definition turns it off explicitly (``CacheConfig.Enabled: false``).

    SageMaker caches only steps that opt in; locally every re-run would otherwise pay for steps
    that cannot have changed, so the local runner opts in by default and honours an opt-out.
    """
    config = step.get("CacheConfig")
    return not (isinstance(config, dict) and config.get("Enabled") is False)


class StepCache:
    """Cache entries under ``.mlops/cache/steps/<key>.json``."""

    def __init__(self, state: LocalState) -> None:
        self.state = state

    def key(self, step: dict[str, Any], args: dict[str, Any], code_hash: str) -> str:
        """The cache key of ``step`` run with resolved ``args``."""
        kind = step.get("Type", "")
        blob = json.dumps(
            {
                "type": kind,
                "arguments": self._material(kind, args),
                "property_files": step.get("PropertyFiles"),
                "code": code_hash,
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def _material(self, kind: str, args: dict[str, Any]) -> dict[str, Any]:
        """``args`` without what changes every run (output locations under the execution id),
        each input by the hash of its content: what decides whether a result can be reused."""
        material = copy.deepcopy(args)
        if kind == "Tuning":  # the trials' training job is keyed as a Training step's
            job = material.get("TrainingJobDefinition") or {}
            material["TrainingJobDefinition"] = self._material("Training", job)
            return material
        if kind == "Processing":
            for out in (material.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
                (out.get("S3Output") or {}).pop("S3Uri", None)
        if kind == "Training":
            (material.get("OutputDataConfig") or {}).pop("S3OutputPath", None)
            material.pop("CheckpointConfig", None)
        list_key, uri_path = _INPUTS.get(kind, ("", ()))
        for item in material.get(list_key) or []:
            holder = item
            for part in uri_path[:-1]:
                holder = holder.get(part) or {}
            uri = holder.get(uri_path[-1])
            if isinstance(uri, str) and uri.startswith("s3://"):
                holder[uri_path[-1]] = "sha256:" + self.content_hash(uri)
        return material

    def content_hash(self, uri: str) -> str:
        """Hash of the data at ``uri``; a missing input is a CIError naming it."""
        path = self.state.s3_path(uri)
        if not path.exists():
            raise CIError(f"{uri}: input not found (local copy {path})")
        return hash_tree(path)

    def lookup(self, key: str) -> dict[str, Any] | None:
        """Properties cached under ``key`` when every output they point at still exists."""
        entry = read_json(self._path(key))
        if not entry:
            return None
        if not all(self.state.s3_path(uri).exists() for uri in entry.get("outputs", [])):
            return None
        return entry["properties"]

    def store(
        self, key: str, step: str, execution_id: str, properties: dict, outputs: list[str]
    ) -> None:
        """Remember that ``step`` of ``execution_id`` produced ``outputs``."""
        write_json_atomic(
            self._path(key),
            {
                "step": step,
                "execution_id": execution_id,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "properties": properties,
                "outputs": outputs,
            },
        )

    def _path(self, key: str) -> Path:
        return self.state.dir("cache", "steps") / f"{key}.json"
