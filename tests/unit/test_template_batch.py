"""The template's batch scoring: the function's policy allows every S3 call the service makes
for a job (on the keys ``domain.batch_job`` names) and no write elsewhere; a state machine
execution that fails without a summary alarms."""

from __future__ import annotations

import fnmatch
from typing import Any

from mlops.domain.batch_capture import batch_capture_key
from mlops.domain.batch_job import STEP_FUNCTIONS, BatchJob
from mlops.metric_names import Metric
from mlops_cli.emulator.template import parameter_defaults
from tests.unit.test_template_retrain import RESOURCES, TEMPLATE, resolver

FUNCTION = RESOURCES["BatchScoringFunction"]["Properties"]
MODEL = parameter_defaults(TEMPLATE)["ModelName"]


def statements() -> list[dict[str, Any]]:
    r = resolver()
    r.attrs[("ArtifactsBucket", "Arn")] = "arn:aws:s3:::artifacts"
    r.attrs[("RegistryTable", "Arn")] = "arn:aws:dynamodb:us-east-1:123456789012:table/registry"
    r.attrs[("BatchScoringFailures", "Arn")] = "arn:aws:sqs:us-east-1:123456789012:failures"
    return [r.resolve(s) for p in FUNCTION["Policies"] for s in p.get("Statement", [])]


def allowed(action: str, resource: str) -> bool:
    for s in statements():
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        matches = any(fnmatch.fnmatchcase(resource, r) for r in resources)
        if s["Effect"] == "Allow" and action in actions and matches:
            return True
    return False


def input_bucket() -> str:
    (read,) = [s for s in statements() if s.get("Sid") == "ReadBatchInput"]
    return str(read["Resource"]).split(":::", 1)[1].split("/", 1)[0]


def job() -> BatchJob:
    prefix = parameter_defaults(TEMPLATE)["BatchPrefix"]
    return BatchJob(
        job_id="portfolio-0123456789ab",
        bucket=input_bucket(),
        key=f"{prefix}portfolio.csv",
        etag="e",
        version_id="v",
        size=1,
        model=MODEL,
        model_version="3",
        engine=STEP_FUNCTIONS,
        started_ms=1_796_667_266_375,
    )


def test_every_object_a_job_reads_or_writes_is_allowed() -> None:
    j = job()
    s3 = f"arn:aws:s3:::{j.bucket}/"
    assert allowed("s3:GetObject", s3 + j.key)
    assert allowed("s3:GetObjectVersion", s3 + j.key)  # the upload's version is read
    for key in (
        j.summary_key,
        j.marker_key,
        j.part_key(1),
        j.part_key(1, "rejected"),
        j.part_key(1, suffix=".json"),
    ):
        assert allowed("s3:PutObject", s3 + key), key
    assert allowed("s3:GetObject", s3 + j.part_key(1, suffix=".json"))  # summarize
    capture = "arn:aws:s3:::artifacts/" + batch_capture_key(j, 1)
    assert allowed("s3:PutObject", capture)


def test_the_function_writes_nowhere_else() -> None:
    j = job()
    for resource in (
        f"arn:aws:s3:::{j.bucket}/{j.key}",  # the upload itself
        f"arn:aws:s3:::{j.bucket}/training/data.csv",
        f"arn:aws:s3:::artifacts/models/{MODEL}/v3/model.onnx",
        "arn:aws:s3:::artifacts/captures/model=another/version=1/x.jsonl.gz",
        "arn:aws:s3:::another-bucket/batch-output/x/summary.json",
    ):
        assert not allowed("s3:PutObject", resource), resource
    assert all(s["Resource"] != "*" for s in statements())


def test_an_execution_that_fails_before_its_summary_alarms() -> None:
    alarm = RESOURCES["BatchScoringExecutionsFailedAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/States", "ExecutionsFailed")
    assert alarm["Dimensions"] == [
        {"Name": "StateMachineArn", "Value": {"Ref": "BatchScoringStateMachine"}}
    ]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (
        1,
        "GreaterThanOrEqualToThreshold",
    )
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_the_failed_jobs_alarm_watches_the_metric_the_service_emits() -> None:
    alarm = RESOURCES["BatchJobsFailedAlarm"]["Properties"]
    service = FUNCTION["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
    assert alarm["MetricName"] == Metric.BATCH_JOBS_FAILED
    assert alarm["Dimensions"] == [{"Name": "service", "Value": service}]


def test_the_state_machine_may_read_the_uploads_version_its_item_reader_names() -> None:
    machine = RESOURCES["BatchScoringStateMachine"]["Properties"]
    (read,) = [
        s
        for p in machine["Policies"]
        for s in p.get("Statement", [])
        if s.get("Sid") == "ReadBatchInput"
    ]
    assert set(read["Action"]) == {"s3:GetObject", "s3:GetObjectVersion"}
