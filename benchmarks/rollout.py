"""Rollout latency: warm /predict through the real handler and real-shaped HTTP API events,
with production only, a shadow (the candidate scores every request after the answer is
final) and canaries of 10 % and 50 % (the candidate answers that share of requests, sticky
per request id), in one run.

    .venv/bin/python benchmarks/rollout.py [--json] [--requests N] [--rounds N]

v1 is trained and promoted and v2 (the market four months on) registered as a candidate in a
local moto stack; a real rollout of v2 is started (``RolloutService.start``) and the inference
handler, imported in this process with the function's environment, loads its candidate from
the registry as on Lambda. The modes then take turns on that one warm container: before each
mode's turn its rollout is set on the provider (what a re-check of the registry would set;
the alias re-check is pushed past the run so it cannot undo the mode mid-turn). Each request
is one row (the house of events/http_predict.json) with its own ``requestContext.requestId``,
as API Gateway sends, so canary routing sees distinct requests; capture lines (two per request
under a shadow) and EMF metric lines go to /dev/null.

Machines here are noisy (2 shared cores), so the modes are interleaved: ``--rounds`` rounds,
each giving every mode ``--requests`` requests (the mode order rotates per round). A mode's
p50 and p99 are the medians over rounds of its per-round p50 and p99; its ratio to production
is the median over rounds of the per-round ratio, so a noisy moment hits every mode alike.
Before timing, a check pass reads the capture lines each mode writes (production only: one
production line per request; shadow: every answer from v1 plus one shadow line from v2;
canary: answers and capture variants agree, and a repeated request id meets the same
variant).

Prints a table; with --json the last line is one JSON object with keys production_p50_ms,
production_p99_ms; for shadow, canary10 and canary50: <mode>_p50_ms, <mode>_p99_ms,
<mode>_p50_ratio (with <mode>_p50_ratio_q1 and _q3, the quartiles of the per-round ratio),
<mode>_p99_ratio; canary10_candidate_share and canary50_candidate_share (the
share of timed requests the candidate answered); shadow_added_p50_ms (median over rounds of
shadow p50 minus production p50); for reference production_score_p50_ms and
candidate_score_p50_ms (``OnnxModel.score`` of each model alone on the validated row: its feeds
and one ONNX run, timed in the same rounds); targets, targets_met, requests_per_round, rounds,
total_requests and seconds (the whole run, setup included).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import importlib.util
import io
import json
import math
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PREDICT_EVENT = ROOT / "events" / "http_predict.json"
CANDIDATE_MONTH = 4  # v2 learned the market four months after v1's
# Ratios to production-only p50. The bound for a shadow (at most one more ONNX run
# per request); "about production's" for a canary, read as within 20 %.
TARGETS = {
    "shadow_p50_ratio": 2.0,
    "canary10_p50_ratio": 1.2,
    "canary50_p50_ratio": 1.2,
}
CHECK_REQUESTS = 400  # per mode in the untimed check pass
WARMUP_REQUESTS = 200  # per mode, before the timed rounds


@dataclass(frozen=True)
class Mode:
    key: str  # the JSON keys' prefix
    label: str
    rollout: str | None  # None: no rollout; else shadow | canary
    percent: float = 0.0


MODES = (
    Mode("production", "production", None),
    Mode("shadow", "shadow", "shadow"),
    Mode("canary10", "canary 10 %", "canary", 10.0),
    Mode("canary50", "canary 50 %", "canary", 50.0),
)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def base_event() -> dict[str, Any]:
    """The POST /predict event SAM generated, with its house as a one-row request."""
    event: dict[str, Any] = json.loads(PREDICT_EVENT.read_text())
    house = json.loads(base64.b64decode(event["body"]))["instances"][0]
    event["body"] = base64.b64encode(json.dumps({"instances": [house]}).encode()).decode()
    return event


def events(base: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """``count`` copies of ``base``, each with its own API Gateway request id (the canary's
    routing key when the body carries no ``request_id``)."""
    context = base["requestContext"]
    return [
        {**base, "requestContext": {**context, "requestId": uuid.uuid4().hex[:16] + "="}}
        for _ in range(count)
    ]


def load_module(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prepare(stack: Any) -> str:
    """v1 in production and v2 a registered candidate under a started rollout; v2's version."""
    from mlops.domain.config import PromotionConfig
    from mlops.domain.config_document import load_config
    from mlops.domain.synthetic import conditions_for_month, csv_bytes, generate
    from mlops.services.rollout import RolloutService
    from mlops_cli.emulator.runner import (
        BOOTSTRAP_ROWS,
        BOOTSTRAP_SEED,
        archive_dataset,
        ensure_model,
        training_service,
    )
    from mlops_cli.emulator.target import Target

    target = Target(stack.outputs, "benchmark stack")
    config = load_config()
    ensure_model(target, config)
    # Whether v2 beats v1 does not matter here: register it as a candidate either way.
    lenient = replace(
        config, promotion=PromotionConfig(min_relative_change=-1.0, min_absolute_change=-1e300)
    )
    data = csv_bytes(
        generate(BOOTSTRAP_ROWS, conditions_for_month(CANDIDATE_MONTH), seed=BOOTSTRAP_SEED + 1)
    )
    uri = archive_dataset(target.store(), data, f"houses-month-{CANDIDATE_MONTH:02d}.csv")
    v2 = training_service(target).train_and_register(lenient, data, uri, promote=False)
    rollouts = RolloutService(
        model=target.model_name,
        store=target.store(),
        registry=target.registry(),
        actor="rollout-benchmark",
    )
    # The gate may hold it (worse on production's golden set than the lenient bar it passed):
    # a latency benchmark needs it serving, whatever its quality.
    rollouts.start(v2.version, mode="canary", percent=10.0, reason="latency benchmark", force=True)
    return v2.version


class Bench:
    """The inference handler in this process and the rollout each mode serves."""

    def __init__(self, app: Any, context: Any, candidate_version: str) -> None:
        self.app = app
        self.context = context
        self.candidate_version = candidate_version
        provider = app.service._provider
        live = provider.live_rollout()
        if live is None or live.candidate.version != candidate_version:
            raise RuntimeError(
                f"the handler did not load the candidate: {provider.rollout_state()}"
            )
        self._provider = provider
        self._candidate = live.candidate
        self._live = {
            mode.key: None
            if mode.rollout is None
            else replace(
                live, rollout=replace(live.rollout, mode=mode.rollout, percent=mode.percent)
            )
            for mode in MODES
        }

    def score_calls(self, base: dict[str, Any]) -> dict[str, Callable[[], Any]]:
        """``OnnxModel.score`` of each model on the event's validated row (feeds and one ONNX
        run): what a shadow adds at least, measured in the same rounds for reference."""
        body = json.loads(base64.b64decode(base["body"]))
        max_instances = self.app.service._max_instances
        calls: dict[str, Callable[[], Any]] = {}
        for name, loaded in (
            ("production", self._provider.current()),
            ("candidate", self._candidate),
        ):
            columns = loaded.manifest.signature.columns(body["instances"], max_instances)
            calls[name] = functools.partial(loaded.model.score, columns)
        return calls

    def serve(self, mode: Mode) -> None:
        # What the provider holds after a re-check finds this rollout in the registry.
        self._provider._live = self._live[mode.key]
        assert self._provider.live_rollout() is self._live[mode.key]

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = self.app.lambda_handler(event, self.context)
        return response

    def answered_by(self, response: dict[str, Any]) -> str:
        if response["statusCode"] != 200:
            raise RuntimeError(f"/predict failed: {response}")
        return str(json.loads(response["body"])["model_version"])


def check_modes(bench: Bench, base: dict[str, Any], production_version: str) -> None:
    """Each mode does what it says, read from its answers and the capture lines it writes."""
    candidate = bench.candidate_version
    for mode in MODES:
        bench.serve(mode)
        batch = events(base, CHECK_REQUESTS)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            answers = [bench.answered_by(bench.invoke(e)) for e in batch]
            again = [bench.answered_by(bench.invoke(e)) for e in batch[:50]]
        lines = [json.loads(s) for s in out.getvalue().splitlines() if '"type":"capture"' in s]
        variants = [(line["variant"], line["version"]) for line in lines]
        by_candidate = answers.count(candidate)
        if mode.rollout is None or mode.rollout == "shadow":
            ok = by_candidate == 0
            expected_lines = len(answers) + len(again)
            served = [v for v in variants if v[0] == "production"]
            ok = ok and len(served) == expected_lines
            ok = ok and all(v == ("production", production_version) for v in served)
            shadows = [v for v in variants if v[0] == "shadow"]
            if mode.rollout == "shadow":
                ok = ok and shadows == [("shadow", candidate)] * expected_lines
            else:
                ok = ok and not shadows
        else:
            canaries = variants.count(("canary", candidate))
            ok = 0 < by_candidate < len(answers) and canaries == by_candidate + again.count(
                candidate
            )
            ok = ok and again == answers[:50]  # sticky per request id
        if not ok:
            raise RuntimeError(f"{mode.label}: routing or capture is not as expected")


def time_modes(
    bench: Bench, base: dict[str, Any], requests: int, rounds: int, log: Callable[..., None]
) -> tuple[dict[str, list[list[float]]], dict[str, int]]:
    """Per mode, one list of latencies (ms) per round, and how many timed requests the
    candidate answered; also each model's ``score`` alone (``<model>_score``), a fifth as many
    calls per round. Capture and metric lines go to /dev/null."""
    scores = bench.score_calls(base)
    samples: dict[str, list[list[float]]] = {mode.key: [] for mode in MODES}
    samples |= {f"{name}_score": [] for name in scores}
    by_candidate = dict.fromkeys(samples, 0)
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        for mode in MODES:  # warm-up: caches, allocator, branch predictors
            bench.serve(mode)
            for event in events(base, WARMUP_REQUESTS):
                bench.invoke(event)
        for r in range(rounds):
            log(f"round {r + 1}/{rounds}")
            for mode in MODES[r % len(MODES) :] + MODES[: r % len(MODES)]:
                batch = events(base, requests)
                bench.serve(mode)
                latencies, responses = [], []
                for event in batch:
                    started = time.perf_counter()
                    response = bench.invoke(event)
                    latencies.append((time.perf_counter() - started) * 1000)
                    responses.append(response)
                samples[mode.key].append(latencies)
                by_candidate[mode.key] += sum(
                    bench.answered_by(response) == bench.candidate_version for response in responses
                )
            for name, call in scores.items():
                latencies = []
                for _ in range(max(1, requests // 5)):
                    started = time.perf_counter()
                    call()
                    latencies.append((time.perf_counter() - started) * 1000)
                samples[f"{name}_score"].append(latencies)
    return samples, by_candidate


def summarise(
    samples: dict[str, list[list[float]]], by_candidate: dict[str, int], requests: int
) -> dict[str, float]:
    per_round = {
        key: [(statistics.median(r), percentile(r, 99)) for r in rounds]
        for key, rounds in samples.items()
    }
    production = per_round["production"]
    figures: dict[str, float] = {}
    for mode in MODES:
        rounds = per_round[mode.key]
        figures[f"{mode.key}_p50_ms"] = round(statistics.median(p50 for p50, _ in rounds), 3)
        figures[f"{mode.key}_p99_ms"] = round(statistics.median(p99 for _, p99 in rounds), 3)
        if mode.rollout is None:
            continue
        ratios = [m[0] / p[0] for m, p in zip(rounds, production, strict=True)]
        figures[f"{mode.key}_p50_ratio"] = round(statistics.median(ratios), 2)
        # How much the per-round ratio moved: the noise the median is taken over.
        q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
        figures[f"{mode.key}_p50_ratio_q1"] = round(q1, 2)
        figures[f"{mode.key}_p50_ratio_q3"] = round(q3, 2)
        figures[f"{mode.key}_p99_ratio"] = round(
            statistics.median(m[1] / p[1] for m, p in zip(rounds, production, strict=True)), 2
        )
        if mode.rollout == "canary":
            total = requests * len(rounds)
            figures[f"{mode.key}_candidate_share"] = round(by_candidate[mode.key] / total, 4)
    for name in ("production", "candidate"):
        figures[f"{name}_score_p50_ms"] = round(
            statistics.median(p50 for p50, _ in per_round[f"{name}_score"]), 3
        )
    figures["shadow_added_p50_ms"] = round(
        statistics.median(
            s[0] - p[0] for s, p in zip(per_round["shadow"], production, strict=True)
        ),
        3,
    )
    return figures


def measure(args: argparse.Namespace, log: Callable[..., None]) -> dict[str, float]:
    from threadpoolctl import threadpool_limits

    from mlops_cli.emulator.stack import LambdaContext, LocalStack

    # INFO logs (model loaded, rollout serving) would interleave with the table; requests log
    # nothing below WARNING. The alias re-check (30 s on AWS) is pushed past the run: it would
    # read the registry's one rollout and replace the mode being timed.
    stack = LocalStack(
        ROOT / "template.yaml",
        parameters={"AliasRefreshSeconds": "86400"},
        env_overrides={"POWERTOOLS_LOG_LEVEL": "WARNING"},
    )
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        stack.start()
        try:
            # Only /predict runs here: the stack's event sources (SQS pollers, timers) would
            # wake threads, and take the GIL, during the timing.
            assert stack.sources is not None
            stack.sources.stop()
            log("training v1 (production) and v2 (candidate), starting the rollout ...")
            # One OpenMP thread: on 2 shared cores, more spin instead of working (setup only).
            with threadpool_limits(limits=1):
                candidate = prepare(stack)
            spec = stack.functions["InferenceFunction"].spec
            os.environ.update(spec.environment)
            app = load_module("inference_app", spec.code_dir / "app.py")
            bench = Bench(app, LambdaContext("rollout-benchmark"), candidate)
            base = base_event()
            production = app.service._provider.current().version
            log("checking each mode's routing and capture ...")
            check_modes(bench, base, production)
            log(f"timing: {args.rounds} rounds of {args.requests} requests per mode ...")
            samples, by_candidate = time_modes(bench, base, args.requests, args.rounds, log)
        finally:
            stack.stop()
    return summarise(samples, by_candidate, args.requests)


def share_ok(share: float, percent: float, n: int) -> bool:
    """Within 4 standard deviations of the configured share (a binomial count)."""
    p = percent / 100
    return abs(share - p) <= 4 * math.sqrt(p * (1 - p) / n)


def report(figures: dict[str, float], n: int) -> dict[str, bool]:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    checks = {key: figures[key] <= bound for key, bound in TARGETS.items()}
    for mode in MODES:
        if mode.rollout == "canary":
            key = f"{mode.key}_candidate_share"
            checks[key] = share_ok(figures[key], mode.percent, n)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("1 row")
    for name in ("p50 ms", "p99 ms", "p50/prod", "(quartiles)", "p99/prod", "candidate"):
        table.add_column(name, justify="right", no_wrap=True)
    for mode in MODES:
        key = mode.key
        share = figures.get(f"{key}_candidate_share")
        table.add_row(
            mode.label,
            f"{figures[f'{key}_p50_ms']:.3f}",
            f"{figures[f'{key}_p99_ms']:.3f}",
            f"{figures.get(f'{key}_p50_ratio', 1.0):.2f}x",
            "-"
            if mode.rollout is None
            else f"{figures[f'{key}_p50_ratio_q1']:.2f}-{figures[f'{key}_p50_ratio_q3']:.2f}",
            f"{figures.get(f'{key}_p99_ratio', 1.0):.2f}x",
            "-" if share is None else f"{share:.1%}",
        )
    console = Console(highlight=False, emoji=False)
    console.print("warm /predict by rollout mode (medians over rounds; ratios to production)")
    console.print(table)
    console.print(
        f"shadow adds {figures['shadow_added_p50_ms']:.3f} ms at p50; OnnxModel.score alone "
        f"(1 row, p50): production {figures['production_score_p50_ms']:.3f} ms, "
        f"candidate {figures['candidate_score_p50_ms']:.3f} ms"
    )
    bounds = ", ".join(f"{k} ≤ {v}x" for k, v in TARGETS.items())
    console.print(f"targets: {bounds}; candidate shares within 4 sd of 10 % and 50 %")
    console.print(
        "targets met: " + ", ".join(f"{k}={'yes' if v else 'NO'}" for k, v in checks.items())
    )
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="end with one JSON object")
    parser.add_argument("--requests", type=int, default=500, help="per mode and round")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    if args.requests < 1 or args.rounds < 1:
        parser.error("--requests and --rounds must be at least 1")
    started = time.perf_counter()

    def log(message: str) -> None:
        if not args.json:
            print(f"[{time.perf_counter() - started:5.1f} s] {message}", file=sys.stderr)

    figures = measure(args, log)
    seconds = round(time.perf_counter() - started, 1)
    checks = report(figures, args.requests * args.rounds)
    if args.json:
        print(
            json.dumps(
                {
                    **figures,
                    "targets": TARGETS,
                    "targets_met": checks,
                    "requests_per_round": args.requests,
                    "rounds": args.rounds,
                    "total_requests": args.requests * args.rounds * len(MODES),
                    "seconds": seconds,
                }
            )
        )
    else:
        print(f"{args.rounds} rounds x {args.requests} requests per mode, {seconds} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
