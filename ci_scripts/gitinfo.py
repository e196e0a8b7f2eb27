"""What git (or GitHub Actions' environment) says about the change being deployed.

The merge of a manifest pull request is the approval, so the deploy step needs the commit and
the PR number to write into the approval; rollback needs the manifest's history.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

_PR_IN_REF = re.compile(r"^refs/pull/(\d+)/")
# GitHub's merge commits ("Merge pull request #12 from ...") and squash merges ("Title (#12)").
_PR_IN_MESSAGE = (re.compile(r"^Merge pull request #(\d+)\b"), re.compile(r"\(#(\d+)\)\s*$"))


def git(root: Path, *args: str) -> str | None:
    """Run git in ``root``; its stdout, or None when git is missing or the command fails."""
    try:
        proc = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=False, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def current_commit(root: Path) -> str:
    """``$GITHUB_SHA`` in a workflow, else the checkout's HEAD, else ``unknown``."""
    sha = os.environ.get("GITHUB_SHA") or (git(root, "rev-parse", "HEAD") or "").strip()
    return sha or "unknown"


def pull_request_number(root: Path, commit: str) -> int | None:
    """The PR behind ``commit``: from ``$GITHUB_REF`` (PR events) or its merge message."""
    ref_match = _PR_IN_REF.match(os.environ.get("GITHUB_REF", ""))
    if ref_match:
        return int(ref_match.group(1))
    subject = (git(root, "log", "-1", "--format=%s", commit) or "").strip()
    for pattern in _PR_IN_MESSAGE:
        found = pattern.search(subject)
        if found:
            return int(found.group(1))
    return None


def has_uncommitted_change(root: Path, relpath: str) -> bool:
    """True when ``relpath`` differs from HEAD (modified, staged, untracked); False without git."""
    return bool((git(root, "status", "--porcelain", "--", relpath) or "").strip())


def iter_file_history(root: Path, relpath: str, limit: int = 200) -> Iterator[tuple[str, str]]:
    """``(commit, content)`` of each committed version of ``relpath``, newest first.

    One ``git log`` for the commits that touched the file, then one ``git show`` per version the
    caller actually looks at (rollback usually stops after two).
    """
    log = git(root, "log", f"-{limit}", "--format=%H", "--", relpath)
    for sha in (log or "").split():
        content = git(root, "show", f"{sha}:./{relpath}")  # ./: relative to root
        if content is not None:  # None: this commit deleted the file
            yield sha, content
