"""``image-tag`` and ``image-exists``: let the build workflow skip images that are pushed already.

``image-tag`` prints the content hash of the image's inputs; ``image-exists`` prints ``true`` or
``false`` and exits 0 either way (a non-zero exit means the question could not be answered).
Both also set step outputs (``tag``, ``exists``) when run in a workflow.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ci_scripts.backends.base import Backend
from ci_scripts.github import write_outputs
from ci_scripts.imagetag import image_tag


def run_image_tag(project_dir: Path) -> None:
    tag = image_tag(project_dir)
    typer.echo(tag)
    write_outputs(tag=tag)


def run_image_exists(backend: Backend, tag: str) -> None:
    exists = backend.image_exists(tag)
    typer.echo("true" if exists else "false")
    write_outputs(exists=exists, tag=tag)
