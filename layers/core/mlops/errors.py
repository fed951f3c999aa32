"""The project's one error tree.

Every error we raise on purpose derives from ``MlopsError``. HTTP handlers map these to
status codes in exactly one place (``mlops.http``); everything else lets them propagate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, addressed by a JSON-path-like field name."""

    field: str
    problem: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "problem": self.problem}


class MlopsError(Exception):
    """Base of every error the project raises on purpose."""

    code = "internal_error"

    def __init__(self, message: str, details: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def __str__(self) -> str:
        if not self.details:
            return self.message
        listed = "; ".join(f"{p.field}: {p.problem}" for p in self.details[:5])
        more = f" (+{len(self.details) - 5} more)" if len(self.details) > 5 else ""
        return f"{self.message}: {listed}{more}"


class InvalidInputError(MlopsError):
    """A request or its content does not match what the model accepts."""

    code = "invalid_input"


class InvalidEventError(InvalidInputError):
    """The function was invoked with an event of a shape it does not handle."""

    code = "invalid_event"


class PayloadTooLargeError(MlopsError):
    """Too many instances or too many bytes in one request."""

    code = "payload_too_large"


class UnsupportedMediaTypeError(MlopsError):
    """The request body is not JSON."""

    code = "unsupported_media_type"


class NotFoundError(MlopsError):
    """A route, model version or alias that does not exist."""

    code = "not_found"


class ModelUnavailableError(MlopsError):
    """No model can be loaded to serve the request."""

    code = "model_unavailable"


class IntegrityError(ModelUnavailableError):
    """An artifact whose sha256 does not match its manifest: never loaded."""

    code = "model_unavailable"


class StorageError(MlopsError):
    """S3 or DynamoDB failed; raised by adapters from ``ClientError``."""

    code = "storage_error"


class ConflictError(MlopsError):
    """A conditional write lost a race (an alias moved under us, a version exists)."""

    code = "conflict"


class ConfigError(MlopsError):
    """The model config file or the function's environment is wrong."""

    code = "config_error"


class DataValidationError(MlopsError):
    """Training data was rejected; ``details`` lists the problems and ``report`` (when the
    data was inspected) is the full data report as JSON-ready dict."""

    code = "invalid_training_data"

    def __init__(
        self,
        message: str,
        details: list[Problem] | None = None,
        *,
        report: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, details)
        self.report = report


class ParityError(MlopsError):
    """The ONNX export does not reproduce the scikit-learn model within tolerance."""

    code = "parity_failed"


class ModelCodeError(ConfigError):
    """The user's model code (the config's ``[estimator] factory``) cannot give a model we can
    train and export: it does not import, raises, returns no estimator, fails to fit, or has a
    step skl2onnx cannot convert. The message names the factory (or the step) and the fix."""

    code = "model_code_error"
