"""The on-disk world of the local backend: everything lives under ``<repo>/.mlops/``.

Separate CLI invocations (and the detached router/server processes) share nothing but this
directory, so every path is derived here and every JSON state file is replaced atomically: a
reader never sees half a file.

Layout::

    .mlops/
      registry.sqlite            model registry (local_registry)
      s3/<bucket>/<key>          s3://bucket/key
      runs/<execution-id>/       one pipeline execution: run.json, <step>/ work dirs and logs
      cache/steps/<key>.json     step cache entries (properties of the run that produced them)
      cache/definition-<h>.json  pipeline definitions keyed by the hash of pipelines/ + pyproject
      models/<group>/<version>/  extracted model.tar.gz, mounted as /opt/ml/model by servers;
                                 code.json names the copy of src/ the version was registered with
      code/<hash>/               src/ as it was when a version was registered (content-addressed)
      endpoints/<env>.json       routing of an environment (written by deploy, read by router)
      endpoints/<env>.router.json  the router's own facts (pid, port), written by the router
      datacapture/<env>/...      captured requests, SageMaker data capture JSON lines
      pids/<name>.json           every detached process started, for ``local down``
      logs/                      logs of detached processes
      journal.jsonl              every change the backend made (registry, endpoints, processes)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ci_scripts.errors import CIError

STATE_DIR = ".mlops"


class LocalState:
    """Paths of one repo's ``.mlops`` directory, and the s3:// <-> file mapping."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.home = self.root / STATE_DIR

    # -- directories ------------------------------------------------------------------------
    def dir(self, *parts: str) -> Path:
        """``.mlops/<parts>``, created on first use."""
        path = self.home.joinpath(*parts)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise CIError(
                f"{exc.filename or path}: not a folder; the local state ({STATE_DIR}/) is "
                "damaged: run `ci_scripts local reset`"
            ) from exc
        return path

    @property
    def registry_db(self) -> Path:
        return self.dir() / "registry.sqlite"

    def run_dir(self, execution_id: str) -> Path:
        return self.dir("runs", execution_id)

    # Files read as often as written: no folder is made for them (a read of a read-only
    # .mlops writes nothing); write_json_atomic makes the folder of what it writes.
    def endpoint_file(self, env: str) -> Path:
        return self.home / "endpoints" / f"{env}.json"

    def router_file(self, env: str) -> Path:
        return self.home / "endpoints" / f"{env}.router.json"

    def capture_dir(self, env: str) -> Path:
        return self.home / "datacapture" / env

    def model_dir(self, group: str, version: int) -> Path:
        return self.home / "models" / group / str(version)

    # -- journal ----------------------------------------------------------------------------
    def journal(self, operation: str, resource: str, **detail: Any) -> None:
        """Append one change to ``journal.jsonl``: an audit trail of what the backend did.

        Operations are named like the AWS API calls they stand for (CreateModelPackage,
        UpdateModelPackage, StartPipelineExecution, UpdateEndpoint) plus StartProcess/StopProcess.
        """
        entry = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "operation": operation,
            "resource": resource,
            **detail,
        }
        line = json.dumps(entry, sort_keys=True, default=str) + "\n"
        with (self.dir() / "journal.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(line)

    def journal_entries(self) -> list[dict[str, Any]]:
        """Everything :meth:`journal` recorded, oldest first."""
        path = self.home / "journal.jsonl"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]

    # -- s3 mapping -------------------------------------------------------------------------
    def s3_path(self, uri: str) -> Path:
        """Map ``s3://bucket/key`` to ``.mlops/s3/bucket/key``; anything else is a CIError."""
        if not isinstance(uri, str) or not uri.startswith("s3://"):
            raise CIError(f"{uri!r}: not an s3:// URI")
        rest = uri[len("s3://") :].strip("/")
        parts = [p for p in rest.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise CIError(f"{uri}: not a valid s3 location")
        return self.home.joinpath("s3", *parts)

    def s3_uri(self, path: Path) -> str:
        """Inverse of :meth:`s3_path`."""
        rel = Path(path).resolve().relative_to(self.home / "s3")
        return "s3://" + rel.as_posix()


# -- small file helpers shared by the local modules ------------------------------------------
def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON next to ``path`` then rename over it, so readers see the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path, default: Any = None) -> Any:
    """The JSON in ``path``, or ``default`` when it does not exist."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default
    except (ValueError, IsADirectoryError, NotADirectoryError) as exc:  # JSON, UTF-8, a folder
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)[:200]
        raise CIError(
            f"{path}: corrupt local state ({reason}); run `ci_scripts local reset`"
        ) from exc


def keep_code(state: LocalState, src: Path, code_hash: str, group: str, version: int) -> None:
    """Copy ``src`` and the platform's code (the image's content, :mod:`.image`) to
    ``code/<hash>/`` (once per content) and name it in the version's ``code.json``, so every
    later deploy of the version runs this code (:func:`served_code`)."""
    from ci_scripts.backends.local.image import copy_code  # image imports this module

    if not src.is_dir():
        return
    target = state.dir("code") / code_hash[:32]
    if not target.is_dir():
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            copy_code(src, scratch / "src")
            os.rename(scratch / "src", target)
        except OSError:
            if not target.is_dir():
                raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    # Relative to .mlops/: a repo moved or copied with its state serves its own copy of the code.
    record = {"src": target.relative_to(state.home).as_posix(), "code_hash": code_hash}
    write_json_atomic(state.model_dir(group, version) / "code.json", record)


def served_code(state: LocalState, group: str, version: int, default: Path) -> Path:
    """The src/ copy ``version`` was registered with; ``default`` (the working tree) for a
    version registered without one (by hand, or before copies were kept)."""
    record = read_json(state.model_dir(group, version) / "code.json") or {}
    kept = state.home / (record.get("src") or "")  # an absolute path (older records) stays one
    return kept if record.get("src") and kept.is_dir() else default
