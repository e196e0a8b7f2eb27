"""Stand-in serve code for local batch tests: ``InferenceApp`` and ``load`` as the template's
serve.py and model_artifacts.py name them, standard library only.

Copied into a test repo as both ``src/<package>/serve.py`` and ``model_artifacts.py``, so the
local transform (ci_scripts/backends/local/transform.py) drives it exactly as it drives the real
app: a WSGI call per mini-batch with ``Accept: text/csv``. Each row's answer depends on its
features (label 1 when the first feature is above 10, probability from it), so a test can tell
rows apart; a row whose first feature is 999 answers 500 (a failure in the middle of a run), and
a model whose ``serve`` is ``errors`` answers 500 to everything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class Model:
    def __init__(self, directory: Path) -> None:
        self.meta = json.loads((directory / "model.json").read_text())


def load(location: Path) -> Model:
    return Model(location)


class InferenceApp:
    def __init__(self, model: Model) -> None:
        self.model = model

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)).decode()
        rows = [line.split(",") for line in body.splitlines() if line.strip()]
        if self.model.meta.get("serve") == "errors" or any(float(row[0]) == 999 for row in rows):
            start_response("500 Internal Server Error", [("Content-Type", "application/json")])
            return [b'{"error": "prediction failed"}']
        lines = []
        for row in rows:
            first = float(row[0])
            lines.append(f"{int(first > 10)},{min(first / 100, 1.0)!r}")
        start_response("200 OK", [("Content-Type", "text/csv")])
        return ["".join(f"{line}\n" for line in lines).encode()]
