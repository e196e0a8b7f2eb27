"""What a pipeline definition is built from, as hashes: one reading for both backends.

Building a definition imports the sagemaker SDK and runs the pipeline code (seconds), yet the
definition is a pure function of a few inputs. Hashing those inputs lets a command skip the
build when nothing changed: the local backend keys its definition cache on
:func:`definition_key`; the aws backend stores :func:`fingerprint` with each pipeline it upserts
(ci_scripts.backends.aws.upserts) and rebuilds only when the stored one differs.

This module imports the standard library and ci_scripts' own light modules only: it runs on the
path that must not import the SDK.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ci_scripts.project import ProjectConfig

PLATFORM = Path(__file__).resolve().parent  # the running ci_scripts
SDK_DISTRIBUTIONS = ("sagemaker", "sagemaker-core", "sagemaker-mlops")


def iter_files(path: Path) -> Iterable[Path]:
    """Every regular file under ``path`` (or ``path`` itself), in a stable order."""
    if path.is_file():
        yield path
        return
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if not name.endswith((".pyc", ".pyo")):
                yield Path(dirpath) / name


def hash_tree(path: Path) -> str:
    """Content hash of a file or directory tree (relative names + bytes)."""
    h = hashlib.sha256()
    base = path if path.is_dir() else path.parent
    for file in iter_files(path):
        h.update(file.relative_to(base).as_posix().encode())
        h.update(b"\0")
        h.update(file.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def code_key(root: Path, module: str = "pipelines.pipeline") -> str:
    """Hash of what ``module``'s definition is built from, but the SDK: the repo's
    ``pipelines/``, ``pyproject.toml`` and model declarations, and the ci_scripts code that
    builds it (``ci_scripts/pipelines/``, pipeline_module.py). ``make demo`` checks its shipped
    definition against this."""
    h = hashlib.sha256(module.encode())
    # model.py declares what the definition is built from (metrics, gate, hyperparameters)
    for part in (root / "pipelines", root / "pyproject.toml", *sorted(root.glob("src/*/model.py"))):
        h.update(hash_tree(part).encode() if part.exists() else b"-")
    h.update(hash_tree(PLATFORM / "pipelines").encode())
    builder = PLATFORM / "pipeline_module.py"
    h.update(builder.read_bytes() if builder.exists() else b"")
    return h.hexdigest()[:32]


def definition_key(root: Path, module: str = "pipelines.pipeline") -> str:
    """Hash of everything the definition is computed from: :func:`code_key`, the SDK, Python."""
    # importlib.metadata (~20 ms) only here: hash_tree serves every local server and step start.
    from importlib import metadata

    h = hashlib.sha256(code_key(root, module).encode())
    for dist in SDK_DISTRIBUTIONS:
        try:
            h.update(f"{dist}={metadata.version(dist)};".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{dist}=none;".encode())
    h.update(sys.version.encode())
    return h.hexdigest()[:32]


def build_overrides(project: ProjectConfig, **overrides: Any) -> dict[str, Any]:
    """``overrides`` with the image tag the build would compute filled in (the content hash of
    the image's inputs, when the repo has a Dockerfile), so the fingerprint and the build see
    the same settings."""
    if "image_tag" not in overrides and (project.root / "Dockerfile").is_file():
        from ci_scripts.imagetag import image_tag

        overrides["image_tag"] = image_tag(project.root)
    return overrides


def fingerprint(project: ProjectConfig, module: str, overrides: dict[str, Any]) -> str:
    """Hash of every input of ``module``'s definition as :func:`build_overrides` gives them:
    :func:`definition_key` (pipeline code, pyproject.toml, model.py, SDK, Python), the whole
    running ci_scripts (the settings, monitoring and problem-type rules the builders read) and
    the overrides (image tag, role, instance type). Equal fingerprints, equal definitions."""
    h = hashlib.sha256(definition_key(project.root, module).encode())
    h.update(hash_tree(PLATFORM).encode())
    h.update(json.dumps(overrides, sort_keys=True, default=str).encode())
    return h.hexdigest()[:32]
