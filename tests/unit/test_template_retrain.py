"""The retraining pipeline's contract in template.yaml: triggers, destinations, layers,
environment, permissions and alarms, as the retrainer and the candidate gate rely on them."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from mlops.settings import GateSettings, RetrainerSettings, metrics_namespace
from mlops_cli.emulator.sources.declarations import event_pattern
from mlops_cli.emulator.template import STACK_ID, Resolver, load_template, parameter_defaults
from tests.conftest import ROOT, emits, load_event

TEMPLATE = load_template(ROOT / "template.yaml")
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
RETRAINER = RESOURCES["RetrainerFunction"]["Properties"]
GATE = RESOURCES["CandidateGateFunction"]["Properties"]


def ref(name: str) -> dict[str, str]:
    return {"Ref": name}


def arn(name: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [name, "Arn"]}


def resolver() -> Resolver:
    """Parameters at their defaults; no resource names (what the retrainer's training data
    references must resolve without them)."""
    return Resolver(parameter_defaults(TEMPLATE), TEMPLATE.get("Conditions", {}))


def environment(function: dict[str, Any]) -> dict[str, Any]:
    globals_ = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    return {**globals_, **function["Environment"]["Variables"]}


def statements(function: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in function["Policies"] for s in policy["Statement"]]


def allowed(function: dict[str, Any], action: str) -> list[Any]:
    """Every resource the function's own policies allow ``action`` on."""
    out = []
    for statement in statements(function):
        actions = statement["Action"]
        if action in ([actions] if isinstance(actions, str) else actions):
            resources = statement["Resource"]
            out.extend(resources if isinstance(resources, list) else [resources])
    return out


def test_an_upload_under_the_training_prefix_invokes_the_retrainer() -> None:
    upload = RETRAINER["Events"]["TrainingDataUpload"]
    assert upload["Type"] == "S3"
    assert upload["Properties"] == {
        "Bucket": ref("TrainingDataBucket"),
        "Events": "s3:ObjectCreated:*",
        "Filter": {"S3Key": {"Rules": [{"Name": "prefix", "Value": ref("TrainingDataPrefix")}]}},
    }


def test_the_training_prefix_has_one_source_for_the_filter_the_code_and_the_output() -> None:
    assert environment(RETRAINER)["TRAINING_PREFIX"] == ref("TrainingDataPrefix")
    assert TEMPLATE["Outputs"]["TrainingDataPrefix"]["Value"] == ref("TrainingDataPrefix")
    prefix = TEMPLATE["Parameters"]["TrainingDataPrefix"]["Default"]
    assert prefix == "training-data/"


def test_the_training_bucket_name_is_spelled_the_same_everywhere_it_cannot_be_referenced() -> None:
    # The bucket's notification needs the retrainer, so the retrainer names the bucket
    # instead of !Ref-ing it: every spelling must resolve to the bucket's own BucketName.
    r = resolver()
    bucket = r.resolve(RESOURCES["TrainingDataBucket"]["Properties"]["BucketName"])
    assert bucket == f"mlops-training-data-{STACK_ID.rsplit('/', 1)[1]}"
    assert r.resolve(environment(RETRAINER)["TRAINING_BUCKET"]) == bucket
    assert r.resolve(allowed(RETRAINER, "s3:GetObjectVersion")) == [
        f"arn:aws:s3:::{bucket}/training-data/*"
    ]
    (listing,) = [s for s in statements(RETRAINER) if s["Sid"] == "ListTrainingData"]
    assert r.resolve(listing["Resource"]) == f"arn:aws:s3:::{bucket}"
    assert r.resolve(listing["Condition"]) == {"StringLike": {"s3:prefix": "training-data/*"}}


def _references(value: Any) -> Iterator[str]:
    """Logical ids (and parameters) a value refers to: Ref, GetAtt and ${...} in Sub."""
    if isinstance(value, list):
        for item in value:
            yield from _references(item)
    elif isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref":
                yield str(arg)
            elif key == "Fn::GetAtt":
                yield str(arg[0])
            elif key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else arg
                for name in re.findall(r"\$\{([^}!]+)\}", text):
                    if name not in variables:
                        yield name.split(".", 1)[0]
                yield from _references(variables)
            else:
                yield from _references(arg)


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _dependency_cycle(resources: dict[str, Any]) -> list[str] | None:
    """A function's own properties (its role's policies, its environment, its destinations)
    are its dependencies; SAM puts an S3 event on the bucket, pointing at the function, so the
    bucket depends on the function."""
    graph: dict[str, set[str]] = {}
    for name, resource in resources.items():
        props = {k: v for k, v in resource.get("Properties", {}).items() if k != "Events"}
        graph[name] = {r for r in _references(props) if r in resources}
    for name, resource in resources.items():
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event["Type"] == "S3":
                graph[event["Properties"]["Bucket"]["Ref"]].add(name)
    return _find_cycle(graph)


def test_no_resource_depends_on_itself_once_sam_wires_the_s3_notification() -> None:
    # cfn-lint skips its cycle check (E3004) on SAM templates; CloudFormation would refuse
    # the stack at deploy time.
    assert _dependency_cycle(RESOURCES) is None


def test_referencing_the_training_bucket_from_the_retrainer_would_be_a_cycle() -> None:
    resources = copy.deepcopy(RESOURCES)
    variables = resources["RetrainerFunction"]["Properties"]["Environment"]["Variables"]
    variables["TRAINING_BUCKET"] = ref("TrainingDataBucket")
    cycle = _dependency_cycle(resources)
    assert cycle is not None
    assert set(cycle) == {"RetrainerFunction", "TrainingDataBucket"}


def test_a_retrain_request_for_this_model_on_the_retrain_bus_invokes_the_retrainer() -> None:
    request = RETRAINER["Events"]["RetrainRequest"]
    assert request["Type"] == "EventBridgeRule"
    assert request["Properties"]["EventBusName"] == {"Fn::GetAtt": ["RetrainBus", "Name"]}
    assert RESOURCES["RetrainBus"]["Type"] == "AWS::Events::EventBus"
    pattern = resolver().resolve(request["Properties"]["Pattern"])
    assert pattern == {"detail-type": ["RetrainRequested"], "detail": {"model": ["house-prices"]}}


@pytest.mark.parametrize(
    ("change", "matches"),
    [
        ({}, True),
        ({"detail": {"model": "another-model"}}, False),
        ({"detail-type": "ModelPromoted"}, False),
    ],
)
def test_the_retrain_request_fixture_matches_the_rule(
    change: dict[str, Any], matches: bool
) -> None:
    event = load_event("retrain_request.json")
    for key, value in change.items():
        event[key] = {**event[key], **value} if isinstance(value, dict) else value
    pattern = resolver().resolve(RETRAINER["Events"]["RetrainRequest"]["Properties"]["Pattern"])
    assert event_pattern(json.dumps(pattern), "test").matches_event(event) is matches


def test_the_training_upload_fixture_is_an_upload_the_local_stack_would_deliver() -> None:
    (record,) = load_event("s3_training_upload.json")["Records"]
    bucket = resolver().resolve(RESOURCES["TrainingDataBucket"]["Properties"]["BucketName"])
    assert record["s3"]["bucket"]["name"] == bucket
    assert record["s3"]["object"]["key"].startswith("training-data/")
    assert record["s3"]["object"]["versionId"]  # the bucket is versioned
    assert record["s3"]["configurationId"] == "RetrainerFunctionTrainingDataUpload"


def test_the_retrainers_success_goes_to_the_gate_and_failures_of_both_to_the_queue() -> None:
    assert RETRAINER["EventInvokeConfig"] == {
        "MaximumRetryAttempts": 2,
        "MaximumEventAgeInSeconds": 21600,
        "DestinationConfig": {
            "OnSuccess": {"Type": "Lambda", "Destination": arn("CandidateGateFunction")},
            "OnFailure": {"Type": "SQS", "Destination": arn("RetrainFailures")},
        },
    }
    assert GATE["EventInvokeConfig"] == {
        "MaximumRetryAttempts": 2,
        "MaximumEventAgeInSeconds": 21600,
        "DestinationConfig": {"OnFailure": {"Type": "SQS", "Destination": arn("RetrainFailures")}},
    }
    queue = RESOURCES["RetrainFailures"]["Properties"]
    assert queue == {"SqsManagedSseEnabled": True, "MessageRetentionPeriod": 1209600}


def test_the_retrainer_trains_without_onnxruntime_and_the_gate_runs_the_serving_runtime() -> None:
    assert RETRAINER["Layers"] == [ref("CoreLayer"), ref("TrainingLayer"), ref("ModelCodeLayer")]
    assert GATE["Layers"] == [ref("CoreLayer"), ref("OnnxRuntimeLayer")]
    assert RESOURCES["InferenceFunction"]["Properties"]["Layers"] == GATE["Layers"]
    training, onnx = RESOURCES["TrainingLayer"], RESOURCES["OnnxRuntimeLayer"]
    assert training["Properties"]["ContentUri"] == "layers/training/"
    assert (
        training["Metadata"]
        == onnx["Metadata"]
        == {
            "BuildMethod": "makefile",
            "BuildArchitecture": "arm64",
        }
    )
    for key in ("CompatibleRuntimes", "CompatibleArchitectures"):
        assert training["Properties"][key] == onnx["Properties"][key]
    assert RESOURCES["RetrainerFunction"]["Metadata"]["SizeBudgetMB"] == 250
    assert RESOURCES["CandidateGateFunction"]["Metadata"]["SizeBudgetMB"] == 160


def test_the_retrainers_size_comes_from_parameters() -> None:
    assert RETRAINER["Timeout"] == ref("RetrainerTimeoutSeconds")
    assert RETRAINER["MemorySize"] == ref("RetrainerMemoryMB")
    defaults = parameter_defaults(TEMPLATE)
    assert (defaults["RetrainerTimeoutSeconds"], defaults["RetrainerMemoryMB"]) == (900, 3008)
    assert RETRAINER["ReservedConcurrentExecutions"] == 2


@pytest.mark.parametrize(
    ("function", "variables"),
    [
        (
            RETRAINER,
            {
                "POWERTOOLS_SERVICE_NAME": "retrainer",
                "MODEL_NAME": ref("ModelName"),
                "MODEL_BUCKET": ref("ArtifactsBucket"),
                "CAPTURE_BUCKET": ref("ArtifactsBucket"),
                "REGISTRY_TABLE": ref("RegistryTable"),
                "IDEMPOTENCY_TABLE": ref("IdempotencyTable"),
                "TRAINING_PREFIX": ref("TrainingDataPrefix"),
            },
        ),
        (
            GATE,
            {
                "POWERTOOLS_SERVICE_NAME": "candidate-gate",
                "MODEL_NAME": ref("ModelName"),
                "MODEL_BUCKET": ref("ArtifactsBucket"),
                "REGISTRY_TABLE": ref("RegistryTable"),
                "IDEMPOTENCY_TABLE": ref("IdempotencyTable"),
            },
        ),
    ],
    ids=["retrainer", "gate"],
)
def test_environment_variables_name_real_resources(
    function: dict[str, Any], variables: dict[str, Any]
) -> None:
    env = function["Environment"]["Variables"]
    assert {k: env[k] for k in variables} == variables
    kinds = {
        "ArtifactsBucket": "AWS::S3::Bucket",
        "RegistryTable": "AWS::DynamoDB::Table",
        "IdempotencyTable": "AWS::DynamoDB::Table",
    }
    for name, kind in kinds.items():
        assert RESOURCES[name]["Type"] == kind


def _local_environment(function: dict[str, Any]) -> dict[str, str]:
    r = resolver()
    r.refs.update(
        {
            "ArtifactsBucket": "artifacts",
            "RegistryTable": "registry",
            "IdempotencyTable": "idempotency",
        }
    )
    r.attrs[("TrainingJobRole", "Arn")] = "arn:aws:iam::123456789012:role/training"
    return {k: str(v) for k, v in r.resolve(environment(function)).items()}


def test_the_settings_of_both_functions_load_from_their_template_environment() -> None:
    retrainer = RetrainerSettings.from_env(_local_environment(RETRAINER))
    assert (retrainer.training_prefix, retrainer.idempotency_table) == (
        "training-data/",
        "idempotency",
    )
    gate = GateSettings.from_env(_local_environment(GATE))
    assert (gate.model_name, gate.registry_table) == ("house-prices", "registry")


def test_the_idempotency_table_has_powertools_default_key_and_expiry() -> None:
    table = RESOURCES["IdempotencyTable"]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert table["BillingMode"] == "PAY_PER_REQUEST"


def test_the_rejected_data_alarm_watches_the_metric_the_retrainer_emits() -> None:
    alarm = RESOURCES["TrainingDataRejectedAlarm"]["Properties"]
    env = _local_environment(RETRAINER)
    # Powertools publishes in the namespace the settings read, with a `service` dimension
    assert alarm["Namespace"] == metrics_namespace(env) == "ServerlessMLOps"
    assert alarm["Dimensions"] == [{"Name": "service", "Value": env["POWERTOOLS_SERVICE_NAME"]}]
    assert alarm["MetricName"] == "TrainingDataRejected"
    service = (ROOT / "layers/core/mlops/services/retraining.py").read_text()
    assert emits(service, "TrainingDataRejected")
    assert (alarm["Statistic"], alarm["Threshold"], alarm["Period"]) == ("Sum", 1, 300)
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [ref("AlarmTopic")]


def test_failed_retrainings_alarm_like_failed_captures() -> None:
    alarm = RESOURCES["RetrainFailuresAlarm"]["Properties"]
    capture = RESOURCES["CaptureDeliveryFailuresAlarm"]["Properties"]
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["RetrainFailures", "QueueName"]}}
    ]
    same = ("Namespace", "MetricName", "Statistic", "Threshold", "ComparisonOperator")
    assert {k: alarm[k] for k in same} == {k: capture[k] for k in same}
    assert alarm["AlarmActions"] == [ref("AlarmTopic")]


def test_the_retrainer_stages_but_cannot_register_or_promote() -> None:
    writes = [str(r) for r in allowed(RETRAINER, "s3:PutObject")]
    assert writes
    assert not [w for w in writes if "/models/" in w]
    for action in ("dynamodb:PutItem", "dynamodb:UpdateItem"):
        assert allowed(RETRAINER, action) == [arn("IdempotencyTable")]
        assert arn("RegistryTable") in allowed(GATE, action)
    assert allowed(GATE, "dynamodb:ConditionCheckItem") == [arn("RegistryTable")]


def test_the_pipeline_is_in_the_outputs() -> None:
    outputs = TEMPLATE["Outputs"]
    assert outputs["RetrainBusName"]["Value"] == {"Fn::GetAtt": ["RetrainBus", "Name"]}
    assert outputs["IdempotencyTableName"]["Value"] == ref("IdempotencyTable")
    assert outputs["RetrainerFunctionName"]["Value"] == ref("RetrainerFunction")
    assert outputs["CandidateGateFunctionName"]["Value"] == ref("CandidateGateFunction")
    assert outputs["RetrainFailuresUrl"]["Value"] == ref("RetrainFailures")


def test_only_the_retrainer_carries_the_users_model_code_where_its_variable_points() -> None:
    # Given the template
    with_code = [
        name
        for name, resource in RESOURCES.items()
        if ref("ModelCodeLayer") in resource.get("Properties", {}).get("Layers", [])
    ]
    # Then the retrainer alone imports the factory; the gate checks parity on ONNX only
    assert with_code == ["RetrainerFunction"]
    assert RETRAINER["Environment"]["Variables"]["MODEL_CODE_DIR"] == "/opt/model_code"
    layer = RESOURCES["ModelCodeLayer"]
    assert layer["Properties"]["ContentUri"] == "layers/model_code/"
    assert layer["Metadata"]["BuildMethod"] == "makefile"
