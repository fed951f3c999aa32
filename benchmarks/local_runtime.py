"""The local runtime's overhead: what running each function in its own process, behind the real
runtime interface client and an HTTP server, costs compared with calling the handler in-process.

    .venv/bin/python benchmarks/local_runtime.py [--json] [--requests N] [--seconds S]

Measures, on the local stack with v1 registered (medians):
  inprocess_p50_ms    the inference handler called in this process (no runtime, no HTTP)
  invoke_p50_ms       LocalRuntime.invoke: event → worker process (Runtime API) → result
  http_p50_ms         POST /predict over a keep-alive connection to the local HTTP API
  overhead_http_ms    http_p50_ms - inprocess_p50_ms: what the local stack adds per request
  cold_start_s        a new execution environment: process start → handler ready (init)
  cold_invoke_s       the same, to the first answer (init + first request)
  rps_1_client, rps_4_clients   POST /predict throughput with 1 and 4 keep-alive clients
With --json the last line is one JSON object with these keys.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import importlib.util
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The services' INFO lines would land on stdout, which holds only the table or the JSON.
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
PREDICT_EVENT = json.loads((ROOT / "events" / "http_predict.json").read_text())
BODY = base64.b64decode(PREDICT_EVENT["body"])


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


def time_http(port: int, requests: int) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        connection.request("POST", "/predict", BODY, {"content-type": "application/json"})
        response = connection.getresponse()
        response.read()
        samples.append(time.perf_counter() - started)
        assert response.status == 200, response.status
    connection.close()
    return samples


def throughput(port: int, clients: int, seconds: float) -> float:
    counts = [0] * clients
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop:
            connection.request("POST", "/predict", BODY, {"content-type": "application/json"})
            response = connection.getresponse()
            response.read()
            counts[index] += response.status == 200
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return round(sum(counts) / seconds, 1)


def measure(args: argparse.Namespace) -> dict[str, float]:
    from mlops_cli.emulator.runner import start_local
    from mlops_cli.emulator.runtime import LocalRuntime
    from mlops_cli.emulator.stack import LambdaContext, free_port

    running = start_local(ROOT / "template.yaml", port=free_port(), quiet_functions=True)
    try:
        runtime, spec = running.stack.runtime, running.stack.functions["InferenceFunction"].spec
        assert runtime is not None
        # In-process: the same handler, environment and model, no process hop, no HTTP.
        os.environ.update(spec.environment)
        module_spec = importlib.util.spec_from_file_location("app", spec.code_dir / "app.py")
        assert module_spec is not None
        assert module_spec.loader is not None
        app = importlib.util.module_from_spec(module_spec)
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            module_spec.loader.exec_module(app)
            context = LambdaContext("benchmark")
            inprocess = []
            for _ in range(args.requests):
                started = time.perf_counter()
                app.lambda_handler(PREDICT_EVENT, context)
                inprocess.append(time.perf_counter() - started)
        invoked = []
        for _ in range(args.requests):
            started = time.perf_counter()
            assert runtime.invoke("InferenceFunction", PREDICT_EVENT).ok
            invoked.append(time.perf_counter() - started)
        over_http = time_http(running.api.port, args.requests)
        rps_1 = throughput(running.api.port, 1, args.seconds)
        rps_4 = throughput(running.api.port, 4, args.seconds)
        cold_init, cold_total = [], []
        for _ in range(args.cold_runs):
            fresh = LocalRuntime({"InferenceFunction": spec})
            fresh.start()
            try:
                started = time.perf_counter()
                invocation = fresh.invoke("InferenceFunction", PREDICT_EVENT)
                cold_total.append(time.perf_counter() - started)
                assert invocation.ok
                assert invocation.init_ms is not None
                cold_init.append(invocation.init_ms / 1000)
            finally:
                fresh.stop()
    finally:
        running.stop()
    return {
        "inprocess_p50_ms": median_ms(inprocess),
        "invoke_p50_ms": median_ms(invoked),
        "http_p50_ms": median_ms(over_http),
        "overhead_http_ms": round(median_ms(over_http) - median_ms(inprocess), 3),
        "cold_start_s": round(statistics.median(cold_init), 3),
        "cold_invoke_s": round(statistics.median(cold_total), 3),
        "rps_1_client": rps_1,
        "rps_4_clients": rps_4,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--cold-runs", type=int, default=5)
    args = parser.parse_args()
    figures = measure(args)
    labels = {
        "inprocess_p50_ms": "handler in-process, p50 (ms)",
        "invoke_p50_ms": "runtime invoke (worker process), p50 (ms)",
        "http_p50_ms": "POST /predict over HTTP, p50 (ms)",
        "overhead_http_ms": "local stack overhead per request (ms)",
        "cold_start_s": "new environment: init (s)",
        "cold_invoke_s": "new environment: first answer (s)",
        "rps_1_client": "requests/s, 1 client",
        "rps_4_clients": "requests/s, 4 clients",
    }
    for key, label in labels.items():
        print(f"{label:<45} {figures[key]:>10}")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
