"""API Gateway (HTTP API, payload format 2.0) -> SageMaker endpoint, with input checks in front.

Why a Lambda between them: the API adds IAM auth per route, throttling and access logs, and this
handler rejects malformed requests with a clear 4xx before they cost an endpoint invocation. Every
request gets an InferenceId (returned to the caller and sent to SageMaker, so it shows up in data
capture) to tie a prediction to its captured record. Standard library + boto3 only (both are in
the Lambda runtime), so `aws cloudformation package` ships this directory as it is.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import csv
import io
import json
import logging
import math
import os
import time
import uuid
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

# The smallest payload limit on the way: serverless endpoints accept 4 MB (real-time 6 MB).
MAX_BODY_BYTES = 4 * 1024 * 1024
JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

_client: Any = None


class RequestError(Exception):
    """A request this API refuses; ``status`` is the HTTP status returned to the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def runtime_client() -> Any:
    """One sagemaker-runtime client per Lambda container, created on first use.

    No retries: the function has a 29 s budget (the HTTP API cuts off at 30 s) that cannot hold a
    second attempt after a slow one; callers retry on 429/503/504 instead.
    """
    global _client
    if _client is None:
        _client = boto3.client(
            "sagemaker-runtime",
            config=Config(
                connect_timeout=3,
                read_timeout=25,
                retries={"mode": "standard", "total_max_attempts": 1},
            ),
        )
    return _client


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _response(status: int, payload: dict[str, Any], inference_id: str | None) -> dict[str, Any]:
    headers = {"content-type": JSON_TYPE}
    if inference_id:
        headers["x-inference-id"] = inference_id
    return {"statusCode": status, "headers": headers, "body": json.dumps(payload)}


def _error(status: int, message: str, inference_id: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"error": _one_line(message)}
    if inference_id:
        payload["inference_id"] = inference_id
    return _response(status, payload, inference_id)


def _body_bytes(event: dict[str, Any]) -> bytes:
    body = event.get("body")
    if body is None or body == "":
        raise RequestError(400, "request body is empty")
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise RequestError(400, f"request body is not valid base64: {exc}") from exc
    else:
        raw = body.encode("utf-8")
    if len(raw) > MAX_BODY_BYTES:
        raise RequestError(413, f"request body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES}")
    return raw


def _content_type(event: dict[str, Any]) -> str:
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    return headers.get("content-type", JSON_TYPE).split(";")[0].strip().lower()


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_width(widths: set[int]) -> None:
    if len(widths) > 1:
        raise RequestError(400, f"rows have different numbers of features: {sorted(widths)}")


def parse_json(raw: bytes) -> bytes:
    """Accept ``{"instances": [[number, ...], ...]}``; return the body to send to the endpoint."""
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(400, f"body is not valid JSON: {exc}") from exc
    if not isinstance(document, dict) or "instances" not in document:
        raise RequestError(400, 'instances: missing; expected {"instances": [[...], ...]}')
    instances = document["instances"]
    if not isinstance(instances, list) or not instances:
        raise RequestError(400, "instances: must be a non-empty list of rows")
    for index, row in enumerate(instances):
        if not isinstance(row, list) or not row:
            raise RequestError(400, f"instances[{index}]: must be a non-empty list of numbers")
        for column, value in enumerate(row):
            if not _is_number(value):
                raise RequestError(
                    400, f"instances[{index}][{column}]: {value!r} is not a finite number"
                )
    _check_width({len(row) for row in instances})
    return json.dumps({"instances": instances}).encode("utf-8")


def parse_csv(raw: bytes) -> bytes:
    """Accept header-less CSV rows of numbers; return them unchanged for the endpoint."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(400, f"CSV body is not UTF-8: {exc}") from exc
    rows = [row for row in csv.reader(io.StringIO(text)) if row and any(c.strip() for c in row)]
    if not rows:
        raise RequestError(400, "CSV body has no rows")
    for index, row in enumerate(rows, start=1):
        for column, cell in enumerate(row, start=1):
            try:
                ok = math.isfinite(float(cell))
            except ValueError:
                ok = False
            if not ok:
                raise RequestError(
                    400,
                    f"CSV row {index} column {column}: {cell.strip()!r} is not a finite number"
                    " (send rows without a header)",
                )
    _check_width({len(row) for row in rows})
    return raw


def _endpoint_error(exc: ClientError, endpoint: str) -> tuple[int, str]:
    """Map a sagemaker-runtime error to (HTTP status, one-line reason)."""
    error = exc.response.get("Error", {})
    code = error.get("Code", "")
    message = _one_line(error.get("Message", ""))
    if code == "ModelError":
        original = exc.response.get("OriginalStatusCode") or 0
        detail = exc.response.get("OriginalMessage") or message
        # The serving container answers bad input with a one-line {"error": "..."}.
        with contextlib.suppress(TypeError, ValueError, AttributeError):
            detail = json.loads(detail).get("error", detail)
        if 400 <= int(original) < 500:
            return 400, f"model rejected the input: {detail}"
        return 502, f"endpoint {endpoint}: model failed ({original}): {detail}"
    if code == "ThrottlingException":
        return 429, f"endpoint {endpoint}: throttled, retry later"
    if code in ("ServiceUnavailable", "ModelNotReadyException"):
        return 503, f"endpoint {endpoint}: not ready: {message}"
    if code == "ValidationError" and "not found" in message.lower():
        return 503, f"endpoint {endpoint}: not found"
    if code == "ValidationError":
        return 400, f"endpoint {endpoint}: {message}"
    return 502, f"endpoint {endpoint}: {code or 'error'}: {message}"


def handle(event: dict[str, Any], client: Any, endpoint: str) -> dict[str, Any]:
    """Validate ``event``, invoke ``endpoint`` with ``client``; always return an HTTP response."""
    try:
        raw = _body_bytes(event)
        content_type = _content_type(event)
        if content_type == JSON_TYPE:
            body = parse_json(raw)
        elif content_type == CSV_TYPE:
            body = parse_csv(raw)
        else:
            raise RequestError(
                415,
                f"content-type {content_type!r} is not supported; use {JSON_TYPE} or {CSV_TYPE}",
            )
    except RequestError as exc:
        return _error(exc.status, str(exc))

    inference_id = str(uuid.uuid4())
    started = time.perf_counter()
    try:
        result = client.invoke_endpoint(
            EndpointName=endpoint,
            ContentType=content_type,
            Accept=JSON_TYPE,
            Body=body,
            InferenceId=inference_id,
        )
        payload = json.loads(result["Body"].read())
    except ClientError as exc:
        status, message = _endpoint_error(exc, endpoint)
        return _log(_error(status, message, inference_id), inference_id, started)
    except (ReadTimeoutError, ConnectTimeoutError):
        message = f"endpoint {endpoint}: timed out"
        return _log(_error(504, message, inference_id), inference_id, started)
    except BotoCoreError as exc:
        message = f"endpoint {endpoint}: {exc}"
        return _log(_error(502, message, inference_id), inference_id, started)
    except ValueError:
        message = f"endpoint {endpoint}: returned a response that is not JSON"
        return _log(_error(502, message, inference_id), inference_id, started)
    if not isinstance(payload, dict):
        payload = {"predictions": payload}
    payload["inference_id"] = inference_id
    return _log(_response(200, payload, inference_id), inference_id, started)


def _log(response: dict[str, Any], inference_id: str, started: float) -> dict[str, Any]:
    logger.info(
        json.dumps(
            {
                "inference_id": inference_id,
                "status": response["statusCode"],
                "latency_ms": round((time.perf_counter() - started) * 1000, 1),
            }
        )
    )
    return response


def handler(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    """Lambda entry point (``handler.handler``); the endpoint comes from ENDPOINT_NAME."""
    endpoint = os.environ.get("ENDPOINT_NAME", "")
    if not endpoint:
        return _error(500, "ENDPOINT_NAME is not set on the function")
    return handle(event, runtime_client(), endpoint)
