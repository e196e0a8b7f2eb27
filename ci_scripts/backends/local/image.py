"""The local stand-in of the project's image: the code a step, a server or a transform runs.

The image holds the team's package (src/) and the platform's container code (ci_scripts, whose
``ci_scripts.runtime`` is the ENTRYPOINT), with ``$MODEL_PACKAGE`` naming the team's package.
Locally a subprocess gets the same: ``PYTHONPATH`` at a copy of src/ (the version's own, kept at
registration, or the working tree's) followed by the ci_scripts that runs this backend, and
``MODEL_PACKAGE``. A kept copy holds ci_scripts too (:func:`copy_code`), so a version serves with
the platform code it was trained with, as its image would.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import ci_scripts
from ci_scripts.definition_inputs import hash_tree

RUNTIME = "ci_scripts.runtime"
# The module the local image runs as its ENTRYPOINT: the platform's runtime. The backend's own
# tests point it at a standard-library stand-in that starts in milliseconds (tests/local).
RUNTIME_ENV = "CI_SCRIPTS_LOCAL_RUNTIME"
PLATFORM = Path(ci_scripts.__file__).resolve().parent
_IGNORE = shutil.ignore_patterns("__pycache__", "*.py[co]")


def runtime() -> str:
    """The ENTRYPOINT's module: ``ci_scripts.runtime`` unless ``$CI_SCRIPTS_LOCAL_RUNTIME``."""
    return os.environ.get(RUNTIME_ENV) or RUNTIME


def command(python: str, *args: str) -> list[str]:
    """``<python> -m ci_scripts.runtime <args>``: the image's ENTRYPOINT with its arguments."""
    return [python, "-m", runtime(), *args]


def threads(base: Mapping[str, str]) -> dict[str, str]:
    """``base`` with the image's thread default: its Dockerfile sets ``OMP_NUM_THREADS=1`` for
    every job (one OpenMP and OpenBLAS thread per process, the processes being the parallelism),
    and a value the caller set wins, as a job's Environment does over the image's ENV. It must
    be in place before numpy or scikit-learn load: they read it once."""
    return {**base, "OMP_NUM_THREADS": base.get("OMP_NUM_THREADS") or "1"}


def environment(code: Path, package: str, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` with the image's code on ``PYTHONPATH``, ``MODEL_PACKAGE`` and the image's
    thread default (:func:`threads`) set."""
    env = threads(base)
    path = (str(code), str(PLATFORM.parent), base.get("PYTHONPATH", ""))
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p for p in path if p))
    env["MODEL_PACKAGE"] = package
    return env


def code_hash(src: Path) -> str:
    """What a kept copy is keyed by: the team's src/ and the platform's code together."""
    h = hashlib.sha256(hash_tree(src).encode() if src.exists() else b"no-src")
    h.update(hash_tree(PLATFORM).encode())
    return h.hexdigest()


def copy_code(src: Path, target: Path) -> None:
    """``src``'s packages and the platform's ``ci_scripts`` into ``target``: one image's code."""
    shutil.copytree(src, target, ignore=_IGNORE)
    shutil.copytree(PLATFORM, target / "ci_scripts", ignore=_IGNORE)
