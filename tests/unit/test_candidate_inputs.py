"""The parity inputs the retrainer stages for the gate survive S3 exactly: float64 bit for bit,
categorical text as written, scikit-learn's probabilities and labels."""

from __future__ import annotations

import gzip
import json
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from mlops.domain.candidate import (
    ParityCaseInput,
    ParityInputs,
    decode_parity_inputs,
    encode_parity_inputs,
)
from mlops.domain.schema import Feature

FEATURES = (
    Feature("sqft", "numeric"),
    Feature("location", "categorical"),
    Feature("bedrooms", "numeric"),
)
# Floats whose decimal form is where round trips usually break.
AWKWARD_FLOATS = [
    0.1,
    1 / 3,
    -0.0,
    5e-324,  # the smallest subnormal
    2.2250738585072014e-308,
    1.7976931348623157e308,
    float(2**53 + 2),
    123456.78900000001,
    -1e-300,
]
# Text that looks empty, missing, numeric or boolean, and text beyond ASCII.
AWKWARD_TEXT = [
    "",
    " ",
    "None",
    "null",
    "nan",
    "NaN",
    "0",
    "false",
    "__unseen_category__",
    "Zürich",
    "東京",
    "🏠 riverside",
    'quote " and \\ backslash',
    "line\nbreak",
    "\u200b",  # zero-width space
]
N = len(AWKWARD_TEXT)


def bits(values: npt.NDArray[Any]) -> list[int]:
    """float64 values as integers: equal only when bit-identical (0.0 differs from -0.0)."""
    return np.asarray(values, dtype=np.float64).view(np.uint64).ravel().tolist()


def columns(seed: int) -> dict[str, npt.NDArray[Any]]:
    rng = np.random.default_rng(seed)
    sqft = rng.normal(1800, 400, N)
    sqft[: len(AWKWARD_FLOATS)] = AWKWARD_FLOATS
    return {
        "sqft": sqft,
        "location": np.asarray(AWKWARD_TEXT, dtype=object),
        "bedrooms": rng.integers(1, 6, N).astype(np.float64),
    }


def regression_inputs(seed: int = 0) -> ParityInputs:
    rng = np.random.default_rng(seed)
    cases = {
        name: ParityCaseInput(columns(seed + i), rng.normal(300_000, 80_000, N))
        for i, name in enumerate(["holdout", "numeric_at_lower_bound", "unseen_categories"])
    }
    return ParityInputs(cases, holdout_target=rng.normal(300_000, 80_000, N))


def classification_inputs(labels: npt.NDArray[Any], target: npt.NDArray[Any]) -> ParityInputs:
    proba = np.random.default_rng(1).dirichlet(np.ones(3), N)
    case = ParityCaseInput(columns(1), proba, expected_labels=labels)
    return ParityInputs({"holdout": case, "unseen_categories": case}, holdout_target=target)


def round_trip(inputs: ParityInputs, task: str = "regression") -> ParityInputs:
    return decode_parity_inputs(encode_parity_inputs(inputs), FEATURES, task)


def rewritten(data: bytes, change: Any) -> bytes:
    """The encoded document, edited."""
    doc = json.loads(gzip.decompress(data))
    change(doc)
    return gzip.compress(json.dumps(doc).encode())


# --- round trips ---------------------------------------------------------------------------


def test_numeric_columns_round_trip_bit_for_bit() -> None:
    # Given parity inputs whose numeric columns hold awkward float64 values
    inputs = regression_inputs()

    # When they are encoded and decoded
    decoded = round_trip(inputs)

    # Then every numeric value of every case is the same float64, bit for bit
    for name, case in inputs.cases.items():
        for feature in ("sqft", "bedrooms"):
            assert decoded.cases[name].columns[feature].dtype == np.float64
            assert bits(decoded.cases[name].columns[feature]) == bits(case.columns[feature])


def test_regression_expectations_and_target_round_trip_bit_for_bit() -> None:
    # Given scikit-learn's regression outputs and the holdout target
    inputs = regression_inputs()

    # When encoded and decoded
    decoded = round_trip(inputs)

    # Then both are the same float64 values, and there are no labels
    assert bits(decoded.holdout.expected) == bits(inputs.holdout.expected)
    assert bits(decoded.holdout_target) == bits(inputs.holdout_target)
    assert decoded.holdout.expected_labels is None


def test_categorical_text_round_trips_exactly() -> None:
    # Given a categorical column of empty-looking, numeric-looking and non-ASCII values
    inputs = regression_inputs()

    # When encoded and decoded
    location = round_trip(inputs).holdout.columns["location"]

    # Then each value is the same string, in an object column as the scorer takes it
    assert location.dtype == object
    assert [type(v) for v in location] == [str] * N
    assert location.tolist() == AWKWARD_TEXT


def test_case_names_keep_their_order_with_the_holdout_first() -> None:
    # Given the holdout and two edge cases, When encoded and decoded
    decoded = round_trip(regression_inputs())

    # Then the cases come back in the order they were staged
    assert list(decoded.cases) == ["holdout", "numeric_at_lower_bound", "unseen_categories"]


def test_decoded_columns_are_the_features_in_signature_order() -> None:
    # Given cases holding one column more than the signature, in another order
    inputs = regression_inputs()
    for case in inputs.cases.values():
        case.columns["notes"] = np.asarray(["x"] * N, dtype=object)

    # When decoded for the signature
    decoded = round_trip(inputs)

    # Then the columns are exactly the features, in their order
    assert list(decoded.holdout.columns) == ["sqft", "location", "bedrooms"]


def test_classification_probabilities_round_trip_bit_for_bit() -> None:
    # Given scikit-learn's probabilities for three classes
    labels = np.asarray(["a", "b", "c"] * (N // 3), dtype=object)
    inputs = classification_inputs(labels, labels.copy())

    # When encoded and decoded
    decoded = round_trip(inputs, "classification")

    # Then they are the same (rows, classes) float64 matrix, bit for bit
    assert decoded.holdout.expected.shape == (N, 3)
    assert bits(decoded.holdout.expected) == bits(inputs.holdout.expected)


def test_classification_labels_and_target_round_trip_as_text() -> None:
    # Given labels and a target with awkward text
    labels = np.asarray(AWKWARD_TEXT, dtype=object)
    inputs = classification_inputs(labels, labels[::-1].copy())

    # When encoded and decoded
    decoded = round_trip(inputs, "classification")

    # Then labels and target are the same strings
    assert decoded.holdout.expected_labels is not None
    assert decoded.holdout.expected_labels.tolist() == AWKWARD_TEXT
    assert decoded.holdout_target.tolist() == AWKWARD_TEXT[::-1]


def test_integer_labels_come_back_as_their_text() -> None:
    # Given a model whose labels are integers (the gate compares labels as text)
    labels = np.asarray([0, 1, 2] * (N // 3))
    inputs = classification_inputs(labels, labels.copy())

    # When encoded and decoded
    decoded = round_trip(inputs, "classification")

    # Then the predicted labels are their text; the target keeps its values
    assert decoded.holdout.expected_labels is not None
    assert decoded.holdout.expected_labels.tolist() == [str(v) for v in labels]
    assert [str(v) for v in decoded.holdout_target] == [str(v) for v in labels]


# --- the bytes -----------------------------------------------------------------------------


def test_encoding_is_gzip_json() -> None:
    # Given encoded parity inputs
    data = encode_parity_inputs(regression_inputs())

    # Then they are gzip (magic bytes) around a versioned JSON document
    assert data[:2] == b"\x1f\x8b"
    assert json.loads(gzip.decompress(data))["schema_version"] == 1


def test_encoding_is_deterministic() -> None:
    # Given the same inputs built twice
    first, second = regression_inputs(seed=4), regression_inputs(seed=4)

    # When each is encoded
    # Then the bytes are the same (no timestamp in the gzip header, keys in a fixed order)
    assert encode_parity_inputs(first) == encode_parity_inputs(second)


def test_non_finite_values_are_refused_rather_than_written_as_non_json() -> None:
    # Given a numeric column holding NaN
    inputs = regression_inputs()
    inputs.holdout.columns["sqft"][0] = np.nan

    # Then encoding refuses it (JSON has no NaN)
    with pytest.raises(ValueError, match="not JSON compliant"):
        encode_parity_inputs(inputs)


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [2, 0, None, "1"])
def test_unknown_schema_version_is_refused(version: Any) -> None:
    # Given parity inputs written under another schema version
    data = rewritten(
        encode_parity_inputs(regression_inputs()), lambda doc: doc.update(schema_version=version)
    )

    # When they are decoded, Then they are refused, naming the version
    with pytest.raises(ValueError, match=rf"^parity inputs schema {version!r} is not supported$"):
        decode_parity_inputs(data, FEATURES, "regression")


@pytest.mark.parametrize("case", ["holdout", "unseen_categories"])
def test_a_case_missing_a_feature_column_is_refused_naming_it(case: str) -> None:
    # Given parity inputs where one case lacks a feature's column
    data = rewritten(
        encode_parity_inputs(regression_inputs()),
        lambda doc: doc["cases"][case]["columns"].pop("location"),
    )

    # When they are decoded, Then they are refused, naming the column
    with pytest.raises(ValueError, match=r"^parity inputs lack columns \['location'\]$"):
        decode_parity_inputs(data, FEATURES, "regression")


def test_inputs_without_a_holdout_case_are_refused() -> None:
    # Given parity inputs with edge cases but no holdout
    data = rewritten(
        encode_parity_inputs(regression_inputs()), lambda doc: doc["cases"].pop("holdout")
    )

    # When they are decoded, Then they are refused (no holdout, no metrics)
    with pytest.raises(ValueError, match=r"^parity inputs have no holdout case$"):
        decode_parity_inputs(data, FEATURES, "regression")
