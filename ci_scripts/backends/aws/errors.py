"""AWS errors as one line a person can act on, without request details or credentials.

botocore's own messages can be long and, for signature errors, carry the string that was signed;
we print the operation, the resource we were working on, and AWS's error code and message only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError, WaiterError

from ci_scripts.errors import CIError

_MAX_MESSAGE = 300
# Access key ids and anything after a "Signature"/"StringToSign" marker never reach the terminal.
_SECRETS = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{12,}\b|(?:Signature|StringToSign|Credential)=\S+")
NOT_FOUND_CODES = frozenset(
    {"ResourceNotFound", "ResourceNotFoundException", "NoSuchKey", "NotFound", "404"}
)


def _clean(text: str) -> str:
    text = _SECRETS.sub("[redacted]", " ".join(str(text).split()))
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: ClientError) -> str:
    return _clean(exc.response.get("Error", {}).get("Message", ""))


def is_not_found(exc: ClientError) -> bool:
    """SageMaker reports most missing resources as ValidationException with a telling message."""
    code = error_code(exc)
    if code in NOT_FOUND_CODES:
        return True
    message = error_message(exc).lower()
    return code == "ValidationException" and any(
        marker in message for marker in ("could not find", "does not exist", "not found")
    )


def describe_aws_error(exc: BaseException, resource: str = "") -> str:
    """One line: ``<resource>: AWS <Operation> failed: <Code>: <message>``."""
    prefix = f"{resource}: " if resource else ""
    if isinstance(exc, ClientError):
        return (
            f"{prefix}AWS {exc.operation_name} failed: {error_code(exc) or 'error'}: "
            f"{error_message(exc) or 'no message'}"
        )
    if isinstance(exc, WaiterError):
        name, reason = exc.kwargs.get("name", "?"), exc.kwargs.get("reason", "")
        return f"{prefix}AWS waiter {name} failed: {_clean(reason) or _clean(str(exc))}"
    if isinstance(exc, BotoCoreError):
        return f"{prefix}AWS: {_clean(str(exc))}"
    return f"{prefix}{_clean(str(exc))}"


@contextmanager
def aws_errors(resource: str) -> Iterator[None]:
    """Re-raise AWS failures while working on ``resource`` as a CIError naming it."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise CIError(describe_aws_error(exc, resource)) from exc
