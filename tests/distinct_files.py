"""Identical rendered files are scanned once: a linter's verdict depends only on a file's bytes.

cfn-lint and checkov cost seconds of CPU per template, and many renders share a template
(infra/api.yml is the same in every API render; a named variant may equal a combination).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path


def distinct_by_content(paths: Iterable[Path]) -> list[Path]:
    """The first of each set of byte-identical files, in the order given."""
    first: dict[str, Path] = {}
    for path in paths:
        first.setdefault(hashlib.sha256(path.read_bytes()).hexdigest(), path)
    return list(first.values())
