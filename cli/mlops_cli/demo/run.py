"""``mlops demo``: the main job on the local stack. The market moves; the system keeps up.
(Over 600 lines, one idea: the demo's month loop and the waits that make it reproducible.)

Month 0 of the synthetic housing market trains v1 (an upload, like every later version). Then,
month after month, only through the stack's own triggers, as on AWS:

1. the month's houses are priced through ``POST /predict`` (the HTTP API) and the twin that is
   never retrained (v1, loaded here with onnxruntime from the registry's artifacts) prices the
   same houses; the sale prices come back through ``POST /feedback`` half a month late, as
   sales close after their pricing (``LABEL_DELAY``); the capture log lines reach the
   prediction logger through the logs subscription (captures, labels, sketches in S3);
2. twice a month (mid-month and at month end) the drift evaluator's schedule fires (the
   template's ``DriftSchedule``, run now rather than hourly: a demo month lasts seconds). It
   compares the serving version's traffic with its training data, measures live quality from
   the labels, writes its report, judges an active canary (promote or roll back) and, on drift
   or quality loss, puts a ``RetrainRequested`` event on the bus;
3. when the month-end evaluation requested retraining, the month's labeled sales (closed now)
   are uploaded under the training prefix: the S3 notification starts the retrainer, its
   destination the candidate gate, which registers the challenger and promotes it or starts a
   canary (``[rollout]`` of ``demo_config.toml``);
4. what happened is read back from the registry and the reports, as ``mlops status`` would.

The market is ``market``'s schedule (a shock every other month). The stack runs with
``demo_config.toml``: the shipped config with the lifecycle's clocks scaled to months of
seconds, and MAPE as the metric that judges (see the file).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from mlops.adapters.aws import client
from mlops.adapters.registry import Rollout
from mlops.domain.layout import ROLLOUT_REPORTS
from mlops.domain.scoring import OnnxModel
from mlops.domain.synthetic import csv_bytes, generate
from mlops_cli.demo import DEFAULT_MONTHS, DEFAULT_TRAFFIC
from mlops_cli.demo.client import get, instances, post
from mlops_cli.demo.digest import (
    MonthRecord,
    drift_digest,
    mape,
    rmse,
    serving_label,
    verdict_lines,
)
from mlops_cli.demo.market import conditions_dict, demo_conditions, describe_month
from mlops_cli.demo.quality_chart import evaluations, led
from mlops_cli.demo.report import render_demo_html
from mlops_cli.demo.summary import print_summary
from mlops_cli.demo.watch import (
    EvaluatorReports,
    Event,
    RegistryWatch,
    RetrainAnswers,
    RolloutVerdicts,
    TrafficLedger,
    describe_answer,
    serves,
    trigger_of,
)
from mlops_cli.emulator.runner import RunningStack, start_local
from mlops_cli.emulator.stack import free_port

TRAINING_ROWS = 4000  # month 0, v1's data
SALES_ROWS = 3000  # a month's labeled sales, uploaded when retraining is requested
REQUEST_ROWS = 5  # houses per /predict request, few: a canary answers whole requests
FEEDBACK_ROWS = 500
# Sale prices (the labels) arrive one half-month after the houses were priced: each
# evaluation sees the traffic of its half-month, but the labels of the half before only. What
# the labels cannot say yet, only the quality ESTIMATED from traffic can (docs/estimates.md).
# The last half-month's prices arrive after the demo ends.
LABEL_DELAY = 1  # half-months
DRIFT_FUNCTION = "DriftEvaluatorFunction"
WAIT_CAPTURE_S = 60.0
WAIT_REPORT_S = 60.0
WAIT_RETRAIN_S = 180.0
WAIT_SERVING_S = 60.0
CONFIG_FILE = "demo_config.toml"
STYLE = {
    "market": "cyan",
    "drift": "bold red",
    "quality": "bold red",
    "calm": "green",
    "request": "yellow",
    "upload": "blue",
    "answer": "dim",
    "trained": "magenta",
    "rejected": "dim red",
    "canary": "bold yellow",
    "promoted": "bold green",
    "rolled_back": "bold red",
    "note": "dim",
    "stall": "bold magenta",
    "estimate": "bold medium_purple",
}


@dataclass(frozen=True)
class DemoOptions:
    template: Path
    seed: int = 0
    months: int = DEFAULT_MONTHS
    traffic: int = DEFAULT_TRAFFIC
    output: Path = Path("demo-output")
    port: int = 0
    config: Path | None = None  # default: demo_config.toml next to this module
    json_mode: bool = False


def demo_config_path() -> Path:
    return Path(str(resources.files("mlops_cli.demo").joinpath(CONFIG_FILE)))


# --- the run ---------------------------------------------------------------------------------


class CountColumn(ProgressColumn):
    """``450/1500`` for counted steps; nothing for a wait of unknown length."""

    def render(self, task: Task) -> Text:
        if task.total is None:
            return Text("")
        return Text(f"{int(task.completed):,}/{int(task.total):,}", style="progress.download")


class Demo:
    def __init__(self, options: DemoOptions, console: Console) -> None:
        self.options = options
        self.console = console
        self.started = time.monotonic()
        self.output = options.output
        self.events: list[dict[str, Any]] = []
        self.months: list[MonthRecord] = []
        self.timings: dict[str, float] = {}
        # Every wait that gave up (a stall): said on the console and kept for ``--json``.
        self.gave_up: list[dict[str, Any]] = []
        # Set once the stack runs (``_run``).
        self.running: RunningStack
        self.watch: RegistryWatch
        self.reports: EvaluatorReports
        self.rollouts: EvaluatorReports
        self.verdicts: RolloutVerdicts
        self.answers: RetrainAnswers
        self.ledger: TrafficLedger
        self.predicted = self.labeled = 0  # sent so far: what the logger must have stored
        # Sales priced but not yet closed: (prediction ids, sale prices) per half-month.
        self.unsold: list[tuple[list[str], npt.NDArray[np.float64]]] = []
        self.phase = "end"  # of the month: "mid" after its first half, "end" after the second
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            CountColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )

    # ---- output

    def say(self, month: int | None, kind: str, text: str, short: str | None = None) -> None:
        """An event line on the console; ``short`` (if any) goes in the month's table row."""
        style = STYLE.get(kind, "")
        where = f"[dim]month {month:>2}[/] " if month is not None else "[dim]setup[/]    "
        body = f"[{style}]{escape(text)}[/]" if style else escape(text)
        self.progress.console.print(f"{where}{body}", highlight=False)
        self.events.append({"month": month, "kind": kind, "text": text})
        if month is not None and short and short not in self.months[-1].events:
            self.months[-1].events.append(short)

    def waited_in_vain(self, month: int | None, wait: str, seconds: float, text: str) -> None:
        """A wait that gave up after ``seconds``: said at once, and listed in the summary."""
        self.gave_up.append({"month": month, "wait": wait, "seconds": seconds, "text": text})
        self.say(month, "stall", f"gave up after {seconds:.0f} s: {text}", "stalled")

    @contextmanager
    def step(self, phase: str, description: str, total: int | None = None) -> Iterator[TaskID]:
        """A transient progress line for one phase; its wall time is added to ``timings``."""
        task = self.progress.add_task(description, total=total)
        began = time.monotonic()
        try:
            yield task
        finally:
            self.progress.remove_task(task)
            self.timings[phase] = self.timings.get(phase, 0.0) + time.monotonic() - began

    # ---- the loop

    def run(self) -> dict[str, Any]:
        options = self.options
        (self.output / "data").mkdir(parents=True, exist_ok=True)
        with self.progress:
            with self.step("start", "starting the local stack (moto, template.yaml)"):
                running = start_local(
                    options.template,
                    port=options.port or free_port(),
                    config_path=options.config or demo_config_path(),
                    quiet_functions=True,
                    # The canary's split of requests is salted with the rollout's id: seeded,
                    # a run replays with the same requests answered by the candidate.
                    environment={"ROLLOUT_ID_SEED": f"mlops-demo-{options.seed}"},
                )
            try:
                return self._run(running)
            finally:
                # Log lines still in flight at the end (the functions' REPORT lines) are not
                # worth a warning after the demo's table.
                logging.getLogger("mlops_cli.emulator.sources").setLevel(logging.ERROR)
                with self.step("stop", "stopping the local stack"):
                    running.stop()

    def _seed(self, purpose: str, month: int) -> int:
        offset = {"train": 0, "traffic": 1000, "sales": 2000}[purpose]
        return self.options.seed * 10_000 + offset + month

    def _run(self, running: RunningStack) -> dict[str, Any]:
        from mlops.services.model_loading import load_version

        target = running.target
        model = target.model_name
        store, registry, s3 = target.store(), target.registry(), client("s3")
        url = running.api.url
        self.running, self.watch = running, RegistryWatch(registry, model)
        self.reports, self.answers = EvaluatorReports(store, s3), RetrainAnswers(store, s3)
        self.rollouts = EvaluatorReports(store, s3, ROLLOUT_REPORTS)
        self.verdicts = RolloutVerdicts(self.rollouts, registry, model)
        self.reports.mark_seen()
        self.rollouts.mark_seen()
        watch = self.watch
        # Month 0 trains v1 the way every later version is trained: an upload.
        self._upload(None, TRAINING_ROWS, "train")
        v1 = watch.production
        if v1 is None:
            raise RuntimeError("v1 was not promoted: see reports/retrain/ in the artifacts bucket")
        self._wait_serving(url, None)
        twin = load_version(store, registry, model, v1).model
        _, served = get(f"{url}/model")
        features = [f["name"] for f in served["signature"]["features"]]
        self.say(
            None,
            "note",
            f"v{v1} serves at {url}; the twin that is never retrained is v{v1}, loaded here "
            "with onnxruntime from the registry's artifacts",
        )
        self.ledger = TrafficLedger(store, s3, model)
        months_task = self.progress.add_task("months", total=self.options.months)
        for month in range(self.options.months):
            record = MonthRecord(
                month, describe_month(month), conditions_dict(demo_conditions(month))
            )
            self.months.append(record)
            self.progress.update(months_task, description=f"month {month}: {record.market}")
            if month > 0:
                self.say(month, "market", record.market)
            self._month(record, url, features, twin)
            self.progress.advance(months_task)
        self.progress.remove_task(months_task)
        return self._finish()

    def _month(self, record: MonthRecord, url: str, features: list[str], twin: OnnxModel) -> None:
        """One month in two halves, each followed by the evaluator's schedule (with the labels
        of the half before: ``LABEL_DELAY``); retraining follows the month-end verdict, on the
        month's labeled sales."""
        month = record.month
        columns = generate(
            self.options.traffic, demo_conditions(month), seed=self._seed("traffic", month)
        )
        actual = np.asarray(columns["price"], dtype=np.float64)
        rows = len(actual)
        answered: list[tuple[str, float]] = []
        labels: list[str] = []
        for start, stop in ((0, rows // 2), (rows // 2, rows)):
            part = {name: values[start:stop] for name, values in columns.items()}
            production = self.watch.production
            served, ids = self._serve(month, url, part, features, start)
            answered.extend(served)
            labels.append(serving_label([v for v, _ in served], production))
            self.predicted += len(ids)
            self.unsold.append((ids, actual[start:stop]))
            while len(self.unsold) > LABEL_DELAY:  # the sales that closed by now
                self.labeled += self._feedback(url, *self.unsold.pop(0))
            with self.step("capture", "captures and labels reaching S3 (logs → logger)"):
                if not self.ledger.wait(self.predicted, self.labeled, WAIT_CAPTURE_S):
                    self.waited_in_vain(
                        month,
                        "capture",
                        WAIT_CAPTURE_S,
                        "not every capture and label reached S3; evaluating anyway",
                    )
            month_end = stop == rows
            self.phase = "end" if month_end else "mid"
            digest = self._evaluate(month, month_end)
            if month_end:
                record.drift = digest
            else:
                record.mid_month = digest
            self._poll(month)
            if month_end and digest.get("retrain_requested"):
                self._retrain(month)
            self._wait_serving(url, month)
        record.rows = len(answered)
        system = np.asarray([p for _, p in answered], dtype=np.float64)
        static = np.asarray(twin.score(columns).values, dtype=np.float64)
        record.rmse_system, record.rmse_static = rmse(system, actual), rmse(static, actual)
        record.mape_system, record.mape_static = mape(system, actual), mape(static, actual)
        for version, _ in answered:
            record.answered_by[version] = record.answered_by.get(version, 0) + 1
        record.serving = labels[0] if labels[0] == labels[1] else f"{labels[0]} → {labels[1]}"
        record.production_after = self.watch.production

    def _serve(
        self,
        month: int,
        url: str,
        columns: Mapping[str, npt.NDArray[Any]],
        features: list[str],
        first_row: int,
    ) -> tuple[list[tuple[str, float]], list[str]]:
        rows = len(columns["price"])
        answered: list[tuple[str, float]] = []
        ids: list[str] = []
        what = f"month {month}: pricing {rows:,} houses through POST /predict"
        with self.step("serve", what, rows) as t:
            for start in range(0, rows, REQUEST_ROWS):
                stop = min(start + REQUEST_ROWS, rows)
                body = {
                    "instances": instances(columns, features, start, stop),
                    "request_id": f"demo-s{self.options.seed}-m{month}-row{first_row + start}",
                }
                status, answer = post(f"{url}/predict", body)
                if status != 200:
                    raise RuntimeError(f"/predict answered {status}: {answer}")
                version = str(answer["model_version"])
                answered.extend((version, float(p)) for p in answer["predictions"])
                ids.extend(answer["prediction_ids"])
                self.progress.update(t, completed=stop)
        return answered, ids

    def _feedback(self, url: str, ids: list[str], actual: npt.NDArray[np.float64]) -> int:
        with self.step("feedback", "sale prices through POST /feedback", len(ids)) as task:
            for start in range(0, len(ids), FEEDBACK_ROWS):
                chunk = [
                    {"prediction_id": pid, "actual": float(actual[start + i])}
                    for i, pid in enumerate(ids[start : start + FEEDBACK_ROWS])
                ]
                status, answer = post(f"{url}/feedback", {"feedback": chunk})
                if status != 202:
                    raise RuntimeError(f"/feedback answered {status}: {answer}")
                self.progress.update(task, completed=start + len(chunk))
        return len(ids)

    def _poll(self, month: int | None) -> None:
        for event in self.watch.poll():
            self._event(month, event)

    def _evaluate(self, month: int, month_end: bool) -> dict[str, Any]:
        """Fire the evaluator's schedule and digest its drift report (and rollout verdict)."""
        sources = self.running.stack.sources
        if sources is None:
            raise RuntimeError("the local stack's event sources are not running")
        self._poll(month)  # what the last evaluation did is known before this one fires
        baking = self.watch.rollout
        when = "month end" if month_end else "mid-month"
        with self.step("evaluate", f"{when}: the drift schedule fires (DriftEvaluatorFunction)"):
            sources.fire_schedule(DRIFT_FUNCTION)
            found = self.reports.wait_new(WAIT_REPORT_S)
            # The same invocation then judges the active rollout, if any, and acts on it:
            # done when the registry shows the verdict (see ``RolloutVerdicts.wait``).
            judged = self.verdicts.wait(baking, WAIT_REPORT_S) if baking else None
        if found is None:
            self.waited_in_vain(
                month, "evaluate", WAIT_REPORT_S, f"{when}: the drift evaluator wrote no report"
            )
            return {}
        key, report = found
        if baking is not None:
            if judged is None:
                self.waited_in_vain(
                    month,
                    "verdict",
                    WAIT_REPORT_S,
                    f"{when}: no verdict on the {baking.mode} of v{baking.version} reached the "
                    "registry",
                )
            self._judged(month, when, baking, judged)
        drift = drift_digest(report, key)
        verdicts = verdict_lines(drift, month_end=month_end)
        for kind, text, short in verdicts:
            if month_end:
                self.say(month, kind, text, short or None)
            elif kind in ("drift", "quality", "estimate"):  # mid-month: a glance; the table
                # has month ends, but an estimate ahead of the labels is the news of its month
                ahead = short == "estimate"
                self.say(
                    month, kind if ahead else "note", f"{when}: {text}", short if ahead else None
                )
        return drift

    def _judged(
        self, month: int, when: str, rollout: Rollout, verdict: Mapping[str, Any] | None
    ) -> None:
        """What the evaluator decided about the rollout that baked since its last check."""
        what = f"{when}: {rollout.mode} v{rollout.version}"
        if verdict is None:
            return
        decision = verdict.get("decision")
        reasons = [str(r) for r in verdict.get("reasons") or []]
        # The live-quality comparison says most; the other reasons are in the report.
        why = next((r for r in reasons if "live " in r), reasons[0] if reasons else "")
        if decision in ("promote", "rollback") and verdict.get("acted"):
            self.say(month, "note", f"{what} judged on live traffic ({decision}): {why}")
        else:
            self.say(month, "note", f"{what} keeps baking: {why or 'no verdict yet'}")

    def _retrain(self, month: int) -> None:
        """Retraining was requested: ship the month's labeled sales to the training prefix.

        The request names no data, so the retrainer takes the newest upload; the upload that
        follows is what it needs. (A request resolved to an object version the upload already
        trained is the same run: one object trains once.)"""
        rollout = self.watch.rollout
        if rollout is not None:
            self.say(
                month,
                "note",
                f"{rollout.mode} of v{rollout.version} still baking: "
                "this month's sales wait for its verdict",
            )
            return
        self._upload(month, SALES_ROWS, "sales")

    def _upload(self, month: int | None, rows: int, purpose: str) -> None:
        """Upload labeled sales of ``month`` (None: month 0, v1's data) under the training
        prefix, then follow the pipeline to its decision and report what the registry did."""
        target = self.running.target
        market = 0 if month is None else month
        sales = generate(rows, demo_conditions(market), seed=self._seed(purpose, market))
        name = f"houses-month-{market:02d}.csv"
        body = csv_bytes(sales)
        (self.output / "data" / name).write_bytes(body)
        bucket = target.output("TrainingDataBucketName")
        key = target.output("TrainingDataPrefix") + name
        put = client("s3").put_object(Bucket=bucket, Key=key, Body=body)
        version_id = put.get("VersionId")
        self.say(month, "upload", f"{rows:,} labeled sales of month {market} uploaded to {key}")

        def same_upload(doc: dict[str, Any]) -> bool:
            trigger = trigger_of(doc)
            return trigger.get("key") == key and (
                version_id is None or trigger.get("version_id") == version_id
            )

        with self.step("retrain", "retraining: S3 notification → retrainer → candidate gate"):
            doc = self.answers.wait(same_upload, WAIT_RETRAIN_S)
        if doc is None:
            self.waited_in_vain(
                month, "retrain", WAIT_RETRAIN_S, f"no decision on the upload of {key}"
            )
        elif doc.get("kind") != "retrain_decision":
            self.say(month, "rejected", describe_answer(doc), "upload rejected")
        self._poll(month)

    def _event(self, month: int | None, event: Event) -> None:
        self.say(month, event.kind, event.text, event.short)
        if month is not None and event.kind in ("promoted", "rolled_back", "canary"):
            label = {"promoted": "v{}", "rolled_back": "v{} back", "canary": "canary v{}"}
            self.months[-1].production_changes.append(
                {
                    "label": label[event.kind].format(event.version),
                    "kind": event.kind,
                    "at": self.phase,
                }
            )

    def _wait_serving(self, url: str, month: int | None) -> None:
        """Until the inference function serves what the registry says (its alias refresh):
        the production version, and the rollout's candidate loaded, or no rollout. The
        registry is read each time round: the target is what is true now, never what the
        demo last saw."""
        registry, model = self.running.target.registry(), self.running.target.model_name
        deadline = time.monotonic() + WAIT_SERVING_S
        with self.step("refresh", "the inference function picks up the registry's state"):
            while time.monotonic() < deadline:
                aliases, rollout = registry.serving(model)
                status, health = get(f"{url}/health")
                if status == 200 and serves(health, aliases.get("production"), rollout):
                    return
                time.sleep(0.2)
        self.waited_in_vain(
            month,
            "refresh",
            WAIT_SERVING_S,
            "the inference function did not serve the registry's production and rollout",
        )

    # ---- the end

    def _finish(self) -> dict[str, Any]:
        reports, watch = self.reports, self.watch
        drift_dir = self.output / "drift"
        if drift_dir.exists():
            shutil.rmtree(drift_dir)
        drift_dir.mkdir()
        copied: list[dict[str, Any]] = []
        by_report: dict[str, str] = {}
        for m in self.months:
            for when, digest in (("mid-month", m.mid_month), ("month end", m.drift)):
                if digest.get("report"):
                    by_report[str(digest["report"])] = f"month {m.month}, {when}: " + (
                        "drift" if digest.get("dataset_drift")
                        else "quality loss" if digest.get("quality_breach")
                        else str(digest.get("status"))
                    )  # fmt: skip
        rollout_dir = self.output / "rollout"
        if rollout_dir.exists():
            shutil.rmtree(rollout_dir)
        judged: list[dict[str, Any]] = []
        with self.step("report", "copying the evaluator's reports next to the demo report"):
            for key in reports.all_keys():
                (drift_dir / Path(key).name).write_bytes(reports.download(key))
            for key in self.rollouts.all_keys():
                rollout_dir.mkdir(exist_ok=True)
                body = self.rollouts.download(key)
                (rollout_dir / Path(key).name).write_bytes(body)
                doc = json.loads(body)
                rollout = doc.get("rollout") or {}
                judged.append(
                    {
                        "name": Path(key).stem,
                        "json": f"rollout/{Path(key).name}",
                        "verdict": f"{rollout.get('mode')} v{rollout.get('version')}: "
                        f"{doc.get('decision')}" + (" (done)" if doc.get("acted") else ""),
                    }
                )
            for key in reports.all_keys():
                if key.endswith(".json"):
                    stem = Path(key).stem
                    copied.append(
                        {
                            "name": stem,
                            "html": f"drift/{stem}.html",
                            "json": f"drift/{stem}.json",
                            "verdict": by_report.get(stem, ""),
                        }
                    )
        months = [m.as_dict() for m in self.months]
        detected = [
            m.month
            for m in self.months
            if m.drift.get("dataset_drift") or m.drift.get("quality_breach")
        ]
        report_path = (self.output / "report.html").resolve()
        summary: dict[str, Any] = {
            "months": months,
            "versions_promoted": watch.promotions,
            "rollbacks": watch.rollbacks,
            "drift_detected_months": detected,
            "retrain_requested_months": [
                m.month for m in self.months if m.drift.get("retrain_requested")
            ],
            # Where the quality ESTIMATED from traffic breached before the labels did
            "estimate_led": [
                {"warned": [a.month, a.half], "labels_confirmed": [b.month, b.half]}
                for a, b in led(evaluations(months)[1])
            ],
            "rmse_system_last_month": months[-1]["rmse_system"] if months else None,
            "rmse_static_last_month": months[-1]["rmse_static"] if months else None,
            "rmse_v1_month0": months[0]["rmse_system"] if months else None,
            "production_version": watch.production,
            "report_path": str(report_path),
            "drift_reports": copied,
            "rollout_reports": judged,
            "events": self.events,
            "settings": {
                "seed": self.options.seed,
                "months": self.options.months,
                "traffic per month": self.options.traffic,
                "labeled sales per upload": SALES_ROWS,
                "config": str(self.options.config or demo_config_path()),
            },
            "timings": {k: round(v, 1) for k, v in self.timings.items()},
            "gave_up": self.gave_up,
            "seconds": round(time.monotonic() - self.started, 1),
        }
        report_path.write_text(render_demo_html(summary), encoding="utf-8")
        (self.output / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary


def run_demo(options: DemoOptions) -> dict[str, Any]:
    """Run the demo; the summary (the ``--json`` object) is returned."""
    console = Console(stderr=options.json_mode, highlight=False)
    demo = Demo(options, console)
    summary = demo.run()
    print_summary(console, summary)
    return summary
