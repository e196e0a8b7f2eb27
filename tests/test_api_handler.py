"""The API Lambda (infra/api_handler/handler.py): input checks, InferenceId, error mapping.

sagemaker-runtime InvokeEndpoint is stubbed with botocore's Stubber: moto's sagemaker-runtime
support returns canned bodies and cannot raise ModelError or throttling, which is what these
tests are about. The Stubber also checks every request against the real service model. The
handler has no template syntax: it is tested from the template as every api_gateway=yes render
ships it.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import uuid

import boto3
import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.response import StreamingBody
from botocore.stub import Stubber

from scripts.template_layout import PROJECT_TEMPLATE

HANDLER = PROJECT_TEMPLATE / "infra" / "api_handler" / "handler.py"
_spec = importlib.util.spec_from_file_location("api_handler", HANDLER)
assert _spec and _spec.loader
handler = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(handler)

ENDPOINT = "churn-model-staging"
FIXED_ID = uuid.UUID("12345678-1234-5678-1234-567812345678")


@pytest.fixture
def runtime():
    client = boto3.client(
        "sagemaker-runtime",
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture(autouse=True)
def fixed_inference_id(monkeypatch):
    monkeypatch.setattr(handler.uuid, "uuid4", lambda: FIXED_ID)


def event(body: str, content_type: str = "application/json", *, b64: bool = False) -> dict:
    if b64:
        body = base64.b64encode(body.encode()).decode()
    return {
        "version": "2.0",
        "routeKey": "POST /predict",
        "headers": {"content-type": content_type},
        "body": body,
        "isBase64Encoded": b64,
    }


def endpoint_body(payload: object) -> StreamingBody:
    data = json.dumps(payload).encode()
    return StreamingBody(io.BytesIO(data), len(data))


def expect_invoke(stubber: Stubber, body: bytes, content_type: str, payload: object) -> None:
    stubber.add_response(
        "invoke_endpoint",
        {"Body": endpoint_body(payload), "ContentType": "application/json"},
        {
            "EndpointName": ENDPOINT,
            "ContentType": content_type,
            "Accept": "application/json",
            "Body": body,
            "InferenceId": str(FIXED_ID),
        },
    )


def decoded(response: dict) -> dict:
    assert "\n" not in response["body"]
    assert response["headers"]["content-type"] == "application/json"
    return json.loads(response["body"])


PREDICTIONS = {"predictions": [{"label": 1, "probability": 0.93}]}


def test_json_request_is_forwarded_with_an_inference_id(runtime):
    client, stubber = runtime
    expect_invoke(stubber, b'{"instances": [[1.0, 2, 3.5]]}', "application/json", PREDICTIONS)

    response = handler.handle(event('{"instances": [[1.0, 2, 3.5]]}'), client, ENDPOINT)

    assert response["statusCode"] == 200
    assert response["headers"]["x-inference-id"] == str(FIXED_ID)
    assert decoded(response) == {**PREDICTIONS, "inference_id": str(FIXED_ID)}


def test_csv_request_is_forwarded_unchanged(runtime):
    client, stubber = runtime
    rows = "1.0,2.0,3.0\n4,5,6\n"
    expect_invoke(stubber, rows.encode(), "text/csv", PREDICTIONS)

    response = handler.handle(event(rows, "text/csv; charset=utf-8", b64=True), client, ENDPOINT)

    assert response["statusCode"] == 200
    assert decoded(response)["predictions"] == PREDICTIONS["predictions"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "reason"),
    [
        ("", "application/json", 400, "request body is empty"),
        ("{not json", "application/json", 400, "not valid JSON"),
        ('{"rows": [[1]]}', "application/json", 400, "instances: missing"),
        ('{"instances": []}', "application/json", 400, "non-empty list of rows"),
        ('{"instances": [1, 2]}', "application/json", 400, "instances[0]"),
        ('{"instances": [[1, "a"]]}', "application/json", 400, "instances[0][1]"),
        ('{"instances": [[1, true]]}', "application/json", 400, "instances[0][1]"),
        ('{"instances": [[1, 2], [3]]}', "application/json", 400, "different numbers"),
        ("mean_radius,mean_texture\n1,2\n", "text/csv", 400, "row 1 column 1"),
        ("1,2\n3\n", "text/csv", 400, "different numbers"),
        ("1,nan\n", "text/csv", 400, "row 1 column 2"),
        ("<x/>", "application/xml", 415, "not supported"),
    ],
)
def test_bad_input_is_refused_before_the_endpoint_is_called(
    runtime, body, content_type, status, reason
):
    client, _ = runtime  # no stubbed response: any endpoint call would fail the test

    response = handler.handle(event(body, content_type), client, ENDPOINT)

    assert response["statusCode"] == status
    assert reason in decoded(response)["error"]


def test_oversized_body_is_refused(runtime):
    client, _ = runtime
    big = "1," * (handler.MAX_BODY_BYTES // 2) + "1"

    response = handler.handle(event(big, "text/csv"), client, ENDPOINT)

    assert response["statusCode"] == 413


@pytest.mark.parametrize(
    ("code", "http", "fields", "status", "reason"),
    [
        (
            "ModelError",
            424,
            {"OriginalStatusCode": 400, "OriginalMessage": '{"error": "expected 30 features"}'},
            400,
            "model rejected the input: expected 30 features",
        ),
        (
            "ModelError",
            424,
            {"OriginalStatusCode": 500, "OriginalMessage": "Traceback\n  boom"},
            502,
            "model failed (500): Traceback boom",
        ),
        ("ThrottlingException", 429, None, 429, "throttled"),
        ("ServiceUnavailable", 503, None, 503, "not ready"),
        (
            "ValidationError",
            400,
            None,
            503,
            f"endpoint {ENDPOINT}: not found",
        ),
        ("InternalFailure", 500, None, 502, "InternalFailure"),
    ],
)
def test_endpoint_errors_map_to_one_line_http_errors(runtime, code, http, fields, status, reason):
    client, stubber = runtime
    message = f"Endpoint {ENDPOINT} of account 111111111111 not found."
    if code != "ValidationError":
        message = "x"
    stubber.add_client_error(
        "invoke_endpoint",
        service_error_code=code,
        service_message=message,
        http_status_code=http,
        modeled_fields=fields,
    )

    response = handler.handle(event('{"instances": [[1, 2]]}'), client, ENDPOINT)

    assert response["statusCode"] == status
    body = decoded(response)
    assert reason in body["error"]
    assert body["inference_id"] == str(FIXED_ID)


def test_non_json_endpoint_response_is_a_bad_gateway(runtime):
    client, stubber = runtime
    stubber.add_response("invoke_endpoint", {"Body": StreamingBody(io.BytesIO(b"<html>"), 6)}, None)

    response = handler.handle(event('{"instances": [[1]]}'), client, ENDPOINT)

    assert response["statusCode"] == 502
    assert "not JSON" in decoded(response)["error"]


def test_timeout_is_a_gateway_timeout():
    class SlowRuntime:
        """Raises what botocore raises when the endpoint exceeds read_timeout."""

        def invoke_endpoint(self, **_):
            raise ReadTimeoutError(endpoint_url="https://runtime.sagemaker")

    response = handler.handle(event('{"instances": [[1]]}'), SlowRuntime(), ENDPOINT)

    assert response["statusCode"] == 504
    assert decoded(response)["error"] == f"endpoint {ENDPOINT}: timed out"


def test_lambda_entry_point_uses_endpoint_name_and_shared_client(runtime, monkeypatch):
    client, stubber = runtime
    monkeypatch.setattr(handler, "_client", client)
    monkeypatch.setenv("ENDPOINT_NAME", ENDPOINT)
    expect_invoke(stubber, b'{"instances": [[0.5]]}', "application/json", PREDICTIONS)

    assert handler.handler(event('{"instances": [[0.5]]}'), None)["statusCode"] == 200

    monkeypatch.delenv("ENDPOINT_NAME")
    assert handler.handler(event('{"instances": [[0.5]]}'), None)["statusCode"] == 500
