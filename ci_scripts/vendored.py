"""The record of what the template vendored into a model repo's ci_scripts/, and the check of it.

ci_scripts/ is the platform: a repo gets it from the template at render (and from each
``cruft update``), never by editing it in place, or the next template update overwrites the edit
and other repos never get it. So at render the template's pre_gen hook copies the package and
writes :data:`RECORD` next to it (the sha256 of every file, and the release), and ``validate``
names each file that no longer matches.

Standard library only, and no import from the rest of ci_scripts: the hook loads this file by
path from the template, under whatever Python runs cookiecutter.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

RECORD = "VENDORED.sha256"
TEMPLATE = "sagemaker-gitops"
_HEADER_RE = re.compile(rf"# {TEMPLATE} (\S+) vendored ")
_LINE_RE = re.compile(r"([0-9a-f]{64})  (\S.*)")


def digests(package: Path) -> dict[str, str]:
    """``{"ci_scripts/<path>": sha256}`` for every file of ``package`` but bytecode and the record.

    Line endings are read as LF, so a checkout that converts them (git autocrlf) still matches.
    """
    found = {}
    for path in sorted(package.rglob("*")):
        rel = path.relative_to(package)
        if (
            not path.is_file()
            or "__pycache__" in rel.parts
            or path.suffix in (".pyc", ".pyo")
            or rel.as_posix() == RECORD
        ):
            continue
        data = path.read_bytes().replace(b"\r\n", b"\n")
        found[f"{package.name}/{rel.as_posix()}"] = hashlib.sha256(data).hexdigest()
    return found


def write_record(package: Path, version: str) -> Path:
    """Write :data:`RECORD` for ``package`` as vendored by release ``version``."""
    lines = [
        f"# {TEMPLATE} {version} vendored these files (sha256, from the repo root); "
        "`ci_scripts validate` names any that changed: edit the template, then `cruft update`.",
        *(f"{digest}  {name}" for name, digest in digests(package).items()),
    ]
    path = package / RECORD
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def read_record(package: Path) -> tuple[str, dict[str, str]]:
    """(release, ``{"ci_scripts/<path>": sha256}``) from ``package``'s record.

    Raises ValueError naming the record and the line that is not a record line.
    """
    path = package / RECORD
    label = f"{package.name}/{RECORD}"
    version, recorded = None, {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        header = _HEADER_RE.match(line)
        entry = _LINE_RE.fullmatch(line)
        if number == 1 and header:
            version = header.group(1)
        elif entry:
            recorded[entry.group(2)] = entry.group(1)
        elif line.strip():
            raise ValueError(f"{label}:{number}: not a record line (a sha256, two spaces, a path)")
    if version is None:
        raise ValueError(f"{label}:1: not the '# {TEMPLATE} <version> vendored ...' header")
    return version, recorded


def problems(package: Path) -> tuple[str, list[tuple[str, str]]]:
    """(the release that vendored ``package``, ``(file, "changed"|"added"|"removed")`` for every
    file that no longer matches the record, by file name)."""
    version, recorded = read_record(package)
    present = digests(package)
    found = []
    for name in sorted(recorded.keys() | present.keys()):
        if name not in present:
            found.append((name, "removed"))
        elif name not in recorded:
            found.append((name, "added"))
        elif present[name] != recorded[name]:
            found.append((name, "changed"))
    return version, found


def mismatch_message(name: str, change: str, version: str) -> str:
    """The one line ``validate`` prints for a file of :func:`problems`."""
    release = f"{TEMPLATE} {version}"
    if change == "removed":
        return (
            f"{name}: vendored by {release}, missing here; platform changes go to the template "
            "(cruft update), not into one repo"
        )
    if change == "added":
        return (
            f"{name}: not vendored by {release} (added in this repo); platform changes go to the "
            "template (cruft update), not into one repo"
        )
    return (
        f"{name}: differs from what {release} vendored; platform changes go to the template "
        "(cruft update), not into one repo"
    )
