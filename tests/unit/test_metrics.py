"""The gate's numpy metrics reproduce scikit-learn's on the same data.

Tolerances: ``rtol=1e-12`` where both compute the same float64 sums (summation order may differ);
``rtol=1e-6`` only against scikit-learn fed float32 probabilities, which it scores in float32.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from sklearn import metrics as skm
from sklearn.dummy import DummyClassifier, DummyRegressor

from mlops.domain.metrics import classification_metrics, naive_predictions, regression_metrics

SAME_SUMS = 1e-12  # float64 on both sides; only the order of additions may differ


def regression_data(seed: int, n: int = 400) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    rng = np.random.default_rng(seed)
    y = rng.normal(300_000, 80_000, n)
    return y, y + rng.normal(0, 20_000, n)


def probabilities(seed: int, n: int, k: int) -> npt.NDArray[np.float32]:
    """Rows of float32 probabilities, as onnxruntime returns them: each sums to 1 only to
    within float32 rounding."""
    return np.random.default_rng(seed).dirichlet(np.ones(k), n).astype(np.float32)


def sklearn_log_loss(y: Any, proba: Any, labels: Any) -> float:
    with warnings.catch_warnings():  # float32 rows do not sum to 1 within float64 precision
        warnings.simplefilter("ignore", UserWarning)
        return float(skm.log_loss(y, proba, labels=labels))


def sklearn_f1_macro(y: Any, predicted: Any) -> float:
    with warnings.catch_warnings():  # a label with no predicted sample: F1 0, with a warning
        warnings.simplefilter("ignore", skm._classification.UndefinedMetricWarning)
        return float(skm.f1_score(y, predicted, average="macro"))


# --- regression ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    ("name", "reference"),
    [
        ("rmse", skm.root_mean_squared_error),
        ("mae", skm.mean_absolute_error),
        ("r2", skm.r2_score),
        ("mape", skm.mean_absolute_percentage_error),
    ],
)
def test_regression_metric_matches_sklearn(name: str, reference: Any, seed: int) -> None:
    # Given seeded random targets and noisy predictions
    y, predicted = regression_data(seed)

    # When the gate scores them
    ours = regression_metrics(y, predicted)[name]

    # Then scikit-learn gets the same number
    assert ours == pytest.approx(reference(y, predicted), rel=SAME_SUMS)


@pytest.mark.parametrize("constant", [0.0, 3.0, 250_000.0])
def test_r2_of_a_constant_target_predicted_exactly_is_one(constant: float) -> None:
    # Given a holdout whose target never varies, and a model that predicts it exactly
    y = np.full(20, constant)

    # When r2 is computed
    r2 = regression_metrics(y, y.copy())["r2"]

    # Then it is 1, as scikit-learn says
    assert r2 == skm.r2_score(y, y) == 1.0


@pytest.mark.parametrize("constant", [0.0, 3.0, 250_000.0])
def test_r2_of_a_constant_target_predicted_inexactly_is_zero(constant: float) -> None:
    # Given a constant target and predictions that miss it by a little
    y = np.full(20, constant)
    predicted = y + 0.5

    # When r2 is computed
    r2 = regression_metrics(y, predicted)["r2"]

    # Then it is 0 (not -inf, not NaN), as scikit-learn says
    assert r2 == skm.r2_score(y, predicted) == 0.0


def test_mape_with_zero_targets_divides_by_epsilon_like_sklearn() -> None:
    # Given targets that include zeros
    y = np.array([0.0, 1.0, 2.0, 0.0, -4.0])
    predicted = np.array([0.5, 1.0, 2.5, 0.0, -3.0])

    # When MAPE is computed
    mape = regression_metrics(y, predicted)["mape"]

    # Then it is finite and equals scikit-learn's (which divides by eps where y is 0)
    assert math.isfinite(mape)
    assert mape == pytest.approx(skm.mean_absolute_percentage_error(y, predicted), rel=SAME_SUMS)


# --- classification ------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", ["accuracy", "f1_macro", "log_loss", "roc_auc"])
def test_multiclass_metric_matches_sklearn(name: str, seed: int) -> None:
    # Given three classes, every one of them in the holdout, and float32 probabilities
    classes = ("high", "low", "mid")  # sorted, as scikit-learn orders its columns
    rng = np.random.default_rng(seed)
    y = rng.choice(np.array(classes), 300)
    proba = probabilities(seed, 300, 3)
    predicted = np.asarray(classes)[proba.argmax(axis=1)]
    reference = {
        "accuracy": lambda: skm.accuracy_score(y, predicted),
        "f1_macro": lambda: sklearn_f1_macro(y, predicted),
        "log_loss": lambda: sklearn_log_loss(y, proba.astype(np.float64), list(classes)),
        "roc_auc": lambda: skm.roc_auc_score(
            y, proba.astype(np.float64), multi_class="ovr", labels=list(classes)
        ),
    }[name]()

    # When the gate scores the predictions
    ours = classification_metrics(y, predicted, proba, classes)[name]

    # Then scikit-learn gets the same number (OvR macro for ROC-AUC)
    assert ours == pytest.approx(reference, rel=SAME_SUMS)


def test_log_loss_of_float32_rows_matches_sklearn_scoring_them_in_float32() -> None:
    # Given float32 probabilities whose rows do not sum to exactly 1
    y = np.random.default_rng(3).choice(np.array(["a", "b", "c"]), 500)
    proba = probabilities(3, 500, 3)
    assert not np.all(proba.astype(np.float64).sum(axis=1) == 1.0)

    # When the gate computes the log loss
    ours = classification_metrics(y, y, proba, ("a", "b", "c"))["log_loss"]

    # Then it agrees with scikit-learn on the float32 array to float32 precision
    assert ours == pytest.approx(sklearn_log_loss(y, proba, ["a", "b", "c"]), rel=1e-6)


def test_log_loss_with_a_zero_probability_for_the_true_label_is_finite() -> None:
    # Given a model certain of the wrong class on one row (probability 0 for the true label)
    y = np.array(["a", "b", "a", "b"])
    proba = np.array([[1.0, 0.0], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]], dtype=np.float32)

    # When the gate computes the log loss
    ours = classification_metrics(y, ["b", "b", "a", "b"], proba, ("a", "b"))["log_loss"]

    # Then it is finite: clipped as scikit-learn clips float64 probabilities
    assert math.isfinite(ours)
    reference = sklearn_log_loss(y, proba.astype(np.float64), ["a", "b"])
    assert ours == pytest.approx(reference, rel=SAME_SUMS)


def test_binary_roc_auc_with_tied_scores_matches_sklearn() -> None:
    # Given binary labels and scores rounded to one decimal: many ties across both classes
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 400)
    positive = np.clip(np.round(0.3 * y + rng.uniform(0, 0.7, 400), 1), 0.0, 1.0)
    proba = np.column_stack([1.0 - positive, positive])
    assert len(np.unique(positive)) < 15

    # When the gate computes ROC-AUC
    ours = classification_metrics(y, (positive > 0.5).astype(int), proba, (0, 1))["roc_auc"]

    # Then ties count half, as in scikit-learn's trapezoidal AUC
    assert ours == pytest.approx(skm.roc_auc_score(y, positive), rel=SAME_SUMS)


def test_binary_roc_auc_does_not_depend_on_the_order_of_the_classes() -> None:
    # Given a model whose classes are listed ("yes", "no"), not in scikit-learn's sorted order
    rng = np.random.default_rng(10)
    y = rng.choice(np.array(["no", "yes"]), 300)
    p_yes = np.round(np.clip(0.3 * (y == "yes") + rng.uniform(0, 0.7, 300), 0, 1), 2)
    proba = np.column_stack([p_yes, 1.0 - p_yes])

    # When the gate computes ROC-AUC
    ours = classification_metrics(y, y, proba, ("yes", "no"))["roc_auc"]

    # Then it is scikit-learn's AUC of P(yes) for the positive class "yes"
    assert ours == pytest.approx(skm.roc_auc_score(y, p_yes), rel=SAME_SUMS)


def test_roc_auc_is_absent_when_a_class_is_missing_from_the_holdout() -> None:
    # Given three classes of which the holdout holds only two
    y = np.array(["a", "b", "a", "b"])
    proba = probabilities(5, 4, 3)

    # When the gate scores the model
    scores = classification_metrics(y, y, proba, ("a", "b", "c"))

    # Then ROC-AUC (undefined for class c) is left out, the other metrics are not
    assert "roc_auc" not in scores
    assert set(scores) == {"accuracy", "f1_macro", "log_loss"}


def test_f1_macro_counts_a_label_that_only_the_predictions_hold() -> None:
    # Given predictions naming a class the holdout never has
    y = np.array(["a", "a", "b", "b", "b"])
    predicted = np.array(["a", "c", "b", "b", "c"])

    # When macro F1 is computed
    ours = classification_metrics(y, predicted, probabilities(6, 5, 3), ("a", "b", "c"))

    # Then class c counts with F1 0, as in scikit-learn (labels from both y and predictions)
    assert ours["f1_macro"] == pytest.approx(sklearn_f1_macro(y, predicted), rel=SAME_SUMS)
    assert ours["f1_macro"] == pytest.approx((2 / 3 + 0.8 + 0.0) / 3, rel=SAME_SUMS)


def test_f1_macro_counts_a_class_never_predicted_as_zero() -> None:
    # Given a holdout class the model never predicts
    y = np.array(["a", "b", "c", "c", "a"])
    predicted = np.array(["a", "b", "a", "b", "a"])

    # When macro F1 is computed
    ours = classification_metrics(y, predicted, probabilities(7, 5, 3), ("a", "b", "c"))

    # Then class c scores 0 and is averaged in, as in scikit-learn
    assert ours["f1_macro"] == pytest.approx(sklearn_f1_macro(y, predicted), rel=SAME_SUMS)
    assert ours["f1_macro"] == pytest.approx((0.8 + 2 / 3 + 0.0) / 3, rel=SAME_SUMS)


def test_integer_classes_and_text_labels_score_as_the_same_labels() -> None:
    # Given classes the model reports as integers, a holdout read from CSV as text, and
    # predictions the model answers as integers
    rng = np.random.default_rng(8)
    y_int = rng.integers(0, 2, 200)
    proba = probabilities(8, 200, 2)
    predicted = proba.argmax(axis=1)

    # When the same rows are scored with text and with integer targets
    as_text = classification_metrics([str(v) for v in y_int], predicted, proba, (0, 1))
    as_int = classification_metrics(y_int, predicted, proba, (0, 1))

    # Then every metric is the same, and is scikit-learn's on the integers
    assert as_text == as_int
    assert as_text["accuracy"] == skm.accuracy_score(y_int, predicted)
    assert as_text["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y_int, proba[:, 1].astype(np.float64)), rel=SAME_SUMS
    )


# --- naive baseline ------------------------------------------------------------------------


def test_naive_regression_predicts_the_mean_like_dummy_regressor() -> None:
    # Given a regression target
    y, _ = regression_data(9, n=50)

    # When the naive predictions are made
    predicted, proba = naive_predictions("regression", y, ())

    # Then they are scikit-learn's DummyRegressor (mean) predictions, with no probabilities
    expected = DummyRegressor(strategy="mean").fit(np.zeros((50, 1)), y).predict(np.zeros((50, 1)))
    np.testing.assert_allclose(predicted, expected, rtol=SAME_SUMS)
    assert proba is None


def test_naive_classification_predicts_the_prior_like_dummy_classifier() -> None:
    # Given an imbalanced three-class target
    y = np.array(["a"] * 5 + ["b"] * 12 + ["c"] * 3)
    x = np.zeros((len(y), 1))
    dummy = DummyClassifier(strategy="prior").fit(x, y)

    # When the naive predictions are made
    predicted, proba = naive_predictions("classification", y, ("a", "b", "c"))

    # Then they are the majority class and the class shares, as DummyClassifier(prior) says
    assert predicted.tolist() == dummy.predict(x).tolist()
    assert proba is not None
    np.testing.assert_allclose(proba, dummy.predict_proba(x), rtol=SAME_SUMS)


def test_naive_classification_labels_are_text_for_integer_classes() -> None:
    # Given integer classes and a text target
    y = ["1", "0", "1", "1"]

    # When the naive predictions are made
    predicted, proba = naive_predictions("classification", y, (0, 1))

    # Then the majority label is given as text, the shares in the classes' order
    assert predicted.tolist() == ["1"] * 4
    assert proba is not None
    assert proba[0].tolist() == [0.25, 0.75]
