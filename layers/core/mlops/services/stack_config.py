"""The model config a stack serves: ``config/<model>.toml`` in the artifacts bucket.

``mlops local --config`` and ``mlops train --config`` write it; the retrainer and the drift
evaluator read it, so every function judges the model by the same policy. A stack serving the
shipped model may run without one (the shipped default applies).
"""

from __future__ import annotations

import tomllib
from importlib import resources

from mlops.adapters.model_store import ModelStore
from mlops.domain.config import ModelConfig
from mlops.domain.config_document import parse_config
from mlops.domain.layout import config_key
from mlops.errors import ConfigError, NotFoundError

DEFAULT_CONFIG = "house_prices.toml"


def stack_config(store: ModelStore, model: str) -> ModelConfig:
    """The config of ``model``; ``ConfigError`` (a sentence for a person) when it is missing
    for a model of your own, unreadable, invalid, or describes another model."""
    key = config_key(model)
    try:
        text = store.get_bytes(key).decode("utf-8")
        source = store.uri(key)
    except NotFoundError:
        text = resources.files("mlops.defaults").joinpath(DEFAULT_CONFIG).read_text()
        source = "the shipped default config"
    except UnicodeDecodeError as exc:
        raise ConfigError(f"the model config is not UTF-8 text: {exc.reason}") from exc
    try:
        config = parse_config(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from exc
    if config.name != model:
        raise ConfigError(
            f"{source} describes model {config.name!r}, but this stack serves {model!r}: "
            f"upload its config to {store.uri(key)} (`mlops train --config` does)"
        )
    return config
