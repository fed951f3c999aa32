"""``mlops demo``: the main job on the local stack.

For now: start the stack (training v1 on month 0 of the synthetic market), then serve months of
traffic through the HTTP API and measure live error against the true prices, showing how the
model degrades as the market moves. Retraining, drift and canaries join as they are built.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from mlops.domain.synthetic import conditions_for_month, generate
from mlops_cli.local.runner import start_local
from mlops_cli.local.stack import free_port

MONTHS = 6
ROWS_PER_MONTH = 400
BATCH = 100


def post(url: str, body: Any, content_type: str = "application/json") -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"content-type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def instances(
    columns: dict[str, Any], features: list[str], start: int, stop: int
) -> list[dict[str, Any]]:
    """Rows as a client sends them, with the features the served model's signature names."""
    return [
        {
            name: (
                str(columns[name][i]) if columns[name].dtype == object else float(columns[name][i])
            )
            for name in features
        }
        for i in range(start, stop)
    ]


def run_demo(template: Path, port: int = 0, quiet: bool = False) -> dict[str, Any]:
    say = (lambda *_: None) if quiet else print
    started = time.monotonic()
    say("Starting the local stack (moto on 127.0.0.1, resources from template.yaml)...")
    running = start_local(template, port=port or free_port(), quiet_functions=True)
    url = running.api.url
    try:
        _, model = get(f"{url}/model")
        say(
            f"Serving {model['model_name']} v{model['model_version']} at {url} "
            f"(holdout RMSE {model['metrics']['rmse']:,.0f}, "
            f"{len(model['signature']['features'])} features)"
        )
        features = [f["name"] for f in model["signature"]["features"]]
        months = []
        say(
            f"\n{'month':>5}  {'rows':>5}  {'live RMSE':>10}  {'MAPE':>6}  {'unseen cat.':>11}  "
            "example"
        )
        for month in range(MONTHS):
            columns = generate(ROWS_PER_MONTH, conditions_for_month(month), seed=1000 + month)
            predictions: list[float] = []
            for start in range(0, ROWS_PER_MONTH, BATCH):
                status, body = post(
                    f"{url}/predict",
                    {"instances": instances(columns, features, start, start + BATCH)},
                )
                if status != 200:
                    raise RuntimeError(f"/predict answered {status}: {body}")
                predictions.extend(body["predictions"])
            actual = columns["price"]
            errors = np.asarray(predictions) - actual
            rmse = float(math.sqrt(np.mean(errors**2)))
            mape = float(np.mean(np.abs(errors) / actual))
            known = set(
                next(
                    f["categories"]
                    for f in model["signature"]["features"]
                    if f["name"] == "location"
                )
            )
            unseen = float(np.mean([loc not in known for loc in columns["location"]]))
            months.append(
                {
                    "month": month,
                    "rows": ROWS_PER_MONTH,
                    "live_rmse": rmse,
                    "mape": mape,
                    "unseen_location_share": unseen,
                    "serving_version": model["model_version"],
                }
            )
            example = (
                f"{int(columns['sqft'][0])} sqft {columns['location'][0]}: "
                f"predicted {predictions[0]:,.0f}, sold {actual[0]:,.0f}"
            )
            say(
                f"{month:>5}  {ROWS_PER_MONTH:>5}  {rmse:>10,.0f}  {mape:>6.1%}  "
                f"{unseen:>11.0%}  {example}"
            )
        status, error = post(f"{url}/predict", {"instances": [{"sqft": "big"}]})
        say(
            f"\nA bad request gets a {status} naming the fields: "
            f"{json.dumps(error['error']['details'][:2])}"
        )
        degradation = months[-1]["live_rmse"] / months[0]["live_rmse"]
        say(
            f"\nLive RMSE grew {degradation:.1f}x from month 0 to month {MONTHS - 1} while the "
            "market moved: this is the drift the rest of the pipeline exists to catch."
        )
    finally:
        running.stop()
    return {
        "model_version": model["model_version"],
        "holdout_rmse": model["metrics"]["rmse"],
        "months": months,
        "bad_request_status": status,
        "rmse_growth": degradation,
        "seconds": round(time.monotonic() - started, 1),
    }
