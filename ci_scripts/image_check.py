"""Run the image that was just built before it ships: train on the shipped data, then serve it.

build-image.yml builds the image, then ``python -m ci_scripts image-check --image IMAGE`` runs
it as SageMaker would, under the /opt/ml layout, before anything is pushed:

1. ``preprocess`` (a processing job's ContainerEntrypoint) on data/dataset.csv mounted at
   /opt/ml/processing/input/data, writing the splits;
2. ``train`` (the training job's ``<image> train``) on the train and validation channels;
3. ``serve`` on the trained model: ``GET /ping`` answers 200, and ``POST /invocations`` with rows
   of the test split answers 200 with one prediction per row.

A model whose libraries cannot load in the image (LightGBM without the system libgomp, say) fails
here, in the pull request's build, instead of in a SageMaker training job after the merge. The
container runtime is behind :class:`Containers` (``DockerContainers`` on a runner, which has
Docker); any failure is a CIError naming the stage and the tail of the container's output.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ci_scripts.errors import CIError

OPT_ML = "/opt/ml"
DATASET = Path("data") / "dataset.csv"
SAMPLE_ROWS = 5
READY_SECONDS = 120.0  # a server that loads its model slower than this would fail SageMaker too
PING_PAUSE = 0.1  # between /ping attempts: a model loads in a second or two, found soon after
OUTPUT_TAIL = 1500


class Containers(Protocol):
    """What the check needs from a container runtime."""

    def run(self, image: str, opt_ml: Path, args: list[str]) -> None:
        """Run ``image`` with ``args`` and ``opt_ml`` mounted at /opt/ml, to its end; CIError
        naming ``args[0]`` with the tail of its output when it exits non-zero."""

    @contextmanager
    def serving(self, image: str, opt_ml: Path) -> Iterator[str]:
        """``<image> serve`` with ``opt_ml`` at /opt/ml; yields its base URL; stops it after."""


@dataclass
class DockerContainers:
    """The Docker CLI: ``docker run`` as SageMaker runs the image (root, /opt/ml mounted)."""

    docker: str = "docker"

    def run(self, image: str, opt_ml: Path, args: list[str]) -> None:
        command = [self.docker, "run", "--rm", "-v", f"{opt_ml}:{OPT_ML}", image, *args]
        _checked(command, f"{image} {args[0]}")

    @contextmanager
    def serving(self, image: str, opt_ml: Path) -> Iterator[str]:
        started = _checked(
            [self.docker, "run", "-d", "-p", "127.0.0.1::8080", "-v", f"{opt_ml}:{OPT_ML}", image,
             "serve"],
            f"{image} serve",
        )  # fmt: skip
        container = started.stdout.strip()
        try:
            port = _checked([self.docker, "port", container, "8080/tcp"], "docker port")
            yield f"http://{port.stdout.strip().splitlines()[0]}"
        finally:
            subprocess.run([self.docker, "rm", "-f", container], capture_output=True, check=False)


def _checked(command: list[str], what: str) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise CIError(f"{command[0]}: not found; image-check runs the image with Docker") from None
    if proc.returncode != 0:
        tail = " ".join((proc.stderr or proc.stdout).split())[-OUTPUT_TAIL:]
        raise CIError(f"image-check: {what} exited {proc.returncode}: {tail or '(no output)'}")
    return proc


def stage_dataset(root: Path, opt_ml: Path) -> None:
    """data/dataset.csv where a processing job finds its input."""
    dataset = root / DATASET
    if not dataset.is_file():
        raise CIError(f"{DATASET.as_posix()}: not found; image-check trains on it")
    target = opt_ml / "processing" / "input" / "data"
    target.mkdir(parents=True)
    shutil.copy(dataset, target / dataset.name)


def stage_channels(opt_ml: Path) -> None:
    """Preprocess's train and validation splits as the training job's input channels."""
    for channel in ("train", "validation"):
        split = opt_ml / "processing" / channel / f"{channel}.csv"
        if not split.is_file():
            raise CIError(f"image-check: preprocess wrote no {channel} split ({split})")
        target = opt_ml / "input" / "data" / channel
        target.mkdir(parents=True)
        shutil.copy(split, target / split.name)


def sample_request(opt_ml: Path) -> tuple[bytes, int]:
    """A CSV request of the first test-split rows without the target, and its row count."""
    with (opt_ml / "processing" / "test" / "test.csv").open(newline="", encoding="utf-8") as f:
        rows = [row[1:] for row in list(csv.reader(f))[1 : 1 + SAMPLE_ROWS]]
    body = io.StringIO()
    csv.writer(body, lineterminator="\n").writerows(rows)
    return body.getvalue().encode("utf-8"), len(rows)


def check_serving(url: str, body: bytes, rows: int, ready_seconds: float = READY_SECONDS) -> int:
    """Wait for ``/ping``, then one invocation; the number of predictions it answered."""
    deadline = time.monotonic() + ready_seconds
    while True:
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=5) as response:
                if response.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise CIError(f"image-check: serve did not answer /ping within {ready_seconds:g} s")
        time.sleep(PING_PAUSE)
    request = urllib.request.Request(
        f"{url}/invocations", data=body, headers={"Content-Type": "text/csv"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = " ".join(exc.read().decode("utf-8", "replace").split())[:300]
        raise CIError(f"image-check: /invocations answered {exc.code}: {detail}") from None
    predictions = answer.get("predictions") if isinstance(answer, dict) else None
    if not isinstance(predictions, list) or len(predictions) != rows:
        raise CIError(f"image-check: /invocations of {rows} rows answered {answer!r:.300}")
    return len(predictions)


def run(root: Path, image: str, containers: Containers) -> str:
    """preprocess -> train -> serve + one invocation, in a scratch /opt/ml; a one-line verdict."""
    with tempfile.TemporaryDirectory(prefix="image-check-") as scratch:
        opt_ml = Path(scratch)
        stage_dataset(root, opt_ml)
        # ``<image> preprocess``: the ENTRYPOINT is the processing jobs' ContainerEntrypoint.
        containers.run(image, opt_ml, ["preprocess"])
        stage_channels(opt_ml)
        containers.run(image, opt_ml, ["train"])
        if not any((opt_ml / "model").iterdir()):
            raise CIError("image-check: train wrote nothing to /opt/ml/model")
        body, rows = sample_request(opt_ml)
        with containers.serving(image, opt_ml) as url:
            answered = check_serving(url, body, rows)
    return f"image-check {image}: trained on {DATASET.as_posix()}, served {answered} predictions"
