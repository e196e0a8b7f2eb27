"""The ``python -m ci_scripts`` command line: one command per GitOps step.

This module only parses arguments. Each command's work lives in ``ci_scripts/commands/<name>.py``
and is imported inside the command function, so ``--help`` never pays for boto3, jsonschema or
the sagemaker SDK. Every expected failure is one ``error: ...`` line on stderr and an exit code:
1 for a refused or failed step, 2 for bad usage, 3 for drift between git and what runs.

No ``from __future__ import annotations`` here (nor in the sub-apps, commands/local.py and
commands/data.py): typer reads every command's parameters on each start, and string annotations
would be compiled and evaluated again each time (~10 % of ``--help``).
"""

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from ci_scripts import __version__
from ci_scripts.commands.data import app as data_app
from ci_scripts.commands.local import app as local_app
from ci_scripts.errors import one_line_errors

if TYPE_CHECKING:
    from ci_scripts.backends.base import Backend
    from ci_scripts.project import ProjectConfig

BACKEND_ENV_VAR = "CI_SCRIPTS_BACKEND"


class BackendName(StrEnum):
    """Where the work happens: AWS (the workflows) or this machine (the default)."""

    aws = "aws"
    local = "local"


class Environment(StrEnum):
    """The environments a manifest can describe (deploy/<env>.json)."""

    staging = "staging"
    prod = "prod"


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


@dataclass
class State:
    """What every command needs: the project and its backend, both built on first use.

    Tests pass a ready ``State`` as the click context object to run commands against a backend
    they prepared (moto, a local backend in a temp dir).
    """

    project_dir: Path = Path(".")
    backend_name: str = "local"
    backend_instance: "Backend | None" = None
    _project: "ProjectConfig | None" = field(default=None, repr=False)

    @property
    def project(self) -> "ProjectConfig":
        if self._project is None:
            from ci_scripts.project import ProjectConfig

            self._project = ProjectConfig.load(self.project_dir)
        return self._project

    @property
    def backend(self) -> "Backend":
        if self.backend_instance is None:
            from ci_scripts.backends import get_backend

            self.backend_instance = get_backend(self.backend_name, self.project)
        return self.backend_instance


app = typer.Typer(
    name="ci_scripts",
    help="GitOps for a SageMaker model repository: git says what should run where, "
    "these commands make it so.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: rich's help renderer alone costs ~0.1 s
)
app.add_typer(local_app, name="local")
app.add_typer(data_app, name="data")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ci_scripts {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    ctx: typer.Context,
    backend: Annotated[
        BackendName | None,
        typer.Option(
            help=f"Where to run: aws (what the workflows pass) or local. "
            f"Default: ${BACKEND_ENV_VAR}, else local.",
            show_default=False,
        ),
    ] = None,
    project_dir: Annotated[
        Path,
        typer.Option(help="The model repository's root (holds pyproject.toml and deploy/)."),
    ] = Path("."),
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    if isinstance(ctx.obj, State):  # prepared by a caller (tests): keep its backend
        return
    name = backend.value if backend else os.environ.get(BACKEND_ENV_VAR) or BackendName.local
    if name not in {b.value for b in BackendName}:
        raise typer.BadParameter(
            f"{name!r} (from ${BACKEND_ENV_VAR}) is not one of aws, local", param_hint="--backend"
        )
    ctx.obj = State(project_dir=project_dir, backend_name=str(name))


F = TypeVar("F", bound=Callable[..., Any])


def command(name: str) -> Callable[[F], F]:
    """Register ``func`` as command ``name``, wrapped in :func:`one_line_errors`."""

    def register(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with one_line_errors():
                return func(*args, **kwargs)

        app.command(name)(wrapper)
        return func

    return register


def _state(ctx: typer.Context) -> State:
    return ctx.find_object(State) or State()


EnvOption = Annotated[
    Environment, typer.Option("--env", "-e", help="The environment (deploy/<env>.json).")
]
BodyFileOption = Annotated[
    Path | None,
    typer.Option(help="Write the pull request body (markdown) here; default: stdout."),
]
CommitOption = Annotated[
    str | None,
    typer.Option(help="Commit that asked for this (default: $GITHUB_SHA, else git HEAD)."),
]
PrOption = Annotated[
    int | None,
    typer.Option(
        "--pr",
        help="Pull request whose merge asked for this (default: from $GITHUB_REF or the "
        "merge commit's message).",
    ),
]


@command("validate")
def validate(ctx: typer.Context) -> None:
    """Check both manifests and build the pipeline definition.

    Manifests against the schema and the project (environment, group); the pipeline from
    pipelines/pipeline.py. Nothing touches AWS.
    """
    from ci_scripts.commands.validate import run

    run(_state(ctx).project)


@command("run-pipeline")
def run_pipeline(
    ctx: typer.Context,
    wait: Annotated[bool, typer.Option(help="Block until the execution ends.")] = False,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", "-p", help="Pipeline parameter NAME=VALUE (repeatable).", show_default=False
        ),
    ] = None,
) -> None:
    """Upsert and start the training pipeline.

    With --wait, block until it ends: print the registered version, or exit 1 naming the
    failed step and its reason.
    """
    from ci_scripts.commands.run_pipeline import run

    state = _state(ctx)
    run(state.backend, param or [], wait)


@command("propose")
def propose(ctx: typer.Context, env: EnvOption, body_file: BodyFileOption = None) -> None:
    """Propose the newest registered version for staging.

    Rewrite deploy/staging.json and write the pull request body (metrics vs what runs).
    """
    from ci_scripts.commands.propose import run

    state = _state(ctx)
    run(state.project, state.backend, env.value, body_file)


@command("deploy")
def deploy(
    ctx: typer.Context,
    env: EnvOption,
    commit: CommitOption = None,
    pr: PrOption = None,
) -> None:
    """Approve (staging) and deploy what deploy/<env>.json names.

    A no-op when it already runs. Rejected, unknown and other-group versions are refused;
    prod takes only an Approved version that staging serves healthy.
    """
    from ci_scripts.commands.deploy import run

    state = _state(ctx)
    run(state.project, state.backend, env.value, commit=commit, pr=pr)


@command("smoke-test")
def smoke_test(
    ctx: typer.Context,
    env: EnvOption,
    rollback_on_failure: Annotated[
        bool,
        typer.Option(
            help="On failure, redeploy the version served before the last deploy (still exit 1)."
        ),
    ] = False,
    commit: CommitOption = None,
) -> None:
    """Send rows from data/dataset.csv; check answers and latency."""
    from ci_scripts.commands.smoke_test import run

    state = _state(ctx)
    run(
        state.project,
        state.backend,
        env.value,
        rollback_on_failure=rollback_on_failure,
        commit=commit,
    )


@command("batch-run")
def batch_run(
    ctx: typer.Context,
    env: EnvOption,
    input_uri: Annotated[
        str | None,
        typer.Option("--input", help="S3 prefix to score (default: the manifest's input_prefix)."),
    ] = None,
    wait: Annotated[bool, typer.Option(help="Block until the run ends (local: always).")] = True,
) -> None:
    """Score a batch now with the version the environment runs.

    What EventBridge Scheduler starts on batch.schedule (there is no scheduler locally: this is
    how a scheduled run happens). A Failed run exits 1 with its reason.
    """
    from ci_scripts.commands.batch_run import run

    state = _state(ctx)
    run(state.project, state.backend, env.value, input_uri=input_uri, wait=wait)


@command("promote")
def promote(
    ctx: typer.Context,
    source: Annotated[
        Environment, typer.Option("--from", help="Environment that serves the version.")
    ] = Environment.staging,
    target: Annotated[
        Environment, typer.Option("--to", help="Environment whose manifest to change.")
    ] = Environment.prod,
    body_file: BodyFileOption = None,
) -> None:
    """Propose for prod the version staging serves healthy.

    Rewrite deploy/prod.json and write the pull request body (metrics vs what prod runs).
    """
    from ci_scripts.commands.promote import run

    state = _state(ctx)
    run(state.project, state.backend, source.value, target.value, body_file)


@command("rollback")
def rollback(
    ctx: typer.Context,
    env: EnvOption,
    commit: CommitOption = None,
    pr: PrOption = None,
    manifest_only: Annotated[
        bool,
        typer.Option(help="Only rewrite the manifest (deploy later through a pull request)."),
    ] = False,
) -> None:
    """Go back to the version deploy/<env>.json named before.

    Reads the manifest's git history, deploys through the same checks as deploy, then
    rewrites the manifest (commit it).
    """
    from ci_scripts.commands.rollback import run

    state = _state(ctx)
    run(state.project, state.backend, env.value, commit=commit, pr=pr, deploy=not manifest_only)


@command("status")
def status(
    ctx: typer.Context,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="table for people, json for scripts.")
    ] = OutputFormat.table,
) -> None:
    """Desired (git) vs running per environment; exit 3 on drift."""
    from ci_scripts.commands.status import run

    state = _state(ctx)
    run(state.project, state.backend, output.value)


@command("destroy")
def destroy(
    ctx: typer.Context,
    env: EnvOption,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (CI).")
    ] = False,
    allow_prod: Annotated[
        bool, typer.Option(help="Required to destroy prod: it stops production traffic.")
    ] = False,
) -> None:
    """Remove everything an environment runs.

    The endpoint, its endpoint configs and models, rollback alarms, autoscaling and monitoring.
    Lists them and asks first (--yes in CI); prod needs --allow-prod. Idempotent.
    """
    from ci_scripts.commands.destroy import run

    state = _state(ctx)
    run(state.project, state.backend, env.value, yes=yes, allow_prod=allow_prod)


@command("monitor")
def monitor(
    ctx: typer.Context,
    env: EnvOption,
    retrain: Annotated[
        bool,
        typer.Option(help="On drift, run the training pipeline before exiting 3."),
    ] = False,
    quality: Annotated[
        bool,
        typer.Option(
            help="Check model quality instead: live metrics on captured requests joined with "
            "ground-truth labels, against the version's registered metrics."
        ),
    ] = False,
) -> None:
    """Latest data quality results of the endpoint's traffic; exit 3 on drift.

    Prints the violations per feature. Exit 0 when clean (or nothing was captured), 3 on
    drift (one line 'error: <finding>'), 1 when the results cannot be read or the captured
    columns differ from the baseline's. With --quality: each metric live vs registered and the
    label coverage; exit 3 when a metric dropped past monitoring.quality.max_metric_drop.
    """
    if quality:
        from ci_scripts.commands.monitor_quality import run
    else:
        from ci_scripts.commands.monitor import run

    state = _state(ctx)
    run(state.project, state.backend, env.value, retrain=retrain)


@command("ground-truth")
def ground_truth(
    ctx: typer.Context,
    env: EnvOption,
    labels: Annotated[
        Path,
        typer.Argument(
            help="CSV, one line per request: inference_id,label[,label...] (one per row: a "
            "class of the model, or a regression's target).",
            dir_okay=False,
        ),
    ],
) -> None:
    """Upload true labels of captured requests (by inference id) for monitor --quality.

    Written in Model Monitor's ground-truth format under the environment's groundtruth/<env>/
    prefix; a bad line is refused naming the file and line, and nothing is written.
    """
    from ci_scripts.commands.ground_truth import run

    state = _state(ctx)
    run(state.project, state.backend, env.value, labels)


@command("image-check")
def image_check(
    ctx: typer.Context,
    image: Annotated[str, typer.Option(help="The image just built (a local tag).")],
) -> None:
    """Run IMAGE before it ships: preprocess and train on data/dataset.csv under /opt/ml, then
    serve it and answer /ping and one invocation (needs Docker)."""
    from ci_scripts.image_check import DockerContainers, run

    typer.echo(run(_state(ctx).project_dir.resolve(), image, DockerContainers()))


@command("image-tag")
def image_tag(ctx: typer.Context) -> None:
    """Print the image tag: a hash of the image's inputs.

    The inputs are Dockerfile, pyproject.toml and src/ (caches left out).
    """
    from ci_scripts.commands.images import run_image_tag

    run_image_tag(_state(ctx).project_dir)


@command("image-exists")
def image_exists(
    ctx: typer.Context,
    tag: Annotated[
        str | None, typer.Option(help="Image tag (default: the current image-tag).")
    ] = None,
) -> None:
    """Print true or false: is the image already in ECR?

    Exit 0 either way; non-zero only when the question cannot be answered.
    """
    from ci_scripts.commands.images import run_image_exists

    state = _state(ctx)
    run_image_exists(state.backend, tag or _current_tag(state))


def _current_tag(state: State) -> str:
    from ci_scripts.imagetag import image_tag as compute

    return compute(state.project_dir)


def run() -> int:
    """Run the command ``sys.argv`` names; its exit status (click ends even a success with
    SystemExit: caught here, so a caller can read what the command imported, as a test does)."""
    import logging

    from ci_scripts.runtime.quick_exit import exit_status

    # Backends log what a person should know but that is no failure (e.g. unreadable metrics).
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    try:
        app(prog_name="ci_scripts")
    except SystemExit as exc:
        return exit_status(exc.code)
    return 0


def main() -> None:
    """Console-script entry point (``ci-scripts``) and ``python -m ci_scripts``: :func:`run`,
    then the end without the interpreter's teardown (runtime/quick_exit.py), which frees every
    module for nothing: 0.3-0.5 s of CPU once a command such as monitor has loaded scipy."""
    from ci_scripts.runtime import quick_exit

    quick_exit.end_process(run())
