"""Shared fixtures for the template's tests: where the template is, and rendering it.

Renders go through pytest-cookies (the real cookiecutter API, hooks included). ``bake_once``
renders each distinct set of answers once per test run (shared by the xdist workers), so every
test file can ask for the renders it needs without paying for them twice.
"""

from __future__ import annotations

import fcntl
import gc
import hashlib
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import template_code_cache
from run_scope import session_dir

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
# tests/runtime/ tests ci_scripts.runtime inside a render (test_render.run_own_suite copies it
# there): it needs a model repo's model and data, so it is not collected from the template.
collect_ignore = ["runtime"]
if str(TEMPLATE_DIR) not in sys.path:  # `scripts` and `ci_scripts` importable from any cwd
    sys.path.insert(0, str(TEMPLATE_DIR))
# MLflow tracking of local runs costs about 4 s of CPU per new repo (import, store creation), in
# every loop a test runs: off for the suite, as in `make demo` (whose install has no mlflow);
# tests/local/test_local_tracking.py turns it on and checks what it records.
os.environ.setdefault("CI_SCRIPTS_LOCAL_TRACKING", "0")
# One OpenMP/OpenBLAS thread per process, as the image runs every job (its Dockerfile sets
# OMP_NUM_THREADS=1): the two xdist workers fill the two cores, and numpy's default of a thread
# per core only oversubscribes them. numpy and scikit-learn read it when they load: it is set
# here, before any test imports them and before pytest-xdist starts its workers.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Each template file is compiled once per test process, not once per render (Jinja's bytecode
# cache, checked against the file's source): most of an in-process render's CPU.
template_code_cache.install()
# The shared kit (gitops_testkit, aws_harness, local_harness) for tests/aws, tests/ci_scripts, ...
CONTRACT_DIR = Path(__file__).resolve().parent / "contract"
if str(CONTRACT_DIR) not in sys.path:
    sys.path.insert(0, str(CONTRACT_DIR))


# Tests that run a rendered repo's own suite or its whole local loop (tens of seconds each):
# marked `slow`, or in a module that runs `make demo` (test_demo*.py).
_DEMO_MODULES = "test_demo"


# Tests that share one costly result run on one xdist worker, one after the other (the Makefile's
# ``--dist loadgroup``), so the result is made once per run, not once per worker:
# - the tests continuing the session's one demo loop (test_demo.finished_loop): spread over both
#   workers, the second would wait idle on the loop's lock for as long as the loop runs;
# - the IAM tests judging a recorded loop (tests/iam/iam_cases.recorded, one recording per
#   deployment/monitoring choice and account layout, kept per worker): on both workers, most
#   loops were recorded twice.
LOOP_FIXTURE = "finished_loop"
LOOP_GROUP = "demo-loop"
RECORDING_GROUP = "iam-recordings"


def xdist_group(item: pytest.Item) -> str | None:
    """The group ``item`` runs in (see above), None for a test of its own."""
    if LOOP_FIXTURE in getattr(item, "fixturenames", ()):
        return LOOP_GROUP
    recorded = getattr(getattr(item, "module", None), "recorded", None)
    if getattr(recorded, "__module__", None) == "iam_cases":
        return RECORDING_GROUP
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which reads the group markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the longest tests first: under pytest-xdist both workers then share them from the
    start and the short ones fill in at the end, instead of one worker finishing a long loop
    alone while the other idles. Tests sharing one costly result form a group
    (:func:`xdist_group`)."""

    def heavy(item: pytest.Item) -> bool:
        return item.get_closest_marker("slow") is not None or item.path.stem.startswith(
            _DEMO_MODULES
        )

    items.sort(key=lambda item: not heavy(item))  # stable: the order within each group holds
    for item in items:
        if group := xdist_group(item):
            item.add_marker(pytest.mark.xdist_group(group))


# Python's cyclic collector, at its default thresholds (700, 10, 10), kept walking the whole heap
# of a test process: every module the suite imported (botocore's and moto's models, scikit-learn,
# cfn-lint) plus what each test builds. Sampled with perf, it was about a fifth of the xdist
# workers' CPU in tests/aws, tests/contract and tests/iam (they run a third faster with this; the
# whole suite measured no faster). What is alive once collection ends (imports, the collected
# items) lives to the end anyway: frozen out of the collector's walks. Young objects are collected
# 14 times less often, and the oldest generation after 1 M allocations instead of 70 k. Cycles made
# after the freeze are still collected, and no test's behaviour depends on when.
GC_THRESHOLDS = (10_000, 10, 10)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish() -> None:
    """Tune the collector once the test modules are imported (see GC_THRESHOLDS)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


@contextmanager
def isolated_git_config(tmp_dir: Path, identity: tuple[str, str] | None = None) -> Iterator[None]:
    """Make git ignore the machine's config while rendering, so the hook's git step is reproducible.

    ``identity`` (name, email) goes into the isolated global config; None means git has none.
    """
    config = tmp_dir / ("gitconfig-identity" if identity else "gitconfig-empty")
    config.write_text(
        f"[user]\n\tname = {identity[0]}\n\temail = {identity[1]}\n" if identity else "",
        encoding="utf-8",
    )
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith(("GIT_AUTHOR_", "GIT_COMMITTER_")) or key in ("GIT_DIR", "EMAIL"):
            del os.environ[key]
    os.environ.update(GIT_CONFIG_GLOBAL=str(config), GIT_CONFIG_NOSYSTEM="1")
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session", autouse=True)
def _no_local_process_outlives_the_session(tmp_path_factory) -> Iterator[None]:
    """At the end of the session (each xdist worker's), stop every local-backend process whose
    repo lies in this session's temporary folders: a test that failed or timed out while its
    endpoints ran leaves nothing running after pytest deletes its repo."""
    yield
    from process_guard import stop_local_processes

    stop_local_processes(tmp_path_factory.getbasetemp())
    stop_local_processes(session_dir(tmp_path_factory) / "renders")  # none, unless a test ran one


@pytest.fixture(scope="session", autouse=True)
def _no_bytecode_kept_for_this_runs_folders(tmp_path_factory) -> Iterator[None]:
    """Under make, Python keeps compiled modules in .venv/pycache (the Makefile's "Bytecode"),
    mirroring each source's path: the renders and repos of a run, in its temporary folders,
    would leave ~25 MB there per run that no later run reads. Each worker drops its own
    folders' at its end (and the shared renders', which a worker still running recompiles)."""
    yield
    if sys.pycache_prefix:
        cache = Path(sys.pycache_prefix)
        for folder in (tmp_path_factory.getbasetemp(), session_dir(tmp_path_factory)):
            shutil.rmtree(cache / folder.resolve().relative_to("/"), ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _definition_cache_of_this_run(tmp_path_factory) -> Iterator[None]:
    """The local backend's per-user cache of built pipeline definitions
    (ci_scripts/backends/local/definition.py: ~/.cache/sagemaker-gitops by default) is this
    run's own folder, shared by its workers and the processes they start: the suite neither
    writes into the user's cache nor runs faster or slower for what an earlier run left there
    (a clean CI machine builds every definition once per run; so does every run here). A test
    that needs a cold build sets its own."""
    from ci_scripts.backends.local.definition import CACHE_ENV as DEFINITION_CACHE_ENV

    if os.environ.get(DEFINITION_CACHE_ENV):
        yield  # chosen by whoever runs the suite
        return
    os.environ[DEFINITION_CACHE_ENV] = str(session_dir(tmp_path_factory) / "definition-cache")
    try:
        yield
    finally:
        del os.environ[DEFINITION_CACHE_ENV]


@pytest.fixture(autouse=True)
def _no_local_process_outlives_its_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that used tmp_path, stop the local-backend processes of repos in it (the
    test's own: no other test can need them), whatever the test's outcome."""
    tmp = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None
    yield
    if tmp is not None:
        from process_guard import stop_local_processes

        stop_local_processes(tmp)


@pytest.fixture
def aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """The aws backend on moto with a fresh model repo (realtime endpoints): an AwsHarness."""
    from aws_harness import aws_harness  # moto is heavy: only tests that ask for it pay

    with aws_harness(tmp_path, monkeypatch) as harness:
        yield harness


@pytest.fixture(scope="session")
def template_dir() -> Path:
    """The template checkout under test (the repo root)."""
    return TEMPLATE_DIR


@pytest.fixture(scope="session")
def bake_once(cookies_session, tmp_path_factory) -> Callable[..., Path]:
    """``bake_once(**answers) -> rendered project dir``, rendered once per test run per answers:
    the first xdist worker to ask renders it into the run's shared folder (run_scope), the other
    reads it there. Renders are read-only: a test that changes or runs one copies it first.

    Pass ``git_identity=(name, email)`` to render with a configured git identity; by default git
    has none (the post_gen hook then uses its fallback). A failed render fails the calling test.
    """
    git_dir = tmp_path_factory.mktemp("gitconfig")
    shared = session_dir(tmp_path_factory) / "renders"
    shared.mkdir(exist_ok=True)
    cache: dict[tuple, Path | BaseException] = {}

    def render(
        git_identity: tuple[str, str] | None, answers: dict[str, str]
    ) -> Path | BaseException:
        with isolated_git_config(git_dir, git_identity):
            result = cookies_session.bake(extra_context=answers, template=str(TEMPLATE_DIR))
        return result.exception or result.project_path

    def bake(git_identity: tuple[str, str] | None = None, **answers: str) -> Path:
        key = (git_identity, *sorted(answers.items()))
        if key not in cache:
            folder = shared / hashlib.sha256(repr(key).encode()).hexdigest()[:16]
            with (shared / f"{folder.name}.lock").open("w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
                if folder.is_dir():
                    (cache[key],) = folder.iterdir()
                else:
                    made = render(git_identity, answers)
                    if isinstance(made, Path):  # a failed render is this worker's own
                        folder.mkdir()
                        made = made.rename(folder / made.name)  # one file system: the basetemp
                    cache[key] = made
        outcome = cache[key]
        if isinstance(outcome, BaseException):
            pytest.fail(f"rendering {answers} failed: {outcome!r}")
        return outcome

    return bake
