"""aws smoke test: every InvokeEndpoint call carries its own InferenceId.

The endpoint runs on moto (which ignores the id); what the backend sent is read from botocore's
``before-parameter-build`` event on the sagemaker-runtime client, i.e. the real request
parameters, validated against the service model as any call is.
"""

from __future__ import annotations

import json
from typing import Any

from aws_harness import AwsHarness
from test_aws_endpoints import deploy


def test_smoke_test_sends_a_fresh_inference_id_per_request(aws: AwsHarness) -> None:
    seeded = aws.seed_version()
    assert deploy(aws, "staging", seeded.version).exit_code == 0
    rows = 3
    aws.prepare_invocations("staging", rows)
    sent: list[dict[str, Any]] = []
    aws.backend.clients("sagemaker-runtime").meta.events.register(
        "before-parameter-build.sagemaker-runtime.InvokeEndpoint",
        lambda params, **_: sent.append(dict(params)),
    )
    path = aws.project.manifest_path("staging")
    data = json.loads(path.read_text())
    data["smoke_test"] = {"rows": rows}
    path.write_text(json.dumps(data))

    result = aws.cli("smoke-test", "--env", "staging")

    assert result.exit_code == 0, result.output
    assert len(sent) == rows + 1  # each row alone, then the batch
    ids = [call.get("InferenceId") for call in sent]
    assert all(ids) and len(set(ids)) == len(ids)
    assert {call["EndpointName"] for call in sent} == {aws.project.endpoint_name("staging")}


def test_invoke_without_an_id_sends_none(aws: AwsHarness) -> None:
    seeded = aws.seed_version()
    assert deploy(aws, "staging", seeded.version).exit_code == 0
    aws.prepare_invocations("staging", 0, answers=[{"predictions": []}] * 2)
    sent: list[dict[str, Any]] = []
    aws.backend.clients("sagemaker-runtime").meta.events.register(
        "before-parameter-build.sagemaker-runtime.InvokeEndpoint",
        lambda params, **_: sent.append(dict(params)),
    )

    assert aws.backend.invoke("staging", b"1,2\n", inference_id="label-me")[0] == 200
    assert aws.backend.invoke("staging", b"1,2\n")[0] == 200

    assert sent[0]["InferenceId"] == "label-me"
    assert "InferenceId" not in sent[1]
