"""The inference function's settings: required names fail fast, numbers are checked, and the
AWS clients' worst-case retry budget fits inside the function timeout in template.yaml."""

from __future__ import annotations

import pytest

from mlops.adapters.aws import CLIENT_CONFIG
from mlops.errors import ConfigError
from mlops.settings import DEFAULT_METRICS_NAMESPACE, InferenceSettings, metrics_namespace
from mlops_cli.emulator.template import load_template
from tests.conftest import ROOT

REQUIRED = {"MODEL_NAME": "house-prices", "MODEL_BUCKET": "artifacts", "REGISTRY_TABLE": "registry"}
FLOAT_VARIABLES = ("ALIAS_REFRESH_SECONDS", "ALIAS_REFRESH_WAIT_SECONDS", "MODEL_LOAD_WAIT_SECONDS")
INTEGER_VARIABLES = ("MAX_INSTANCES", "MAX_BODY_BYTES")
NUMERIC_VARIABLES = FLOAT_VARIABLES + INTEGER_VARIABLES
FIELD = {
    "ALIAS_REFRESH_SECONDS": "alias_refresh_seconds",
    "ALIAS_REFRESH_WAIT_SECONDS": "alias_refresh_wait_seconds",
    "MODEL_LOAD_WAIT_SECONDS": "model_load_wait_seconds",
    "MAX_INSTANCES": "max_instances",
    "MAX_BODY_BYTES": "max_body_bytes",
}


def test_the_required_variables_become_the_resource_names() -> None:
    settings = InferenceSettings.from_env(REQUIRED)
    assert settings.model_name == "house-prices"
    assert settings.model_bucket == "artifacts"
    assert settings.registry_table == "registry"


def test_optional_variables_take_their_defaults_when_absent() -> None:
    settings = InferenceSettings.from_env(REQUIRED)
    assert settings.model_alias == "production"
    assert settings.alias_refresh_seconds == 30.0
    assert settings.alias_refresh_wait_seconds == 0.1
    assert settings.max_instances == 1000
    assert settings.max_body_bytes == 1_048_576


@pytest.mark.parametrize("name", NUMERIC_VARIABLES)
@pytest.mark.parametrize("blank", ["", "   "])
def test_a_blank_numeric_variable_takes_its_default(name: str, blank: str) -> None:
    settings = InferenceSettings.from_env({**REQUIRED, name: blank})
    defaults = InferenceSettings.from_env(REQUIRED)
    assert getattr(settings, FIELD[name]) == getattr(defaults, FIELD[name])


@pytest.mark.parametrize("name", sorted(REQUIRED))
@pytest.mark.parametrize("value", [None, "", "  \t"], ids=["missing", "empty", "blank"])
def test_a_missing_or_blank_required_variable_fails_with_its_name(
    name: str, value: str | None
) -> None:
    env = {k: v for k, v in REQUIRED.items() if k != name}
    if value is not None:
        env[name] = value
    with pytest.raises(ConfigError, match=name):
        InferenceSettings.from_env(env)


@pytest.mark.parametrize("name", NUMERIC_VARIABLES)
@pytest.mark.parametrize("raw", ["abc", "10s", "1,5", "0x10"])
def test_a_non_numeric_variable_fails_naming_the_variable_and_the_value(
    name: str, raw: str
) -> None:
    with pytest.raises(ConfigError, match=name) as caught:
        InferenceSettings.from_env({**REQUIRED, name: raw})
    assert repr(raw) in str(caught.value)


@pytest.mark.parametrize("name", NUMERIC_VARIABLES)
@pytest.mark.parametrize("raw", ["0", "-1", "0.0", "-0.001"])
def test_zero_and_negative_numbers_are_refused(name: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=name) as caught:
        InferenceSettings.from_env({**REQUIRED, name: raw})
    assert repr(raw) in str(caught.value)


@pytest.mark.parametrize("name", FLOAT_VARIABLES)
def test_the_smallest_positive_interval_is_accepted(name: str) -> None:
    settings = InferenceSettings.from_env({**REQUIRED, name: "0.001"})
    assert getattr(settings, FIELD[name]) == 0.001


@pytest.mark.parametrize("name", INTEGER_VARIABLES)
def test_one_is_the_smallest_accepted_count(name: str) -> None:
    settings = InferenceSettings.from_env({**REQUIRED, name: "1"})
    assert getattr(settings, FIELD[name]) == 1


@pytest.mark.parametrize("name", INTEGER_VARIABLES)
def test_a_fractional_count_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        InferenceSettings.from_env({**REQUIRED, name: "0.5"})


@pytest.mark.parametrize("name", NUMERIC_VARIABLES)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_values_are_refused(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        InferenceSettings.from_env({**REQUIRED, name: value})


def test_a_blank_model_alias_falls_back_to_production() -> None:
    settings = InferenceSettings.from_env({**REQUIRED, "MODEL_ALIAS": " "})
    assert settings.model_alias == "production"


@pytest.mark.parametrize("name", INTEGER_VARIABLES)
def test_a_whole_number_written_as_a_float_is_accepted(name: str) -> None:
    assert getattr(InferenceSettings.from_env({**REQUIRED, name: "2.0"}), FIELD[name]) == 2


@pytest.mark.parametrize("value", [None, "", "  "], ids=["unset", "empty", "blank"])
def test_the_metrics_namespace_falls_back_when_unset_or_blank(value: str | None) -> None:
    env = {} if value is None else {"POWERTOOLS_METRICS_NAMESPACE": value}
    assert metrics_namespace(env) == DEFAULT_METRICS_NAMESPACE == "ServerlessMLOps"


def test_the_metrics_namespace_comes_from_the_environment() -> None:
    assert metrics_namespace({"POWERTOOLS_METRICS_NAMESPACE": "Team/Prices"}) == "Team/Prices"


def test_the_clients_worst_case_retries_fit_inside_the_function_timeout() -> None:
    # Given the functions' timeout from template.yaml (a function may override Globals)
    template = load_template(ROOT / "template.yaml")
    global_timeout = template["Globals"]["Function"]["Timeout"]

    def seconds(value: object) -> int:  # a number, or a parameter's default
        if isinstance(value, dict):
            return int(template["Parameters"][value["Ref"]]["Default"])
        return int(value)  # type: ignore[call-overload]

    functions = {
        name: seconds(resource.get("Properties", {}).get("Timeout", global_timeout))
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert functions, "template.yaml declares no functions"
    # And the serving clients' retry policy and socket timeouts
    # (botocore sets Config's options as instance attributes, untyped: read them from vars())
    options = vars(CLIENT_CONFIG)
    retries = options["retries"] or {}
    assert "total_max_attempts" in retries or "max_attempts" in retries, (
        "set the retry count explicitly: botocore's default depends on the retry mode"
    )
    attempts = retries.get("total_max_attempts", retries.get("max_attempts", 0) + 1)
    per_attempt = options["connect_timeout"] + options["read_timeout"]
    # Then a hung dependency (every attempt times out) still answers before Lambda kills us
    for name, timeout in functions.items():
        assert attempts * per_attempt < timeout, (
            f"{name}: {attempts} attempts x {per_attempt} s >= Timeout {timeout} s"
        )


@pytest.mark.parametrize(("value", "expected"), [("0", 0.0), ("1", 1.0), ("0.25", 0.25)])
def test_the_capture_sample_rate_is_a_share_from_0_to_1(value: str, expected: float) -> None:
    settings = InferenceSettings.from_env({**REQUIRED, "CAPTURE_SAMPLE_RATE": value})
    assert settings.capture_sample_rate == expected


@pytest.mark.parametrize("value", ["-0.01", "1.01", "nan", "all"])
def test_a_capture_sample_rate_outside_0_to_1_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="CAPTURE_SAMPLE_RATE"):
        InferenceSettings.from_env({**REQUIRED, "CAPTURE_SAMPLE_RATE": value})
