"""Import the SageMaker SDK lazily and build definitions without any call to AWS.

Building a definition is pure data: CI checks it on every push, the local backend runs it with no
AWS account, neither has credentials. Left to its defaults the SDK would still reach out while
building: it probes the credential chain (instance metadata included) for every client, validates
the training role with IAM, sends telemetry, and would create or look up a default bucket. Each
is switched off here, explicitly, and the boto3 session handed to the SDK refuses every AWS call,
so a future SDK version that starts calling AWS fails loudly instead of hanging or leaking.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import boto3
    import botocore.loaders
    from sagemaker.core.workflow.pipeline_context import PipelineSession

# The SDK modules the pipelines use; importing them takes a few seconds, so only on demand.
SDK_MODULES = (
    "sagemaker.core.workflow.pipeline_context",
    "sagemaker.mlops.workflow",
    "sagemaker.train.model_trainer",
    "sagemaker.serve.model_builder",
)

# The SDK's own opt-out switch (sagemaker.core.config.config_schema.TELEMETRY_OPT_OUT_PATH).
TELEMETRY_OPT_OUT: dict[str, Any] = {
    "SchemaVersion": "1.0",
    "SageMaker": {
        "PythonSDK": {
            "Modules": {"TelemetryOptOut": True},
        },
    },
}


class OfflineBuildError(RuntimeError):
    """The SDK tried to call AWS while building a definition, which must be pure data."""


@contextmanager
def environ(name: str, value: str, *, only_if_unset: bool = False) -> Iterator[None]:
    """Set one environment variable for the duration of the block, then restore it."""
    saved = os.environ.get(name)
    if not (only_if_unset and saved is not None):
        os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


def import_sdk(region: str) -> None:
    """Import the SDK modules (a class in sagemaker.ai_registry builds a client at import time,
    which fails without a region)."""
    with environ("AWS_DEFAULT_REGION", region, only_if_unset=True), warnings.catch_warnings():
        # The SDK imports its own moved modules through deprecation shims; nothing to act on here.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"sagemaker\.")
        for name in SDK_MODULES:
            importlib.import_module(name)


@contextmanager
def build_environment(region: str, *, offline: bool) -> Iterator[None]:
    """Where a pipeline is built: a default region, and offline no credential probing.

    The SDK makes clients from the default boto3 chain behind our back: one at import time (in
    sagemaker.ai_registry), and ProcessingStep() makes a throwaway local-mode session only to read
    a method name. They need a region from the environment, and each client probes the credential
    chain, the instance metadata service last; on a laptop without AWS configuration that probe
    can wait for a timeout. Offline, no credentials are wanted at all.
    """
    with ExitStack() as stack:
        stack.enter_context(environ("AWS_DEFAULT_REGION", region, only_if_unset=True))
        if offline:
            stack.enter_context(environ("AWS_EC2_METADATA_DISABLED", "true"))
        import_sdk(region)
        stack.enter_context(quiet_sdk())
        stack.enter_context(shared_service_models())
        stack.enter_context(config_validated_once())
        yield


@functools.cache
def _shared_loader(search_path: str | None) -> botocore.loaders.Loader:
    """One botocore loader per data path for the whole process: its cache of parsed models."""
    import botocore.loaders

    return botocore.loaders.create_loader(search_path)


@contextmanager
def _swapped(owner: Any, name: str, value: Any) -> Iterator[None]:
    """``owner.name`` is ``value`` for the duration of the block, then what it was."""
    saved = owner.__dict__[name]
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, saved)


def shared_service_models() -> AbstractContextManager[None]:
    """Every boto3 session made while building shares one botocore loader.

    A build makes a dozen sessions: ours, and a throwaway ``boto3.Session()`` in each
    ProcessingStep's local-mode session. Each new botocore session has its own loader, which
    parses the service models (SageMaker's is megabytes of JSON) again for every client: about
    half a second per session, most of a build's time after the import. Loaded models are
    read-only to botocore, which is how one session already shares them between its clients.
    """
    import botocore.session

    return _swapped(botocore.session, "create_loader", _shared_loader)


_VALIDATED: set[str] = set()


def _validate_once(validate: Callable[..., None]) -> Callable[..., None]:
    """``validate`` (the SDK's config check against its JSON schema), run once per distinct
    config: the result depends on the config and the installed schema only."""

    def check(sagemaker_config: dict[str, Any] | None = None) -> None:
        key = json.dumps(sagemaker_config, sort_keys=True, default=repr)
        if key not in _VALIDATED:
            validate(sagemaker_config)
            _VALIDATED.add(key)

    return check


@contextmanager
def config_validated_once() -> Iterator[None]:
    """The SDK validates the session's config (:data:`TELEMETRY_OPT_OUT`) against its JSON
    schema when a session is made and on each lookup (~0.2 s of CPU each, three times per
    session): while building, each distinct config is validated once per process, still by the
    SDK's own check, so an invalid one still fails."""
    from sagemaker.core.config import config_manager
    from sagemaker.core.helper import session_helper
    from sagemaker.core.local import local_session

    manager = config_manager.SageMakerConfig
    with ExitStack() as stack:
        for module in (session_helper, local_session):
            check = _validate_once(module.validate_sagemaker_config)
            stack.enter_context(_swapped(module, "validate_sagemaker_config", check))
        check = staticmethod(_validate_once(manager.validate_sagemaker_config))
        stack.enter_context(_swapped(manager, "validate_sagemaker_config", check))
        yield


def _refuse(event_name: str = "", **_: Any) -> None:
    # event_name is "before-call.<service>.<Operation>"
    call = event_name.removeprefix("before-call.")
    raise OfflineBuildError(
        f"{call}: the SageMaker SDK tried to call AWS while building the pipeline definition; "
        "give every name explicitly in PipelineSettings (or pass a real boto_session to "
        "get_pipeline to talk to AWS)"
    )


def offline_boto_session(region: str) -> boto3.Session:
    """A boto3 session that has no credentials, never looks for any, and refuses every call.

    The empty credential resolver matters even offline: botocore resolves credentials whenever a
    client is created, and the SDK creates about ten; on a laptop without AWS configuration each
    probe of the instance metadata service can wait a second for a timeout.
    """
    import boto3
    import botocore.session
    from botocore.credentials import CredentialResolver

    core = botocore.session.Session()
    core.register_component("data_loader", _shared_loader(core.get_config_variable("data_path")))
    core.register_component("credential_provider", CredentialResolver(providers=[]))
    core.register("before-call", _refuse)
    return boto3.Session(botocore_session=core, region_name=region)


def pipeline_session(boto_session: boto3.Session, default_bucket: str) -> PipelineSession:
    """A PipelineSession that reads no SDK config file and never looks up a bucket or account.

    Passing a config stops the SDK from reading ~/.config/sagemaker/config.yaml and
    /etc/xdg/sagemaker/config.yaml, so the definition depends on the repository alone. It is then
    emptied, because the SDK re-validates a non-empty config against its JSON schema on every one
    of its ~45 lookups per build (~60 ms each); the telemetry opt-out is applied where it is read,
    see :func:`telemetry_opted_out`.
    """
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    session = PipelineSession(
        boto_session=boto_session,
        default_bucket=default_bucket,
        sagemaker_config=TELEMETRY_OPT_OUT,
    )
    session.sagemaker_config = {}
    return session


@contextmanager
def telemetry_opted_out(session: PipelineSession) -> Iterator[None]:
    """Opt out of SDK telemetry for calls that emit it (ModelTrainer.train, ModelBuilder.register).

    Telemetry is an HTTPS request from a background thread: a network call the local backend
    must not make, and noise from CI.
    """
    saved = session.sagemaker_config
    session.sagemaker_config = TELEMETRY_OPT_OUT
    try:
        yield
    finally:
        session.sagemaker_config = saved


def role_validation_skipped() -> AbstractContextManager[None]:
    """ModelTrainer checks its role with IAM (SimulatePrincipalPolicy) unless told not to; the
    role is the one named in pyproject.toml, and SageMaker checks it when the pipeline runs."""
    return environ("SAGEMAKER_VALIDATE_ROLE", "false")


@contextmanager
def quiet_sdk() -> Iterator[None]:
    """Silence what the SDK says on every pipeline build ("No Job being started", "Popping out
    'ProcessingJobName'..."): expected, and it would bury the CLI's output. Errors still show."""
    loggers = [logging.getLogger(name) for name in ("sagemaker", "sagemaker.config")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Running within a PipelineSession")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
