"""The template's built wheel carries ci_scripts' data files, and the code finds them there.

The image installs ci_scripts from the wheel, not from the tree: a data file missing from
package-data (aws_facts.json was) breaks only the installed copy. The wheel is built offline (uv
and setuptools from its cache, as ``make test`` installs them) from a copy of the package, so the
working tree gets no build/ or egg-info, and is unpacked as an installer unpacks a pure wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

BIN = Path(sys.executable).parent
UV = str(BIN / "uv") if (BIN / "uv").exists() else shutil.which("uv")
TEMPLATE_DIR = Path(__file__).resolve().parents[1]
PACKAGE = "ci_scripts"
BUILD_INPUTS = ("pyproject.toml", "LICENSE")  # all that pyproject.toml refers to


def data_files(package: Path) -> set[str]:
    """Every non-Python file of the package in the tree, as paths inside the wheel."""
    return {
        path.relative_to(package.parent).as_posix()
        for path in package.rglob("*")
        if path.is_file()
        and path.suffix not in (".py", ".pyc", ".pyo")
        and "__pycache__" not in path.parts
    }


def test_built_wheel_carries_and_loads_every_data_file(tmp_path: Path) -> None:
    assert UV, "uv: not installed; `make test` installs it into .venv"
    source = tmp_path / "source"
    shutil.copytree(
        TEMPLATE_DIR / PACKAGE, source / PACKAGE, ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in BUILD_INPUTS:
        shutil.copy2(TEMPLATE_DIR / name, source / name)
    build = subprocess.run(
        [UV, "build", "--wheel", "--offline", "--no-progress", "-o", str(tmp_path / "dist")],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")

    expected = data_files(TEMPLATE_DIR / PACKAGE)
    assert {"ci_scripts/aws_facts.json", "ci_scripts/schemas/manifest.schema.json"} <= expected
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert expected <= names, f"missing from the wheel: {sorted(expected - names)}"
        assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo"))]
        installed = tmp_path / "site-packages"
        archive.extractall(installed)

    # The installed copy, not the tree, reads its own data files (cwd holds no ci_scripts).
    probe = (
        "import json, ci_scripts, ci_scripts.manifest as m, ci_scripts.manifest_rules as r;"
        "print(json.dumps([ci_scripts.__file__, len(r.endpoint_instance_types()),"
        " sorted(m.load_schema()['properties'])]))"
    )
    env = {**os.environ, "PYTHONPATH": str(installed)}
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    module_file, instance_types, schema_keys = json.loads(proc.stdout)
    assert Path(module_file).is_relative_to(installed)
    assert instance_types > 0 and schema_keys
