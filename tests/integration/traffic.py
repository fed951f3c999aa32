"""Labeled production traffic written through the prediction logger's real code path: the
capture and feedback objects the retrainer and the gate read, as the logger stores them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mlops.adapters.capture_store import CaptureStore
from mlops.adapters.model_store import ModelStore
from mlops.domain import capture
from mlops.domain.ids import uuid7s
from mlops.services.prediction_logger import LogEvent, PredictionLoggerService
from mlops_cli.emulator.sources.logs import log_event_id
from tests.conftest import BUCKET

MODEL = "house-prices"


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass
class Traffic:
    """Requests and labels sent through the prediction logger's real code path."""

    logger: PredictionLoggerService
    s3: Any

    @classmethod
    def in_bucket(cls, s3: Any, bucket: str = BUCKET, model: str = MODEL) -> Traffic:
        # No baseline is stored: the logger writes rows, not sketches, which is all we read.
        logger = PredictionLoggerService(
            CaptureStore(bucket, s3), ModelStore(bucket, s3), model_name=model
        )
        return cls(logger, s3)

    def predict(
        self,
        when: datetime,
        houses: list[dict[str, Any]],
        version: str = "1",
        *,
        predictions: list[float] | None = None,
        variant: str | None = None,
        ids: list[str] | None = None,
    ) -> list[str]:
        ids = ids or uuid7s(ms(when), len(houses))  # as the inference function issues them
        lines = capture.capture_lines(
            model=MODEL,
            version=version,
            alias="production",
            variant=variant,
            request_id=str(uuid.uuid4()),
            timestamp_ms=ms(when),
            latency_ms=0.2,
            instances=houses,
            prediction_ids=ids,
            predictions=list(predictions) if predictions is not None else [300_000.0] * len(houses),
            probabilities=None,
        )
        self._store(when, lines)
        return ids

    def label(self, when: datetime, labels: dict[str, Any], model: str = MODEL) -> None:
        items = [{"prediction_id": pid, "actual": actual} for pid, actual in labels.items()]
        self._store(when, capture.feedback_line(model=model, timestamp_ms=ms(when), items=items))

    def labeled(self, when: datetime, houses: list[dict[str, Any]], target: str) -> None:
        """``houses`` (with their ``target``) predicted at ``when`` and labeled a minute on."""
        inputs = [{k: v for k, v in house.items() if k != target} for house in houses]
        ids = self.predict(when, inputs)
        later = datetime.fromtimestamp(ms(when) / 1000 + 60, when.tzinfo)
        self.label(later, {pid: house[target] for pid, house in zip(ids, houses, strict=True)})

    def _store(self, when: datetime, lines: list[str]) -> None:
        events = [LogEvent(log_event_id(ms(when)), ms(when), line) for line in lines]
        self.logger.store_batch(events)
