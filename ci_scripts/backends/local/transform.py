"""The local stand-in of a SageMaker batch transform: the version's own serve code, in-process.

Run as a script (``python transform.py ...``) with ``PYTHONPATH`` at the version's code (src/ and
the platform's, kept at registration), so the code that scores is the code the version was
registered with, not the working tree's. It
does what the transform job does with ``SplitType Line``, ``BatchStrategy MultiRecord``,
``MaxPayloadInMB``, ``Accept text/csv`` and DataProcessing ``InputFilter $[1:]``, ``JoinSource
Input``, ``OutputFilter $[0,N+1:]`` (ci_scripts.batch): each input file is sent to the serve
app's ``/invocations`` in mini-batches of whole lines without the id column, and each answer
line is written after its row's id to ``<output>/<key>.out``. Standard library only, plus the
version's own ``ci_scripts.runtime`` (the serve app): not the ci_scripts that runs the CLI.

Exit status 1 with one ``error: <file>:<line>: ...`` line when the app answers anything but 200.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import io
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

MB = 1024 * 1024


def mini_batches(rows: list[list[str]], max_bytes: int) -> Iterator[tuple[int, list[list[str]]]]:
    """``(first line number, rows)`` chunks whose feature text stays within ``max_bytes``."""
    chunk: list[list[str]] = []
    size, start = 0, 1
    for number, row in enumerate(rows, start=1):
        line = len(",".join(row[1:])) + 1
        if chunk and size + line > max_bytes:
            yield start, chunk
            chunk, size, start = [], 0, number
        chunk.append(row)
        size += line
    if chunk:
        yield start, chunk


def invoke(app: Any, body: bytes) -> tuple[str, bytes]:
    """One POST /invocations through the WSGI app, as the transform's HTTP request would."""
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/invocations",
        "CONTENT_TYPE": "text/csv",
        "HTTP_ACCEPT": "text/csv",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    answer: dict[str, str] = {}

    def start_response(status: str, headers: Sequence[tuple[str, str]], *_: Any) -> None:
        answer["status"] = status

    payload = b"".join(app(environ, start_response))
    return answer.get("status", ""), payload


def transform_file(app: Any, source: Path, target: Path, label: str, max_bytes: int) -> int:
    """Score ``source`` into ``target`` (``<id>,<prediction columns>`` per line); rows written."""
    with source.open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.reader(handle) if row]
    lines: list[str] = []
    for start, chunk in mini_batches(rows, max_bytes):
        body = "".join(",".join(row[1:]) + "\n" for row in chunk).encode("utf-8")
        status, payload = invoke(app, body)
        if not status.startswith("200"):
            text = " ".join(payload.decode("utf-8", "replace").split())[:300]
            raise RuntimeError(f"{label}:{start}: /invocations answered {status}: {text}")
        answers = payload.decode("utf-8").splitlines()
        if len(answers) != len(chunk):
            raise RuntimeError(
                f"{label}:{start}: /invocations answered {len(answers)} line(s) for "
                f"{len(chunk)} row(s)"
            )
        lines += [f"{row[0]},{answer}" for row, answer in zip(chunk, answers, strict=True)]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return len(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", default="ci_scripts.runtime", help="the serve app's package")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--input", type=Path, required=True, help="the downloaded input prefix")
    parser.add_argument("--output", type=Path, required=True, help="where <key>.out files go")
    parser.add_argument("--label", default="", help="the input prefix, to name files in errors")
    parser.add_argument("--max-payload-mb", type=int, default=6)
    args = parser.parse_args(argv)
    serve = importlib.import_module(f"{args.runtime}.serve")
    artifacts = importlib.import_module(f"{args.runtime}.model_artifacts")
    app = serve.InferenceApp(artifacts.load(args.model_dir))
    files = sorted(
        p
        for p in args.input.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(args.input).parts)
    )  # hidden files are skipped, as batch_check skips them
    rows = 0
    for source in files:
        key = source.relative_to(args.input).as_posix()
        target = args.output / f"{key}.out"
        rows += transform_file(app, source, target, f"{args.label}{key}", args.max_payload_mb * MB)
    print(f"{len(files)} file(s), {rows} row(s) scored")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # one line for the caller's failure reason; details are the line
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        sys.exit(1)
