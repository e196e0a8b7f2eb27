"""Step outputs for GitHub Actions (``$GITHUB_OUTPUT``); a no-op outside a workflow."""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def write_outputs(**values: object) -> None:
    """Append ``name=value`` lines (a heredoc block for multi-line values) to $GITHUB_OUTPUT."""
    target = os.environ.get("GITHUB_OUTPUT")
    if not target:
        return
    lines = []
    for name, value in values.items():
        text = (
            "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        )
        if "\n" in text:
            delimiter = f"ghadelim_{uuid.uuid4().hex}"
            lines.append(f"{name}<<{delimiter}\n{text}\n{delimiter}")
        else:
            lines.append(f"{name}={text}")
    with Path(target).open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def append_step_summary(markdown: str) -> None:
    """Add ``markdown`` to the job's summary page when running in a workflow."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if target:
        with Path(target).open("a", encoding="utf-8") as handle:
            handle.write(markdown.rstrip() + "\n")
