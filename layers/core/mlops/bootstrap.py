"""Composition root: builds each function's service from its settings, once per container."""

from __future__ import annotations

import functools

from mlops.adapters.aws import client
from mlops.adapters.model_store import ModelStore
from mlops.adapters.registry import Registry
from mlops.services.inference import InferenceService
from mlops.services.model_provider import ModelProvider
from mlops.settings import inference_settings


@functools.cache
def inference_service() -> InferenceService:
    settings = inference_settings()
    provider = ModelProvider(
        model_name=settings.model_name,
        alias=settings.model_alias,
        registry=Registry(settings.registry_table, client("dynamodb")),
        store=ModelStore(settings.model_bucket, client("s3")),
        refresh_seconds=settings.alias_refresh_seconds,
        refresh_wait_seconds=settings.alias_refresh_wait_seconds,
        load_wait_seconds=settings.model_load_wait_seconds,
    )
    return InferenceService(
        provider,
        max_instances=settings.max_instances,
        capture_sample_rate=settings.capture_sample_rate,
    )
