"""Retention in template.yaml: what the system writes to the artifacts bucket expires after a
number of days each prefix's parameter sets, and the bucket's own rules stay."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_cli.emulator.stack import lifecycle_rules
from mlops_cli.emulator.template import load_template
from tests.conftest import ROOT

TEMPLATE = load_template(ROOT / "template.yaml")
PARAMETERS: dict[str, Any] = TEMPLATE["Parameters"]
BUCKET = TEMPLATE["Resources"]["ArtifactsBucket"]["Properties"]
RULES = {rule["Id"]: rule for rule in BUCKET["LifecycleConfiguration"]["Rules"]}
LAYER = ROOT / "layers/core/mlops"


@pytest.mark.parametrize(
    ("rule", "prefix", "parameter", "default", "writer"),
    [
        (
            "ExpireCaptures",
            "captures/",
            "CapturesRetentionDays",
            90,
            "services/prediction_logger.py",
        ),
        (
            "ExpireFeedback",
            "feedback/",
            "FeedbackRetentionDays",
            400,
            "services/prediction_logger.py",
        ),
        (
            "ExpireQuarantine",
            "quarantine/",
            "QuarantineRetentionDays",
            30,
            "services/prediction_logger.py",
        ),
        ("ExpireSketches", "sketches/", "SketchesRetentionDays", 100, "adapters/sketch_store.py"),
        ("ExpireReports", "reports/", "ReportsRetentionDays", 400, "services/drift.py"),
    ],
)
def test_each_written_prefix_expires_after_its_parameters_days(
    rule: str, prefix: str, parameter: str, default: int, writer: str
) -> None:
    # Given the rule for a prefix the code writes under
    assert prefix in (LAYER / writer).read_text()
    spec = RULES[rule]
    # Then it expires that prefix, and only it, after the parameter's days
    assert spec["Status"] == "Enabled"
    assert spec["Prefix"] == prefix
    assert spec["ExpirationInDays"] == {"Ref": parameter}
    # And the parameter documents its default and why
    assert PARAMETERS[parameter]["Type"] == "Number"
    assert PARAMETERS[parameter]["Default"] == default
    assert PARAMETERS[parameter]["MinValue"] >= 1
    assert len(PARAMETERS[parameter]["Description"]) > 100


def test_labeled_predictions_hold_captured_inputs_and_expire_with_the_captures() -> None:
    assert "labels/model=" in (LAYER / "adapters/label_store.py").read_text()
    rule = RULES["ExpireLabeledPredictions"]
    assert (rule["Status"], rule["Prefix"]) == ("Enabled", "labels/")
    assert rule["ExpirationInDays"] == {"Ref": "CapturesRetentionDays"}


def test_the_buckets_own_rules_stay() -> None:
    versions = RULES["ExpireOldObjectVersions"]
    assert versions["NoncurrentVersionExpiration"] == {"NoncurrentDays": 90}
    assert versions["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert versions["ExpiredObjectDeleteMarker"] is True
    assert "Prefix" not in versions  # the whole bucket
    assert (
        RULES["ExpireStagedCandidates"]["Prefix"],
        RULES["ExpireStagedCandidates"]["ExpirationInDays"],
    ) == ("staging/", 14)


def test_models_config_and_datasets_never_expire() -> None:
    prefixes = [rule.get("Prefix") for rule in RULES.values() if "ExpirationInDays" in rule]
    for kept in ("models/", "config/", "datasets/"):
        assert not any(kept.startswith(p) for p in prefixes if p)


def test_defaults_keep_what_the_evaluator_reads() -> None:
    # Sketches cover the longest drift window; captures the default window plus the default
    # label delay (72 h) and the retrainer's include_feedback days (30)
    longest_window_days = PARAMETERS["DriftWindowHours"]["MaxValue"] / 24
    assert PARAMETERS["SketchesRetentionDays"]["Default"] > longest_window_days
    default_window_days = PARAMETERS["DriftWindowHours"]["Default"] / 24
    assert PARAMETERS["CapturesRetentionDays"]["Default"] > default_window_days + 72 / 24
    assert PARAMETERS["CapturesRetentionDays"]["Default"] > 30


def test_the_local_stack_stores_the_rules_in_the_s3_apis_shape() -> None:
    rules = [
        {"Id": "ExpireOldObjectVersions", "Status": "Enabled",
         "NoncurrentVersionExpiration": {"NoncurrentDays": 90},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
         "ExpiredObjectDeleteMarker": True},
        {"Id": "ExpireCaptures", "Status": "Enabled", "Prefix": "captures/",
         "ExpirationInDays": "90"},  # a resolved parameter is text
    ]  # fmt: skip
    assert lifecycle_rules(rules) == [
        {
            "ID": "ExpireOldObjectVersions",
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "Expiration": {"ExpiredObjectDeleteMarker": True},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 90},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
        },
        {
            "ID": "ExpireCaptures",
            "Status": "Enabled",
            "Filter": {"Prefix": "captures/"},
            "Expiration": {"Days": 90},
        },
    ]
