"""The rendered Dockerfile and .dockerignore agree with what `ci_scripts image-tag` hashes.

The image is tagged by a hash of its inputs and build-image.yml skips the build when that tag is
in ECR; a Dockerfile that COPYs something the hash does not cover would ship a stale image under
a tag that claims otherwise. Also checks the container contract the pipeline and hosting rely on.
"""

from __future__ import annotations

import re
from pathlib import Path

from option_matrix import DEFAULT_COMBINATION

from ci_scripts.imagetag import IMAGE_INPUTS


def copy_sources(dockerfile: str) -> set[str]:
    """Sources of every COPY/ADD from the build context (not --from=<stage> copies)."""
    sources = set()
    for line in dockerfile.splitlines():
        match = re.match(r"^\s*(COPY|ADD)\s+(.*)$", line)
        if not match or "--from=" in match.group(2):
            continue
        words = [w for w in match.group(2).split() if not w.startswith("--")]
        sources.update(w.rstrip("/").removeprefix("./") for w in words[:-1])
    return sources


def test_build_context_is_exactly_the_hashed_inputs(bake_once) -> None:
    repo: Path = bake_once(**DEFAULT_COMBINATION)
    dockerfile = (repo / "Dockerfile").read_text()
    assert copy_sources(dockerfile) <= set(IMAGE_INPUTS)
    # .dockerignore: everything out, then exactly the hashed inputs back in.
    rules = [
        line.strip()
        for line in (repo / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    assert allowed == set(IMAGE_INPUTS)


def test_one_image_for_every_job(bake_once) -> None:
    repo: Path = bake_once(**DEFAULT_COMBINATION)
    dockerfile = (repo / "Dockerfile").read_text()
    package = repo.name.replace("-", "_")
    entrypoint = re.findall(r"^ENTRYPOINT (.*)$", dockerfile, re.MULTILINE)
    assert entrypoint == ['["python", "-m", "ci_scripts.runtime"]']
    assert re.search(rf"MODEL_PACKAGE={package}$", dockerfile, re.MULTILINE)
    assert re.search(r"^EXPOSE 8080$", dockerfile, re.MULTILINE)
    assert "accept-bind-to-port=true" in dockerfile
    # SageMaker runs its containers as root: the default must not depend on non-root mounts.
    assert re.search(r"^ARG MODEL_UID=0$", dockerfile, re.MULTILINE)
    assert (repo / "ci_scripts" / "runtime" / "__main__.py").is_file()
    assert (repo / "src" / package / "model.py").is_file()
