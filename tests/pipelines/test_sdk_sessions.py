"""What a definition build shares between the SDK's sessions (ci_scripts.pipelines.sdk): one
botocore loader for every session made while building, and one validation per SDK config."""

from __future__ import annotations

import boto3
import botocore.session
import jsonschema
import pytest

from ci_scripts.pipelines import sdk

REGION = "eu-west-1"


def loader_of(session: boto3.Session) -> object:
    return session._session.get_component("data_loader")


def test_sessions_made_while_building_share_one_loader() -> None:
    """The SDK's throwaway ``boto3.Session()`` (one per ProcessingStep) and ours parse the
    service models once between them, and sessions made after the build are left alone."""
    with sdk.build_environment(REGION, offline=True):
        throwaway = boto3.Session(region_name=REGION)
        again = boto3.Session(region_name=REGION)
        ours = sdk.offline_boto_session(REGION)
        assert loader_of(throwaway) is loader_of(again) is loader_of(ours)
    after = boto3.Session(region_name=REGION)
    assert loader_of(after) is not loader_of(ours)
    assert botocore.session.create_loader is botocore.loaders.create_loader


def test_the_offline_session_still_refuses_calls_with_the_shared_loader() -> None:
    with sdk.build_environment(REGION, offline=True):
        client = sdk.offline_boto_session(REGION).client("sagemaker")
        with pytest.raises(sdk.OfflineBuildError, match=r"^sagemaker\.ListPipelines: "):
            client.list_pipelines()


def test_a_config_is_validated_once_and_an_invalid_one_still_fails(monkeypatch) -> None:
    """The SDK's own check runs for each distinct config, once; a wrong config still fails."""
    from sagemaker.core.helper import session_helper

    seen: list[dict] = []
    original = session_helper.validate_sagemaker_config

    def spy(config: dict | None = None) -> None:
        seen.append(config)
        original(config)

    monkeypatch.setattr(session_helper, "validate_sagemaker_config", spy)
    monkeypatch.setattr(sdk, "_VALIDATED", set())
    with sdk.build_environment(REGION, offline=True):
        for _ in range(3):
            sdk.pipeline_session(sdk.offline_boto_session(REGION), "bucket")
        with pytest.raises(jsonschema.ValidationError):
            session_helper.validate_sagemaker_config({"SchemaVersion": "1.0", "Unknown": 1})
        with pytest.raises(jsonschema.ValidationError):  # not remembered as valid
            session_helper.validate_sagemaker_config({"SchemaVersion": "1.0", "Unknown": 1})
    assert seen.count(sdk.TELEMETRY_OPT_OUT) == 1
    assert len(seen) == 3
    assert session_helper.validate_sagemaker_config is spy  # restored after the build
