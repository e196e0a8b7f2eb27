"""The image tag: a hash of exactly what goes into the image.

Tagging by content (Dockerfile, src/, ci_scripts/, pyproject.toml, uv.lock) instead of by
commit means a push that only touches the manifests or the pipeline reuses the image already in
ECR, and the training workflow can name the image without asking the build workflow.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ci_scripts.errors import CIError

IMAGE_INPUTS = ("Dockerfile", "pyproject.toml", "uv.lock", "src", "ci_scripts")
_SKIP_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
_SKIP_SUFFIXES = (".pyc", ".pyo", ".egg-info")
_SKIP_NAMES = frozenset({".DS_Store"})
TAG_LENGTH = 16


def image_input_files(root: Path) -> list[str]:
    """Every input file, as sorted POSIX paths relative to ``root`` (caches and builds left out)."""
    root = Path(root)
    files: list[str] = []
    for name in IMAGE_INPUTS:
        path = root / name
        if path.is_file():
            files.append(name)
        elif path.is_dir():
            for item in path.rglob("*"):
                rel = item.relative_to(root)
                if any(part in _SKIP_DIRS or part.endswith(_SKIP_SUFFIXES) for part in rel.parts):
                    continue
                if item.is_file() and item.name not in _SKIP_NAMES:
                    files.append(rel.as_posix())
    return sorted(files)


def image_tag(root: Path | str) -> str:
    """First 16 hex digits of sha256 over (path, sha256(content)) of every input file."""
    root = Path(root)
    if not (root / "Dockerfile").is_file():
        raise CIError(
            f"{root / 'Dockerfile'}: not found; the image tag hashes {', '.join(IMAGE_INPUTS)}"
        )
    digest = hashlib.sha256()
    for rel in image_input_files(root):
        digest.update(rel.encode("utf-8") + b"\0")
        digest.update(hashlib.sha256((root / rel).read_bytes()).digest())
    return digest.hexdigest()[:TAG_LENGTH]
