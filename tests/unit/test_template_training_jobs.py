"""The template's SageMaker training jobs: the retrainer names jobs the gate's rule takes and
its IAM lets it start, passes only the job role to SageMaker, and the alarm watches what the
gate emits."""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any

from mlops.domain.training_jobs import DEFAULT_LIMITS, EVENT_DETAIL_TYPE, EVENT_SOURCE, job_name
from mlops.metric_names import Metric
from mlops.settings import GateSettings, RetrainerSettings
from mlops_cli.emulator.sources.declarations import event_pattern
from tests.conftest import load_event
from tests.unit.test_template_retrain import GATE, RESOURCES, RETRAINER, TEMPLATE, resolver
from tests.unit.test_template_retrain import _local_environment as local_environment


def statement(function: dict[str, Any], sid: str) -> dict[str, Any]:
    for policy in function["Policies"]:
        for item in policy.get("Statement", []):
            if item.get("Sid") == sid:
                return dict(item)
    raise AssertionError(f"no statement {sid}")


def resolved(value: Any) -> Any:
    r = resolver()
    r.attrs[("TrainingJobRole", "Arn")] = "arn:aws:iam::123456789012:role/training"
    r.attrs[("ArtifactsBucket", "Arn")] = "arn:aws:s3:::artifacts"
    return r.resolve(value)


def test_the_retrainers_job_names_are_the_ones_the_gates_rule_takes() -> None:
    retrainer = RetrainerSettings.from_env(local_environment(RETRAINER))
    gate = GateSettings.from_env(local_environment(GATE))
    assert retrainer.training_job_prefix == gate.training_job_prefix
    assert retrainer.training_job_role_arn.endswith(":role/training")
    name = job_name(retrainer.training_job_prefix, "s3://bucket/training-data/x.csv#v1")
    assert len(name) <= 63
    rule = GATE["Events"]["TrainingJobStateChange"]["Properties"]
    pattern = event_pattern(json.dumps(resolved(rule["Pattern"])), "rule")
    event = load_event("sagemaker_training_job_completed.json")
    event["detail"]["TrainingJobName"] = name
    assert pattern.matches_event(event)
    assert pattern.matches_event(
        event | {"detail": event["detail"] | {"TrainingJobStatus": "Stopped"}}
    )
    # another stack's job, and a job still running, are not delivered
    assert not pattern.matches_event(load_event("sagemaker_training_job_completed.json"))
    running = event["detail"] | {"TrainingJobStatus": "InProgress"}
    assert not pattern.matches_event(event | {"detail": running})
    assert rule["Pattern"]["source"] == [EVENT_SOURCE]
    assert rule["Pattern"]["detail-type"] == [EVENT_DETAIL_TYPE]


def test_the_retrainer_may_start_only_this_stacks_jobs_and_pass_only_the_job_role() -> None:
    retrainer = RetrainerSettings.from_env(local_environment(RETRAINER))
    start = statement(RETRAINER, "StartTrainingJobs")
    arn = str(resolved(start["Resource"]))
    name = job_name(retrainer.training_job_prefix, "key")
    assert re.fullmatch(
        arn.replace("*", ".*"), f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}"
    )
    assert arn.endswith(f"training-job/{retrainer.training_job_prefix}-*")
    assert set(start["Action"]) == {
        "sagemaker:CreateTrainingJob",
        "sagemaker:DescribeTrainingJob",
        "sagemaker:AddTags",
    }
    passing = statement(RETRAINER, "PassTrainingJobRole")
    assert passing["Resource"] == {"Fn::GetAtt": ["TrainingJobRole", "Arn"]}
    assert passing["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }


def test_the_job_role_is_for_sagemaker_and_writes_only_under_the_models_job_folder() -> None:
    role = RESOURCES["TrainingJobRole"]["Properties"]
    trust = role["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "sagemaker.amazonaws.com"}]
    statements = role["Policies"][0]["PolicyDocument"]["Statement"]
    writes = [s for s in statements if "s3:PutObject" in s["Action"]]
    assert len(writes) == 1
    allowed = str(resolved(writes[0]["Resource"]))
    job = "mlops-0a1b2c3d-5f0c9a4e2b7d1c3e8f6a"
    jobs = "arn:aws:s3:::artifacts/staging/house-prices/jobs/"
    assert fnmatch.fnmatchcase(f"{jobs}{job}/output/model.tar.gz", allowed)
    # not the source package every later job runs, nor a job's inputs
    assert not fnmatch.fnmatchcase(f"{jobs}source/{'0' * 64}.tar.gz", allowed)
    assert not fnmatch.fnmatchcase(f"{jobs}{job}/input/job.json", allowed)
    assert not any(s["Resource"] == "*" for s in statements if s["Sid"] != "JobMetrics")


def test_the_failed_jobs_alarm_watches_the_metric_the_gate_emits() -> None:
    alarm = RESOURCES["TrainingJobsFailedAlarm"]["Properties"]
    env = local_environment(GATE)
    assert alarm["MetricName"] == Metric.TRAINING_JOBS_FAILED
    assert alarm["Dimensions"] == [{"Name": "service", "Value": env["POWERTOOLS_SERVICE_NAME"]}]


def test_the_gate_holds_the_largest_artifact_it_accepts_in_half_its_memory() -> None:
    # The archive and its unpacked files are in memory at once; the other half is the gate's
    # own work (parity inputs, the model's session).
    memory_mb = GATE.get("MemorySize", TEMPLATE["Globals"]["Function"]["MemorySize"])
    held = DEFAULT_LIMITS.max_compressed + DEFAULT_LIMITS.max_total
    assert DEFAULT_LIMITS.max_member <= DEFAULT_LIMITS.max_total
    assert held <= memory_mb * 1024**2 / 2
