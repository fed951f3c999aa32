"""A DISTRIBUTED Map state: one Map Run of child executions over the items, as Step Functions
runs it.

Items come from the ``ItemReader`` (streamed, ``item_reader``) or the input (``ItemsPath``);
``ItemSelector`` shapes each item (``$$.Map.Item.Index``/``Value``); ``ItemBatcher`` groups them
(``MaxItemsPerBatch``, ``MaxInputBytesPerBatch`` on the batch's JSON, ``BatchInput``) into child
inputs ``{"Items": [...], "BatchInput": {...}}``. Children run the ``ItemProcessor`` on a bounded
pool (``MaxConcurrency``; at most ``max_workers`` threads here), and only that many batches
are read ahead, so memory does not grow with the object. A child input over 256 KiB fails that
child with ``States.DataLimitExceeded``.

Failure tolerance counts failed *items* (a failed batch fails all its items): past
``ToleratedFailureCount`` or ``ToleratedFailurePercentage`` (of all items; both 0 by default)
the Map fails with ``States.ExceedToleratedFailureThreshold``; exactly at it, it succeeds.
A count breach stops starting children at once; a percentage is judged when every item is known.

``ResultWriter`` (``arn:aws:states:::s3:putObject``) writes, under ``<Prefix>/<map run id>/``,
``manifest.json`` and ``SUCCEEDED_0.json`` / ``FAILED_0.json`` (arrays of child execution
records, as AWS's with ``Transformation: NONE``), even when the Map fails; the state's result
is then ``{"MapRunArn", "ResultWriterDetails": {"Bucket", "Key"}}``. Without a ResultWriter the
result is the children's outputs in item order (a failed child's as ``{"Error", "Cause"}``),
held to the 256 KiB state quota. Differences: each child runs on a thread of this process, not
as its own execution (no DescribeExecution for it); result files are never split at 5 GB.
"""

from __future__ import annotations

import io
import json
import logging
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any, Final

from mlops_cli.emulator.states.definition import ItemBatcher, State
from mlops_cli.emulator.states.interpreter import (
    MAX_PAYLOAD_BYTES,
    Execution,
    Interpreter,
    StatesError,
    _iso,
)
from mlops_cli.emulator.states.item_reader import read_items
from mlops_cli.emulator.states.objects import ObjectSource
from mlops_cli.emulator.states.paths import read

log = logging.getLogger(__name__)

EXCEEDED: Final = "States.ExceedToleratedFailureThreshold"
DEFAULT_WORKERS: Final = 16
_SEPARATORS: Final = (",", ":")
# One encoder for every item: json.dumps(..., separators=...) builds a new one per call.
_compact = json.JSONEncoder(separators=_SEPARATORS).encode


@dataclass
class Child:
    """One child execution's input: its items' count and its JSON."""

    index: int
    items: int
    input: Any
    input_json: str


@dataclass
class MapRunCounts:
    items: int = 0  # read so far (all of them once the reader is done)
    running_items: int = 0
    succeeded_items: int = 0
    failed_items: int = 0
    children: int = 0  # finished child executions
    running_children: int = 0
    failed_children: int = 0
    seconds: float = 0.0


@dataclass
class MapRunRecord:
    """What DescribeMapRun answers about one Map Run (kept for the stack's lifetime)."""

    arn: str
    execution_arn: str
    start: datetime
    max_concurrency: int
    tolerated_count: int | None
    tolerated_percentage: float | None
    counts: MapRunCounts
    status: str = "RUNNING"
    stop: datetime | None = None

    def describe(self) -> dict[str, Any]:
        c = self.counts
        pending = max(0, c.items - c.succeeded_items - c.failed_items - c.running_items)
        done_children = c.children - c.failed_children
        described: dict[str, Any] = {
            "mapRunArn": self.arn,
            "executionArn": self.execution_arn,
            "status": self.status,
            "startDate": self.start,
            "maxConcurrency": self.max_concurrency,
            "toleratedFailurePercentage": self.tolerated_percentage or 0.0,
            "toleratedFailureCount": self.tolerated_count or 0,
            "itemCounts": _counts(pending, c.running_items, c.succeeded_items, c.failed_items),
            "executionCounts": _counts(0, c.running_children, done_children, c.failed_children),
            "redriveCount": 0,
        }
        if self.stop is not None:
            described["stopDate"] = self.stop
        return described


def _counts(pending: int, running: int, succeeded: int, failed: int) -> dict[str, int]:
    return {
        "pending": pending,
        "running": running,
        "succeeded": succeeded,
        "failed": failed,
        "timedOut": 0,
        "aborted": 0,
        "total": pending + running + succeeded + failed,
        "resultsWritten": succeeded + failed,
        "failuresNotRedrivable": 0,
        "pendingRedrive": 0,
    }


@dataclass
class _Results:
    """What the children produced: files for a ResultWriter, else outputs in memory."""

    writer: bool
    lock: threading.Lock = field(default_factory=threading.Lock)
    files: dict[str, IO[bytes]] = field(default_factory=dict)
    outputs: dict[int, Any] = field(default_factory=dict)

    def add(self, status: str, index: int, record: dict[str, Any], output: Any) -> None:
        with self.lock:
            if not self.writer:
                self.outputs[index] = output
                return
            file = self.files.get(status)
            if file is None:
                # Closed by close(), once every child has added its record.
                file = self.files[status] = tempfile.TemporaryFile()  # noqa: SIM115
                file.write(b"[")
            else:
                file.write(b",")
            file.write(_compact(record).encode())

    def close(self) -> None:
        for file in self.files.values():
            file.close()


@dataclass
class _Run:
    """One Map Run: what its children share."""

    interpreter: Interpreter
    state: State
    parent: Execution
    data: Any
    ctx: dict[str, Any]
    run_id: str
    arn: str
    child_machine: str
    results: _Results
    tolerated_count: int | None
    tolerated_percentage: float | None
    counts: MapRunCounts = field(default_factory=MapRunCounts)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)


class DistributedMap:
    """Runs DISTRIBUTED Map states for an ``Interpreter`` (its ``map_runner``)."""

    def __init__(self, objects: ObjectSource, *, max_workers: int = DEFAULT_WORKERS) -> None:
        """``objects``: where the ItemReader reads and the ResultWriter writes."""
        self.objects = objects
        self.max_workers = max_workers
        self.last_counts: MapRunCounts | None = None
        self.runs: dict[str, MapRunRecord] = {}  # by ARN: DescribeMapRun

    def run(self, interpreter: Interpreter, state: State, data: Any, execution: Execution) -> Any:
        ctx = execution.context(state.name, interpreter.clock.now())
        run_id = str(uuid.uuid4())
        label = re.sub(r"[^A-Za-z0-9_-]", "", state.label or state.name)[:40] or "Map"
        prefix = execution.machine_arn.rsplit(":stateMachine:", 1)[0]
        writer_target = self._writer_target(interpreter, state, data, ctx)
        count, percentage = self._tolerance(interpreter, state, data)
        run = _Run(
            interpreter=interpreter,
            state=state,
            parent=execution,
            data=data,
            ctx=ctx,
            run_id=run_id,
            arn=f"{prefix}:mapRun:{execution.machine_name}/{label}:{run_id}",
            child_machine=f"{execution.machine_arn}/{label}",
            results=_Results(writer=writer_target is not None),
            tolerated_count=count,
            tolerated_percentage=percentage,
        )
        record = MapRunRecord(
            arn=run.arn,
            execution_arn=execution.arn,
            start=datetime.now(UTC),
            max_concurrency=interpreter.max_concurrency(state, data),
            tolerated_count=count,
            tolerated_percentage=percentage,
            counts=run.counts,
        )
        self.runs[run.arn] = record
        try:
            self._run_children(run, label)
            output: Any
            if writer_target is not None:
                details = self._write(writer_target, run_id, run.arn, run.results)
                output = {"MapRunArn": run.arn, "ResultWriterDetails": details}
            else:
                output = [run.results.outputs[i] for i in sorted(run.results.outputs)]
        except BaseException:  # the reader or the writer failed: the Map Run did too
            record.stop, record.status = datetime.now(UTC), "FAILED"
            raise
        finally:
            run.results.close()
        counts = run.counts
        exceeded = self._exceeded(counts, count, percentage)
        record.stop = datetime.now(UTC)
        record.status = (
            "ABORTED" if execution.cancelled.is_set() else "FAILED" if exceeded else "SUCCEEDED"
        )
        log.info(
            "map run %s: %d items in %d children, %d items failed, %.2f s",
            run.arn,
            counts.items,
            counts.children,
            counts.failed_items,
            counts.seconds,
        )
        if execution.cancelled.is_set():
            raise StatesError("States.Cancelled", "the execution was stopped")
        if exceeded:
            raise StatesError(
                EXCEEDED,
                f"The specified tolerated failure threshold was exceeded: {counts.failed_items} "
                f"of {counts.items} items failed (tolerated: count {count}, "
                f"percentage {percentage})",
            )
        if writer_target is None:
            size = len(_compact(output))
            if size > MAX_PAYLOAD_BYTES:
                raise StatesError(
                    "States.DataLimitExceeded",
                    f"the Map's result is {size} bytes, over the {MAX_PAYLOAD_BYTES}-byte "
                    "quota: add a ResultWriter",
                )
        return output

    def _run_children(self, run: _Run, label: str) -> None:
        """Every child on a bounded pool, reading ahead at most two batches per worker."""
        started = time.monotonic()
        limit = run.interpreter.max_concurrency(run.state, run.data) or self.max_workers
        workers = max(1, min(limit, self.max_workers))
        in_flight = threading.BoundedSemaphore(workers * 2)

        def run_child(child: Child) -> None:
            try:
                self._run_child(run, child)
                with run.lock:
                    failed = run.counts.failed_items
                    count, percentage = run.tolerated_count, run.tolerated_percentage
                    if count is not None and failed > count:
                        run.stop.set()
                    if count is None and not percentage and failed:
                        run.stop.set()
            finally:
                in_flight.release()

        cancelled = run.parent.cancelled
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"map:{label}") as pool:
            for child in self._children(run):
                if not _acquire(in_flight, run.stop, cancelled):
                    break
                pool.submit(run_child, child)
        run.counts.seconds = time.monotonic() - started
        self.last_counts = run.counts

    # ------------------------------------------------------------------ items and batches

    def _children(self, run: _Run) -> Iterator[Child]:
        interpreter, state, data, ctx, counts = (
            run.interpreter,
            run.state,
            run.data,
            run.ctx,
            run.counts,
        )
        items = self._items(interpreter, state, data, ctx)
        selected = (
            interpreter.item_input(state, data, ctx, index, item)
            for index, item in enumerate(items)
        )
        batcher = state.item_batcher
        if batcher is None:
            for index, item in enumerate(selected):
                counts.items += 1
                yield Child(index, 1, item, _compact(item))
            return
        max_items, max_bytes = self._batch_limits(interpreter, batcher, data)
        batch_input = None if batcher.batch_input is None else batcher.batch_input(data, ctx)
        # {"Items":[...]} or {"Items":[...],"BatchInput":...}: the size without the items.
        tail = "" if batch_input is None else ',"BatchInput":' + _compact(batch_input)
        overhead = len('{"Items":[]') + len(tail) + 1
        batch: list[str] = []
        size = overhead
        index = 0

        def child() -> Child:
            text = '{"Items":[' + ",".join(batch) + "]" + tail + "}"
            return Child(index, len(batch), None, text)

        for item in selected:
            counts.items += 1
            encoded = _compact(item)
            # ASCII (non-ASCII is \u-escaped): characters are bytes, a little over UTF-8's count.
            cost = len(encoded) + (1 if batch else 0)
            if batch and (
                (max_items is not None and len(batch) >= max_items)
                or (max_bytes is not None and size + cost > max_bytes)
            ):
                yield child()
                index += 1
                batch, size = [], overhead
                cost = len(encoded)
            batch.append(encoded)
            size += cost
        if batch:
            yield child()

    def _items(
        self, interpreter: Interpreter, state: State, data: Any, ctx: dict[str, Any]
    ) -> Iterator[Any]:
        reader = state.item_reader
        if reader is None:
            assert state.items_path is not None
            path = state.items_path
            items = interpreter._guard(lambda: read(path, data, ctx))
            if not isinstance(items, list):
                raise StatesError("States.Runtime", f"ItemsPath of {state.name!r} is not an array")
            return iter(items)
        params = interpreter._guard(lambda: reader.parameters(data, ctx))
        max_items = reader.max_items
        if reader.max_items_path is not None:
            max_items = interpreter.path_int(reader.max_items_path, data, "MaxItemsPath")
        stream = self.objects.open(
            str(params["Bucket"]), str(params["Key"]), params.get("VersionId")
        )
        return read_items(stream, reader, max_items or None)

    def _batch_limits(
        self, interpreter: Interpreter, batcher: ItemBatcher, data: Any
    ) -> tuple[int | None, int | None]:
        max_items, max_bytes = batcher.max_items, batcher.max_bytes
        if batcher.max_items_path is not None:
            max_items = interpreter.path_int(batcher.max_items_path, data, "MaxItemsPerBatchPath")
        if batcher.max_bytes_path is not None:
            max_bytes = interpreter.path_int(
                batcher.max_bytes_path, data, "MaxInputBytesPerBatchPath"
            )
        return max_items or None, max_bytes or None

    # ------------------------------------------------------------------ children

    def _run_child(self, run: _Run, child: Child) -> None:
        interpreter, state, parent = run.interpreter, run.state, run.parent
        results, counts, lock, child_machine = run.results, run.counts, run.lock, run.child_machine
        assert state.processor is not None
        name = str(uuid.uuid4())
        kind = "express" if state.execution_type == "EXPRESS" else "execution"
        arn_prefix = parent.machine_arn.rsplit(":stateMachine:", 1)[0]
        machine_name = child_machine.rsplit(":", 1)[-1]
        execution = Execution(
            arn=f"{arn_prefix}:{kind}:{machine_name}:{name}",
            name=name,
            machine_arn=child_machine,
            machine_name=machine_name,
            input=None,
            start=interpreter.clock.now(),
            cancelled=parent.cancelled,
        )
        record: dict[str, Any] = {
            "ExecutionArn": execution.arn,
            "Input": child.input_json,
            "InputDetails": {"Included": True},
            "Name": name,
        }
        with lock:
            counts.running_items += child.items
            counts.running_children += 1
        try:
            if len(child.input_json) > MAX_PAYLOAD_BYTES:
                raise StatesError(
                    "States.DataLimitExceeded",
                    f"the child execution's input is {len(child.input_json)} bytes, over "
                    f"the {MAX_PAYLOAD_BYTES}-byte quota",
                )
            execution.input = json.loads(child.input_json) if child.input is None else child.input
            execution.input_json = child.input_json
            output = interpreter.run_states(state.processor, execution.input, execution)
        except StatesError as err:
            failed = {"Error": err.error, "Cause": err.cause}
            results.add(
                "FAILED", child.index, self._record(record, execution, "FAILED", failed), failed
            )
            with lock:
                counts.running_items -= child.items
                counts.running_children -= 1
                counts.children += 1
                counts.failed_children += 1
                counts.failed_items += child.items
            log.warning("map child %s failed: %s", execution.arn, err)
            return
        done = {
            "Output": _compact(output),
            "OutputDetails": {"Included": True},
        }
        results.add(
            "SUCCEEDED", child.index, self._record(record, execution, "SUCCEEDED", done), output
        )
        with lock:
            counts.running_items -= child.items
            counts.running_children -= 1
            counts.children += 1
            counts.succeeded_items += child.items

    @staticmethod
    def _record(
        record: dict[str, Any], execution: Execution, status: str, extra: dict[str, Any]
    ) -> dict[str, Any]:
        stopped: datetime = datetime.now(execution.start.tzinfo)
        return {
            **record,
            **extra,
            "RedriveCount": 0,
            "RedriveStatus": "NOT_REDRIVABLE" if status == "SUCCEEDED" else "REDRIVABLE_BY_MAP_RUN",
            "StartDate": _iso(execution.start),
            "StateMachineArn": execution.machine_arn,
            "Status": status,
            "StopDate": _iso(stopped),
        }

    # ------------------------------------------------------------------ tolerance and results

    def _tolerance(
        self, interpreter: Interpreter, state: State, data: Any
    ) -> tuple[int | None, float | None]:
        count: int | None = state.tolerated_count
        percentage = state.tolerated_percentage
        if state.tolerated_count_path is not None:
            count = interpreter.path_int(
                state.tolerated_count_path, data, "ToleratedFailureCountPath"
            )
        if state.tolerated_percentage_path is not None:
            path = state.tolerated_percentage_path
            percentage = float(interpreter.path_int(path, data, "ToleratedFailurePercentagePath"))
        return count, percentage

    @staticmethod
    def _exceeded(counts: MapRunCounts, count: int | None, percentage: float | None) -> bool:
        if not counts.failed_items:
            return False
        if count is None and percentage is None:
            return True
        over_count = count is not None and counts.failed_items > count
        over_share = (
            percentage is not None and counts.failed_items * 100 > percentage * counts.items
        )
        if count is not None and percentage is not None:
            return over_count or over_share
        return over_count if count is not None else over_share

    def _writer_target(
        self, interpreter: Interpreter, state: State, data: Any, ctx: dict[str, Any]
    ) -> tuple[str, str] | None:
        if state.result_writer is None:
            return None
        writer = state.result_writer
        params = interpreter._guard(lambda: writer.parameters(data, ctx))
        prefix = str(params.get("Prefix", ""))
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return str(params["Bucket"]), prefix

    def _write(
        self, target: tuple[str, str], run_id: str, run_arn: str, results: _Results
    ) -> dict[str, str]:
        bucket, prefix = target
        folder = f"{prefix}{run_id}/"
        files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
        try:
            for status, file in sorted(results.files.items()):
                file.write(b"]")
                file.seek(0)
                key = f"{folder}{status}_0.json"
                size = self.objects.write(bucket, key, file)
                files[status].append({"Key": key, "Size": size})
            manifest = {"DestinationBucket": bucket, "MapRunArn": run_arn, "ResultFiles": files}
            key = f"{folder}manifest.json"
            self.objects.write(bucket, key, io.BytesIO(json.dumps(manifest).encode()))
        except Exception as exc:  # moto's or boto3's errors (a missing bucket, ...)
            raise StatesError(
                "States.ResultWriterFailed", f"s3://{bucket}/{folder}: {exc}"
            ) from None
        return {"Bucket": bucket, "Key": key}


def _acquire(
    slots: threading.BoundedSemaphore, stop: threading.Event, cancelled: threading.Event
) -> bool:
    """A slot for one more child, unless the run stopped meanwhile (False)."""
    while not (stop.is_set() or cancelled.is_set()):
        if slots.acquire(timeout=0.5):
            if stop.is_set() or cancelled.is_set():
                slots.release()
                return False
            return True
    return False
