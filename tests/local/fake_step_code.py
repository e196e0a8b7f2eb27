"""Stand-in step code for local-backend tests: the container contract, standard library only.

Copied into a test repo as ``src/<package>/__main__.py`` and named the local image's ENTRYPOINT
module (``$CI_SCRIPTS_LOCAL_RUNTIME``), it honours the same contract as the platform's step code
(``python -m ci_scripts.runtime preprocess|train|evaluate|serve``, /opt/ml paths under
``$OPT_ML_ROOT``) but starts in milliseconds, so the tests exercise the backend, not scikit-learn.
The batch steps (batch_check, batch_capture) are the platform's own, run as they are.
Knobs for failure tests: hyperparameter ``fail=true`` makes train fail; a model whose ``serve``
field is ``crash`` exits at start, ``unhealthy`` answers /ping with 500, ``errors`` passes /ping
but answers every /invocations with 500, ``slow`` answers after 50 ms, ``empty`` answers 200
with no predictions, ``disagree`` answers label 0 (every other model answers label 1); a
dataset row holding ``not-a-number`` fails preprocess naming the file and line.
"""

from __future__ import annotations

import json
import os
import sys
import tarfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(os.environ.get("OPT_ML_ROOT") or "/opt/ml")


def preprocess() -> None:
    files = sorted((ROOT / "processing" / "input" / "data").glob("*.csv"))
    if not files:
        sys.exit("preprocess: no csv in processing/input/data")
    header, *rows = files[0].read_text().splitlines()
    for number, row in enumerate(rows, start=2):
        if "not-a-number" in row:  # the platform's preprocess: failure file + one stderr line
            message = f"{files[0]}: line {number}: 'not-a-number' is not a number"
            (ROOT / "output").mkdir(parents=True, exist_ok=True)
            (ROOT / "output" / "failure").write_text(message)
            sys.exit(f"error: {message}")
    for split in ("train", "validation", "test"):
        folder = ROOT / "processing" / split
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{split}.csv").write_text("\n".join([header, *rows]) + "\n")
    (ROOT / "processing" / "baseline").mkdir(parents=True, exist_ok=True)
    (ROOT / "processing" / "baseline" / "baseline.csv").write_text(header + "\n")
    print(f"preprocess: {len(rows)} rows")


def train() -> None:
    hyperparameters = json.loads((ROOT / "input" / "config" / "hyperparameters.json").read_text())
    if hyperparameters.get("fail") == "true":
        print("starting to train", file=sys.stderr)
        print("train: refusing to train because hyperparameter fail=true", file=sys.stderr)
        sys.exit(1)
    rows = (ROOT / "input" / "data" / "train" / "train.csv").read_text().splitlines()
    model = {"hyperparameters": hyperparameters, "rows": len(rows) - 1}
    model["serve"] = hyperparameters.get("serve", "ok")
    (ROOT / "model").mkdir(parents=True, exist_ok=True)
    (ROOT / "model" / "model.json").write_text(json.dumps(model))
    print(f"validation:auc={hyperparameters.get('auc', '0.95')}")


def evaluate() -> None:
    with tarfile.open(ROOT / "processing" / "model" / "model.tar.gz") as tar:
        member = tar.extractfile("model.json")
        assert member is not None
        model = json.load(member)
    auc = float(model["hyperparameters"].get("auc", "0.95"))
    report = {
        "binary_classification_metrics": {
            "auc": {"value": auc, "standard_deviation": "NaN"},
            "accuracy": {"value": 0.9, "standard_deviation": "NaN"},
        }
    }
    (ROOT / "processing" / "evaluation").mkdir(parents=True, exist_ok=True)
    (ROOT / "processing" / "evaluation" / "evaluation.json").write_text(json.dumps(report))


def serve(argv: list[str]) -> None:
    port = int(argv[argv.index("--port") + 1]) if "--port" in argv else 8080
    model = json.loads((ROOT / "model" / "model.json").read_text())
    if model.get("serve") == "crash":
        sys.exit("serve: model.json says crash")
    healthy = model.get("serve") != "unhealthy"

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/ping":
                self._answer(200 if healthy else 500, {"healthy": healthy})
            else:
                self._answer(404, {"error": self.path})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            if model.get("serve") == "errors":
                self._answer(500, {"error": "prediction failed"})
                return
            if model.get("serve") == "slow":
                time.sleep(0.05)
            if model.get("serve") == "lingers":  # still answering when a deploy replaces it
                time.sleep(1.0)
            if model.get("serve") == "empty":  # 200, but no predictions
                self._answer(200, {"predictions": []})
                return
            rows = [line for line in body.splitlines() if line.strip()]
            label = 0 if model.get("serve") == "disagree" else 1
            predictions = [{"label": label, "probability": 0.75} for _ in rows]
            self._answer(200, {"predictions": predictions, "model": model.get("name", "")})

        def _answer(self, status: int, payload: object) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    command, rest = sys.argv[1], sys.argv[2:]
    if command == "serve":
        serve(rest)
    elif command in ("batch_check", "batch_capture"):
        from ci_scripts.runtime.__main__ import main

        sys.exit(main(sys.argv[1:]))
    else:
        {"preprocess": preprocess, "train": train, "evaluate": evaluate}[command]()
