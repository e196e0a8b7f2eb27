"""``image-check``: build-image.yml runs the built image (preprocess, train, serve) before the push.

There is no Docker engine here (GitHub's runners have one), so the check's logic runs against a
stand-in container runtime that runs the same commands as processes, with /opt/ml mapped to the
check's scratch directory, as the local backend does; the Docker runtime's command lines and its
failure line are checked with a recording ``docker`` on PATH; and the workflow is read to show
the check sits between the build and the push.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from option_matrix import DEFAULT_COMBINATION
from parsed_files import load_yaml

from ci_scripts import image_check
from ci_scripts.backends.local import image, processes
from ci_scripts.backends.local import warm as warm_module
from ci_scripts.backends.local.warm import WarmStarter
from ci_scripts.errors import CIError


class ProcessContainers:
    """The image's commands as processes of this Python: ``python -m ci_scripts.runtime ...``
    with the render's code on the path and ``$OPT_ML_ROOT`` at the mounted directory.

    The commands that run to their end are forked from ``warm`` (the local backend's warm
    interpreter, scikit-learn and pandas imported once for the module's tests) as the local
    backend starts its steps: each is still its own process with its own argv, environment and
    exit status, without paying a cold import of the libraries each time."""

    def __init__(self, repo: Path, package: str, warm: WarmStarter) -> None:
        self.env = {
            **os.environ,
            "MODEL_PACKAGE": package,
            "PYTHONPATH": os.pathsep.join([str(repo / "src"), str(repo)]),
        }
        self.warm = warm
        self.calls: list[list[str]] = []

    def run(self, image: str, opt_ml: Path, args: list[str]) -> None:
        self.calls.append(args)
        command = [sys.executable, "-m", "ci_scripts.runtime", *args]
        env = {**self.env, "OPT_ML_ROOT": str(opt_ml)}
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            returncode = self.warm.run(
                command, cwd=Path.cwd(), env=env, stdout=out, stderr=err, timeout=300
            )
            assert returncode is not None, "the warm process did not take the command"
            err.seek(0)
            stderr = err.read().decode(errors="replace")
        if returncode != 0:
            tail = " ".join(stderr.split())[-300:]
            raise CIError(f"image-check: {image} {args[0]} exited {returncode}: {tail}")

    @contextmanager
    def serving(self, image: str, opt_ml: Path) -> Iterator[str]:
        self.calls.append(["serve"])
        port = processes.free_port()
        env = {**self.env, "OPT_ML_ROOT": str(opt_ml), "MODEL_SERVER": "wsgiref"}
        command = [sys.executable, "-m", "ci_scripts.runtime", "serve", "--host", "127.0.0.1"]
        server = subprocess.Popen(
            [*command, "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(timeout=30)


@pytest.fixture(scope="module")
def warm() -> Iterator[WarmStarter]:
    """One warm interpreter for the module's image commands; stopped (and reaped) after."""
    starter = WarmStarter(warm_module.preload_for(image.RUNTIME))
    starter.start()
    try:
        yield starter
    finally:
        starter.stop()


@pytest.fixture
def repo(bake_once, tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(bake_once(**DEFAULT_COMBINATION), root, symlinks=True)
    return root


@pytest.mark.slow  # trains and serves the model
def test_the_image_is_trained_and_served_before_it_ships(repo: Path, warm: WarmStarter) -> None:
    runtime = ProcessContainers(repo, "churn_model", warm)
    verdict = image_check.run(repo, "img:tag", runtime)
    assert verdict == (
        f"image-check img:tag: trained on data/dataset.csv, served {image_check.SAMPLE_ROWS} "
        "predictions"
    )
    assert runtime.calls == [["preprocess"], ["train"], ["serve"]]


def test_a_model_whose_library_will_not_load_fails_the_check_naming_train(
    repo: Path, warm: WarmStarter
) -> None:
    """What a missing system library does in the image: the estimator cannot be built."""
    model = repo / "src" / "churn_model" / "model.py"
    text = model.read_text()
    model.write_text(
        text.replace(
            "    from sklearn.pipeline import Pipeline\n",
            "    import lightgbm_is_not_here  # noqa: F401\n"
            "    from sklearn.pipeline import Pipeline\n",
            1,
        )
    )
    with pytest.raises(
        CIError, match=r"^image-check: img:tag train exited 1: .*lightgbm_is_not_here"
    ):
        image_check.run(repo, "img:tag", ProcessContainers(repo, "churn_model", warm))


def test_a_server_that_never_answers_ping_fails_the_check() -> None:
    nothing_listens = f"http://127.0.0.1:{processes.free_port()}"
    with pytest.raises(CIError, match=r"^image-check: serve did not answer /ping within 0.3 s$"):
        image_check.check_serving(nothing_listens, b"1\n", 1, ready_seconds=0.3)


def test_docker_runs_the_image_as_sagemaker_does(tmp_path: Path) -> None:
    """``docker run --rm -v <scratch>:/opt/ml <image> <command>``; a failure is one line naming
    the command with the tail of the container's output."""
    log = tmp_path / "docker.log"
    fake = tmp_path / "bin" / "docker"
    fake.parent.mkdir()
    fake.write_text(
        f'#!/bin/sh\necho "$@" >> {log}\n'
        'case "$*" in *" train") echo "ImportError: libgomp.so.1" >&2; exit 1;; esac\n'
    )
    fake.chmod(0o755)
    docker = image_check.DockerContainers(docker=str(fake))
    docker.run("img:tag", tmp_path, ["preprocess"])
    with pytest.raises(
        CIError, match=r"^image-check: img:tag train exited 1: ImportError: libgomp"
    ):
        docker.run("img:tag", tmp_path, ["train"])
    assert log.read_text().splitlines() == [
        f"run --rm -v {tmp_path}:/opt/ml img:tag preprocess",
        f"run --rm -v {tmp_path}:/opt/ml img:tag train",
    ]
    missing = image_check.DockerContainers(docker=str(tmp_path / "no-docker"))
    with pytest.raises(CIError, match="not found; image-check runs the image with Docker"):
        missing.run("img:tag", tmp_path, ["train"])


def test_build_image_runs_the_check_between_the_build_and_the_push(bake_once) -> None:
    workflow = bake_once(**DEFAULT_COMBINATION) / ".github" / "workflows" / "build-image.yml"
    steps = load_yaml(workflow.read_text())["jobs"]["image"]["steps"]
    names = [step.get("name", "") for step in steps]
    build, check, push = (
        names.index("Build"),
        next(i for i, n in enumerate(names) if n.startswith("Run the image")),
        names.index("Push"),
    )
    assert build < check < push
    assert steps[build]["with"]["load"] is True and "push" not in steps[build]["with"]
    assert "python -m ci_scripts image-check --image" in steps[check]["run"]
    assert steps[push]["with"]["push"] is True


def test_the_image_has_the_openmp_runtime_lightgbm_links(bake_once) -> None:
    dockerfile = (bake_once(**DEFAULT_COMBINATION) / "Dockerfile").read_text()
    assert "apt-get install -y --no-install-recommends libgomp1" in dockerfile
