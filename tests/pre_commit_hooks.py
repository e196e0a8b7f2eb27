"""A render's pre-commit hooks and the files pre-commit would pass each of them.

test_workflows runs every hook on a fresh render; test_infra leaves the templates the cfn-lint
hook lints there out of its own cfn-lint run. Both must agree on which files a hook gets, so
pre-commit's filters (files, exclude, types, types_or, exclude_types) are applied here once.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any


def hooks(repo: Path) -> list[dict[str, Any]]:
    """Every hook of ``repo``'s .pre-commit-config.yaml (pre-commit's own parsing, defaults
    filled in), with its repo's ``repo`` key as ``hook_repo``."""
    from pre_commit.clientlib import load_config

    config = load_config(str(repo / ".pre-commit-config.yaml"))
    return [{**hook, "hook_repo": r["repo"]} for r in config["repos"] for hook in r["hooks"]]


def hook(repo: Path, hook_id: str) -> dict[str, Any]:
    """The one hook of ``repo`` named ``hook_id``."""
    (found,) = [h for h in hooks(repo) if h["id"] == hook_id]
    return found


def selected(repo: Path, hook: dict[str, Any], files: list[str]) -> list[str]:
    """The ones of ``files`` (paths relative to ``repo``) pre-commit passes ``hook``."""
    from identify.identify import tags_from_path

    types, types_or = set(hook["types"]), set(hook["types_or"])
    return [
        f
        for f in files
        if re.search(hook["files"], f)
        and not re.search(hook["exclude"], f)
        and (tags := tags_from_path(str(repo / f))) >= types
        and (not types_or or tags & types_or)
        and not tags & set(hook["exclude_types"])
    ]
