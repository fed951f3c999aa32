"""A canary end to end on the local stack, as on AWS: an upload retrains v2, the gate starts a
canary instead of promoting, parallel clients keep calling /predict through the canary and the
swap, labels arrive through /feedback, and the drift evaluator's schedule (fired every few
seconds) promotes v2 on what live traffic shows. The operator's view through `mlops status`."""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from importlib import resources
from typing import Any

import numpy as np
import pytest

from mlops.domain.config_document import load_config
from mlops.domain.synthetic import conditions_for_month, csv_bytes, generate
from tests.e2e.conftest import Running, mlops, start_local
from tests.e2e.test_retrain_loop import client, eventually, get, production, upload

pytestmark = pytest.mark.e2e

FEATURES = load_config().feature_names  # the shipped house-prices model's
CONFIG = """
[rollout]
mode = "canary"
canary_percent = 50.0
min_bake_minutes = 0
min_requests = 100
min_labels = 40
# The local stack shares two cores with the test's clients (and CI with another test): its
# latencies say little about the models, so only a gross slowdown counts here.
latency_slack_ms = 250.0

[drift]
cooldown_hours = 0.0
"""


def post(url: str, body: Any) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        return exc.code, dict(json.loads(exc.read()))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    cwd = tmp_path_factory.mktemp("rollout")
    shipped = resources.files("mlops.defaults").joinpath("house_prices.toml").read_text()
    base = shipped.split("\n[rollout]")[0].replace("max_iter = 200", "max_iter = 60")
    # MAPE, as the demo: on a few hundred sales RMSE is set by the dearest houses, and a
    # canary's interval stays too wide to prove anything within a test's minute.
    base = base.replace('metric = "rmse"', 'metric = "mape"')
    # No labels yet when month 4 is uploaded: its golden-set loss (month 0's market) would hold
    # it as a shadow; this test is about the canary, so the golden set is only informative.
    base = base.replace("max_reference_degradation = 0.05", "max_reference_degradation = 100.0")
    (cwd / "model.toml").write_text(base + CONFIG)
    (cwd / "month0.csv").write_bytes(csv_bytes(generate(2000, conditions_for_month(0), seed=0)))
    running = start_local(
        cwd, "--config", "model.toml", "--data", "month0.csv", "--schedule-seconds", "4"
    )
    yield running
    running.process.send_signal(signal.SIGINT)
    running.process.wait(timeout=30)


@pytest.fixture(scope="module")
def state(stack: Running) -> dict[str, Any]:
    return dict(json.loads((stack.cwd / ".mlops" / "local.json").read_text()))


def rollout_item(state: dict[str, Any]) -> dict[str, Any] | None:
    item = client(state, "dynamodb").get_item(
        TableName=state["outputs"]["RegistryTableName"],
        Key={"pk": {"S": "model#house-prices"}, "sk": {"S": "alias#candidate"}},
        ConsistentRead=True,
    )
    return item.get("Item")


def latest_rollout_report(state: dict[str, Any]) -> dict[str, Any] | None:
    """The evaluator's newest verdict on the rollout: why it waited or rolled back."""
    s3 = client(state, "s3")
    bucket = state["outputs"]["ArtifactsBucketName"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="reports/rollout/").get("Contents", [])
    if not listed:
        return None
    key = max(o["Key"] for o in listed)
    doc = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return {"decision": doc["decision"], "reasons": doc["reasons"]}


class Clients:
    """Parallel clients asking for the same house until stopped, recording every answer."""

    def __init__(self, url: str, instance: dict[str, Any], threads: int = 4) -> None:
        self.answers: list[tuple[int, dict[str, Any]]] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(url, instance), daemon=True)
            for _ in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def _run(self, url: str, instance: dict[str, Any]) -> None:
        while not self._stop.is_set():
            self.answers.append(post(f"{url}/predict", {"instances": [instance]}))
            time.sleep(0.02)

    def stop(self) -> list[tuple[int, dict[str, Any]]]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        return self.answers


def test_a_retrained_model_goes_through_a_canary_to_production(
    stack: Running, state: dict[str, Any]
) -> None:
    assert get(f"{stack.url}/health")["model_version"] == "1"
    market = generate(800, conditions_for_month(4), seed=44)
    rows = [
        {n: (v.item() if isinstance(v := market[n][i], np.generic) else v) for n in FEATURES}
        for i in range(800)
    ]
    clients = Clients(stack.url, rows[0])
    try:
        # When month 4 of the market is uploaded, the gate starts a canary instead of promoting
        upload(
            state, "houses-month-04.csv", csv_bytes(generate(2000, conditions_for_month(4), seed=4))
        )
        assert eventually(lambda: rollout_item(state)), "\n".join(stack.lines[-40:])
        assert production(state) == "1"
        # Several environments serve the clients: each picks the rollout up on its own refresh
        assert eventually(
            lambda: get(f"{stack.url}/health").get("rollout", {}).get("loaded") is True, 30
        )
        status = mlops(stack.cwd, "status")
        assert "Rollout: canary 50% of v2 against v1" in " ".join(status.stdout.split())
        # And the market's traffic is served and labeled with what the houses sold for
        for start in range(0, 800, 20):
            code, answer = post(f"{stack.url}/predict", {"instances": rows[start : start + 20]})
            assert code == 200, answer
            labels = [
                {"prediction_id": pid, "actual": float(market["price"][start + i])}
                for i, pid in enumerate(answer["prediction_ids"])
            ]
            assert post(f"{stack.url}/feedback", {"feedback": labels})[0] == 202
        # Then the evaluator's schedule promotes v2 on the live labels, and it serves
        assert eventually(lambda: production(state) == "2", 240), latest_rollout_report(state)
        assert rollout_item(state) is None
        assert eventually(
            lambda: (
                get(f"{stack.url}/health")["model_version"] == "2"
                and "rollout" not in get(f"{stack.url}/health")
            ),
            15,
        )
        time.sleep(1.0)  # a few more answers after the swap
    finally:
        answers = clients.stop()
    # Every request during the canary and the swap succeeded, and each answer is wholly one
    # model's: the same house always gets the same price from the same version.
    assert answers
    assert {code for code, _ in answers} == {200}
    by_version: dict[str, set[float]] = {}
    for _, answer in answers:
        by_version.setdefault(answer["model_version"], set()).add(answer["predictions"][0])
    assert set(by_version) == {"1", "2"}
    assert all(len(prices) == 1 for prices in by_version.values()), by_version
    # The decision is in the registry's history and in a rollout report
    history = json.loads(mlops(stack.cwd, "status", "--json").stdout)["history"]
    promoted = next(h for h in history if h["to_version"] == "2")
    assert promoted["reason"].startswith("canary passed")
    s3 = client(state, "s3")
    listed = s3.list_objects_v2(
        Bucket=state["outputs"]["ArtifactsBucketName"], Prefix="reports/rollout/"
    ).get("Contents", [])
    assert listed
