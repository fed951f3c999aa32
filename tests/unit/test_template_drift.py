"""The drift evaluator's contract in template.yaml: schedule, environment, permissions and
alarms that watch the metrics the service emits."""

from __future__ import annotations

from typing import Any

from mlops.settings import DriftSettings
from mlops_cli.emulator.template import load_template
from tests.conftest import ROOT, emits

TEMPLATE = load_template(ROOT / "template.yaml")
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
DRIFT = RESOURCES["DriftEvaluatorFunction"]["Properties"]
SERVICE_CODE = (ROOT / "layers/core/mlops/services/drift.py").read_text()


def test_the_evaluator_runs_on_the_schedule_parameter() -> None:
    event = DRIFT["Events"]["Evaluate"]
    assert event["Type"] == "Schedule"
    assert event["Properties"]["Schedule"] == {"Ref": "DriftSchedule"}
    assert TEMPLATE["Parameters"]["DriftSchedule"]["Default"] == "rate(1 hour)"


def test_every_setting_the_evaluator_reads_is_in_its_environment() -> None:
    env = DRIFT["Environment"]["Variables"]
    settings = DriftSettings.from_env(dict.fromkeys(env, "x") | {"DRIFT_WINDOW_HOURS": "24"})
    assert settings.model_name == "x"
    assert env["RETRAIN_BUS"] == {"Ref": "RetrainBus"}
    assert env["DRIFT_WINDOW_HOURS"] == {"Ref": "DriftWindowHours"}
    assert env["POWERTOOLS_SERVICE_NAME"] == "drift-evaluator"


def test_it_may_request_retraining_and_write_only_roll_ups_reports_and_folded_labels() -> None:
    statements = DRIFT["Policies"][0]["Statement"]
    by_sid = {s["Sid"]: s for s in statements}
    assert by_sid["RequestRetraining"]["Action"] == "events:PutEvents"
    assert by_sid["RequestRetraining"]["Resource"] == {"Fn::GetAtt": ["RetrainBus", "Arn"]}
    writes = [r["Fn::Sub"] for r in by_sid["WriteRollupsAndReports"]["Resource"]]
    assert writes == [
        "${ArtifactsBucket.Arn}/sketches/model=${ModelName}/version=*/rollup/*",
        "${ArtifactsBucket.Arn}/labels/model=${ModelName}/*",
        "${ArtifactsBucket.Arn}/reports/drift/*",
        "${ArtifactsBucket.Arn}/reports/rollout/*",
    ]


def test_it_ends_rollouts_with_the_actions_a_registry_transaction_carries() -> None:
    by_sid = {s["Sid"]: s for s in DRIFT["Policies"][0]["Statement"]}
    ends = by_sid["EndRollouts"]
    assert ends["Resource"] == {"Fn::GetAtt": ["RegistryTable", "Arn"]}
    # promote: Update (alias, statuses) + Put (history) + Delete (rollout); record_check: Update
    assert set(ends["Action"]) == {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:ConditionCheckItem",
    }


def test_the_alarms_watch_metrics_the_service_emits_under_its_service_name() -> None:
    rollout_code = (ROOT / "layers/core/mlops/services/rollout.py").read_text()
    for name, metric in (
        ("DatasetDriftAlarm", "DatasetDrift"),
        ("QualityBreachAlarm", "QualityBreach"),
        ("RolloutRolledBackAlarm", "RolloutRolledBack"),
    ):
        alarm = RESOURCES[name]["Properties"]
        assert alarm["MetricName"] == metric
        assert emits(SERVICE_CODE + rollout_code, metric), metric
        assert alarm["Dimensions"] == [{"Name": "service", "Value": "drift-evaluator"}]
        assert (
            alarm["Namespace"]
            == TEMPLATE["Globals"]["Function"]["Environment"]["Variables"][
                "POWERTOOLS_METRICS_NAMESPACE"
            ]
        )


HANDLER_CODE = (ROOT / "functions/drift_evaluator/app.py").read_text()


def test_a_dead_mans_switch_fires_when_no_evaluation_completes_for_the_silence_hours() -> None:
    # Given the alarm on the metric every completed evaluation publishes
    alarm = RESOURCES["DriftEvaluatorSilentAlarm"]["Properties"]
    assert alarm["MetricName"] == "DriftEvaluations"
    assert emits(SERVICE_CODE, "DriftEvaluations")
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "drift-evaluator"}]
    # Then it fires on silence: hours with no datapoint count as breaching, all of them needed
    assert alarm["TreatMissingData"] == "breaching"
    assert (alarm["Statistic"], alarm["Threshold"]) == ("Sum", 1)
    assert alarm["ComparisonOperator"] == "LessThanThreshold"
    assert alarm["Period"] == 3600
    silence = {"Ref": "DriftSilenceHours"}
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == silence
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    # And the default tolerates two missed hourly runs; the largest stays in CloudWatch's
    # 7-day evaluation range
    parameter = TEMPLATE["Parameters"]["DriftSilenceHours"]
    assert parameter["Default"] == 3
    assert parameter["MinValue"] >= 1
    assert parameter["MaxValue"] * alarm["Period"] <= 7 * 24 * 3600


def test_the_evaluators_failure_alarm_says_what_failed_and_where_to_look() -> None:
    alarm = RESOURCES["DriftEvaluatorErrorsAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", "Errors")
    assert alarm["Dimensions"] == [
        {"Name": "FunctionName", "Value": {"Ref": "DriftEvaluatorFunction"}}
    ]
    assert alarm["TreatMissingData"] == "notBreaching"
    description = alarm["AlarmDescription"]
    assert description.startswith("The drift evaluator failed")
    assert "retrain" not in description.split(".")[0].lower()  # not blamed on retraining
    # The log lines it names are the ones the handler writes
    for line in ("drift evaluation failed", "rollout evaluation failed"):
        assert f'"{line}"' in description
        assert f'logger.exception("{line}")' in HANDLER_CODE
    assert "DriftEvaluatorLogs" in description


def test_the_shared_failure_queues_alarm_no_longer_blames_only_retraining() -> None:
    description = RESOURCES["RetrainFailuresAlarm"]["Properties"]["AlarmDescription"]
    assert "drift evaluation" in description
    assert DRIFT["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["RetrainFailures", "Arn"]
    }
