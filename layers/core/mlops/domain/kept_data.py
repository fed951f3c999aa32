"""Data a version was trained from, kept under the training prefix for the loop to use.

``mlops train`` and ``mlops local --data`` train in place, then keep the file under the
training prefix (where uploads go) so that a retrain the drift evaluator requests later has
data. The copy carries these object metadata; its upload notification then names data already
trained, and the retrainer skips it (reported) instead of training the same version twice.
"""

from __future__ import annotations

from collections.abc import Mapping

# S3 user metadata keys (sent as x-amz-meta-<key>; S3 lowercases them).
TRAINED_VERSION = "mlops-trained-version"
DATA_SHA256 = "mlops-data-sha256"


def kept_metadata(version: str, sha256: str) -> dict[str, str]:
    return {TRAINED_VERSION: version, DATA_SHA256: sha256}


def trained_version(metadata: Mapping[str, str], sha256: str) -> str | None:
    """The version ``metadata`` says these bytes trained, if the bytes are the ones it names:
    a marker copied onto other data (``aws s3 cp`` keeps metadata) does not skip that data."""
    version = metadata.get(TRAINED_VERSION)
    return version if version and metadata.get(DATA_SHA256) == sha256 else None
