"""Capture and feedback records: one JSON log line each, written on the request path.

One file for one format: what the inference function writes and accepts, and the logger reads.

The inference function prints each record to stdout; a CloudWatch Logs subscription filter
(``{ $.type = "capture" || $.type = "feedback" }``) hands them to the prediction logger. A log
line costs microseconds where a queue call costs a network round trip, so the common case (one
row) is one dict and one C-encoder call. A CloudWatch event holds at most 256 KB, so a large
request is split into self-contained lines that never separate an instance from its outputs.

Lines are ASCII (``ensure_ascii``): their length in characters is their size in bytes, so the
size check needs no encode, and a lone surrogate cannot break a log event. They never hold
``NaN``: the filter pattern only matches valid JSON, so such a line would be silently dropped.
"""

from __future__ import annotations

import functools
import json
import json.encoder
import math
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any

from mlops.domain.schema import MAX_PROBLEMS, finite_number, show_value
from mlops.domain.strict_json import finite
from mlops.errors import InvalidInputError, PayloadTooLargeError, Problem

RECORD_SCHEMA = 1
# CloudWatch Logs caps an event at 256 KB (262,144 bytes); keep a margin for what Lambda adds.
MAX_LINE_BYTES = 200_000
FEEDBACK_FIELDS = frozenset({"prediction_id", "actual"})
# The form /predict issues (str(uuid.uuid4())): feedback joins on the exact string.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CAPTURE_OUTPUTS = ("prediction_ids", "predictions", "probabilities")
# Where a capture came from: live traffic (a record without ``source`` is live: older lines
# have none) or evaluation traffic (``"evaluation": true`` in the request), which is stored for
# audit but kept out of sketches, serving digests and labeled traffic.
LIVE = "live"
EVALUATION = "evaluation"
# Batch scoring's predictions (``mlops batch``, uploads under the batch prefix): written to S3
# directly by the batch function, never through the logger, and in no live verdict either.
BATCH = "batch"
CAPTURE_SOURCES = (LIVE, EVALUATION, BATCH)
# The largest label whose square is a finite float64 (≈ 1.34e154): live quality squares errors,
# so a larger label would make RMSE infinite and R² NaN, which no metric or report may carry.
MAX_LABEL_MAGNITUDE = math.sqrt(sys.float_info.max)


def _make_encoder() -> Callable[[Any], str]:
    """Compact, ASCII, NaN-refusing JSON, as fast as CPython allows.

    ``json.dumps`` with separators builds a ``JSONEncoder`` per call, and ``encode`` builds a C
    encoder per call; one C encoder made once saves about a fifth of a one-row capture. No
    circular-reference check: what we encode came from ``json.loads`` or from the model.
    """
    fallback = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # not CPython, or built without _json
        return fallback.encode
    chunks = make(
        None,  # markers: no circular-reference check
        fallback.default,  # raises TypeError for what JSON cannot hold
        json.encoder.encode_basestring_ascii,
        None,  # indent
        ":",  # key separator
        ",",  # item separator
        False,  # sort_keys
        False,  # skipkeys
        False,  # allow_nan
    )

    def encode(value: Any) -> str:
        return "".join(chunks(value, 0))

    return encode


_encode = _make_encoder()


class MalformedRecordError(InvalidInputError):
    """A log line the prediction logger cannot store as a capture or feedback record."""

    code = "malformed_record"


# --- writing (inference function) ------------------------------------------------------------


def capture_lines(
    *,
    model: str,
    version: str,
    alias: str | None,
    variant: str | None,
    request_id: str,
    timestamp_ms: int,
    latency_ms: float | None,
    instances: list[dict[str, Any]],
    prediction_ids: list[str],
    predictions: list[Any],
    probabilities: list[dict[str, float]] | None,
    max_bytes: int = MAX_LINE_BYTES,
    candidate_error: str | None = None,
    candidate_version: str | None = None,
    evaluation: bool = False,
) -> list[str]:
    """The capture line(s) for one request, each at most ``max_bytes`` bytes.

    ``evaluation`` marks the request as evaluation traffic (``"source": "evaluation"``); live
    lines carry no ``source``, as before it existed.

    ``candidate_error`` says that a rollout's candidate was asked for this request (shadow or
    canary) and failed, so production answered: the rollout's evaluator counts it.

    One line unless it would be too big; then parts ``1..n`` sharing ``request_id``, each
    holding whole instances with their outputs. An instance too big for a line on its own is
    sent without its inputs (``"instances": null, "truncated": true``; without its
    probabilities too if they alone are too big), so its prediction id and prediction still
    arrive and the loss is visible. Raises ``ValueError`` (for the caller to count, never to
    fail the request) only if the envelope alone exceeds ``max_bytes``.
    """
    n = len(prediction_ids)
    if (
        len(instances) != n
        or len(predictions) != n
        or (probabilities is not None and len(probabilities) != n)
    ):
        raise ValueError(
            "instances, prediction_ids, predictions and probabilities differ in length"
        )
    # Common case: the envelope's constant head is encoded once per model, the rest in one call.
    tail: dict[str, Any] = {
        "request_id": request_id,
        "ts": timestamp_ms,
        "latency_ms": latency_ms,
        "part": 1,
        "parts": 1,
        "instances": instances,
        "prediction_ids": prediction_ids,
        "predictions": predictions,
    }
    if probabilities is not None:
        tail["probabilities"] = probabilities
    if candidate_error is not None:
        tail["candidate_error"] = candidate_error
        if candidate_version is not None:
            tail["candidate_version"] = candidate_version
    if evaluation:
        tail["source"] = EVALUATION
    head = _capture_head(model, version, alias, variant)
    try:
        line = head + _encode(tail)[1:]
    except ValueError:  # a model emitted NaN or infinity: send null in its place
        tail = finite(tail)
        line = head + _encode(tail)[1:]
    if len(line) <= max_bytes:
        return [line]
    record = _capture_envelope(model, version, alias, variant) | tail
    return _split_capture(record, max_bytes)


@functools.lru_cache(maxsize=64)
def _capture_head(model: str, version: str, alias: str | None, variant: str | None) -> str:
    """``{"type":"capture",...,"variant":...,`` for one served model: constant per container."""
    head = _encode(_capture_envelope(model, version, alias, variant))
    return head[:-1] + ","


def _capture_envelope(
    model: str, version: str, alias: str | None, variant: str | None
) -> dict[str, Any]:
    """The keys every capture line starts with: the record's kind and what served it."""
    return {
        "type": "capture",
        "schema": RECORD_SCHEMA,
        "model": model,
        "version": version,
        "alias": alias,
        "variant": variant,
    }


def feedback_line(
    *, model: str, timestamp_ms: int, items: list[dict[str, Any]], max_bytes: int = MAX_LINE_BYTES
) -> list[str]:
    """The feedback line(s) for one ``POST /feedback`` (items as ``parse_feedback`` returns
    them), split like captures so each line fits a log event."""
    record: dict[str, Any] = {
        "type": "feedback",
        "schema": RECORD_SCHEMA,
        "model": model,
        "ts": timestamp_ms,
        "feedback": items,
    }
    record, line = _encode_finite(record)
    if len(line) <= max_bytes:
        return [line]
    budget = max_bytes - len(_encode({**record, "feedback": []}))
    lines: list[str] = []
    for start, stop in _pack([len(_encode(item)) + 1 for item in record["feedback"]], budget):
        if stop == start:  # one item alone is over the budget: nothing smaller to send
            raise ValueError(f"feedback item {start} does not fit a {max_bytes}-byte line")
        lines.append(_encode({**record, "feedback": record["feedback"][start:stop]}))
    return lines


def _encode_finite(record: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Encode ``record``; if a model emitted NaN or infinity, send ``null`` in its place."""
    try:
        return record, _encode(record)
    except ValueError:
        cleaned = finite(record)
        return cleaned, _encode(cleaned)


def _split_capture(record: dict[str, Any], max_bytes: int) -> list[str]:
    """Pack whole rows (instance + outputs) into parts; rows that fit no part are truncated."""
    outputs = [k for k in _CAPTURE_OUTPUTS if k in record]
    n = len(record["prediction_ids"])
    # The envelope with n in both part fields bounds the digits of every real part number.
    empty = {**record, "part": n, "parts": n, "instances": []} | {k: [] for k in outputs}
    budget = max_bytes - len(_encode(empty))
    sizes = [
        len(_encode(record["instances"][i]))
        + sum(len(_encode(record[k][i])) for k in outputs)
        + 1
        + len(outputs)  # a comma per list element, counted even for the first
        for i in range(n)
    ]
    chunks = _pack(sizes, budget)
    lines = []
    for part, (start, stop) in enumerate(chunks, start=1):
        line = {**record, "part": part, "parts": len(chunks)}
        if stop == start:  # this instance alone is over the budget: send its outputs only
            line |= {"instances": None, "truncated": True}
            line |= {k: record[k][start : start + 1] for k in outputs}
            text = _encode(line)
            if len(text) > max_bytes and "probabilities" in line:
                text = _encode(line | {"probabilities": None})
            if len(text) > max_bytes:
                raise ValueError(f"a capture envelope does not fit a {max_bytes}-byte line")
        else:
            line["instances"] = record["instances"][start:stop]
            line |= {k: record[k][start:stop] for k in outputs}
            text = _encode(line)
        lines.append(text)
    return lines


def _pack(sizes: list[int], budget: int) -> list[tuple[int, int]]:
    """Greedy consecutive ``[start, stop)`` runs whose sizes sum to at most ``budget``; an item
    over the budget on its own becomes an empty run ``(i, i)`` for the caller to handle."""
    runs: list[tuple[int, int]] = []
    start, used = 0, 0
    for i, size in enumerate(sizes):
        if size > budget:
            if i > start:
                runs.append((start, i))
            runs.append((i, i))
            start, used = i + 1, 0
        elif used + size > budget:
            runs.append((start, i))
            start, used = i, size
        else:
            used += size
    if start < len(sizes):
        runs.append((start, len(sizes)))
    return runs


# --- POST /feedback ---------------------------------------------------------------------------


def parse_feedback(
    body: Any, *, task: str, labels: tuple[str | int, ...], max_items: int
) -> list[dict[str, Any]]:
    """Validate a ``POST /feedback`` body into ``[{"prediction_id", "actual"}, ...]``.

    Raises ``InvalidInputError`` listing every problem by field (up to ``MAX_PROBLEMS``) and
    ``PayloadTooLargeError`` over ``max_items``. An unknown prediction id is not a problem: a
    label may arrive before its capture is stored, and is joined later.
    """
    if task not in ("regression", "classification"):
        raise ValueError(f"unknown task {task!r}")
    if task == "classification" and not labels:
        raise ValueError("a classification model needs its class labels")
    if not isinstance(body, Mapping):
        raise InvalidInputError(
            "the body must be a JSON object",
            [
                Problem(
                    "body", 'expected {"prediction_id": ..., "actual": ...} or {"feedback": [...]}'
                )
            ],
        )
    if "feedback" not in body:  # a single label
        problems = [Problem(k, "unknown field") for k in sorted(body.keys() - FEEDBACK_FIELDS)]
        _check_item(body, "", task, labels, problems)
        return _items_or_raise([body], problems)
    problems = [Problem(k, "unknown field") for k in sorted(body.keys() - {"feedback"})]
    items = body["feedback"]
    if not isinstance(items, list) or not items:
        problems.append(Problem("feedback", "expected a non-empty list of objects"))
        raise InvalidInputError(f"{len(problems)} problem(s) in feedback", problems)
    if len(items) > max_items:
        raise PayloadTooLargeError(
            f"{len(items)} feedback items exceed the limit of {max_items}",
            [Problem("feedback", f"at most {max_items} items per request")],
        )
    first_seen: dict[str, int] = {}
    for i, item in enumerate(items):
        where = f"feedback[{i}]"
        if not isinstance(item, Mapping):
            problems.append(Problem(where, "expected an object"))
            continue
        problems.extend(
            Problem(f"{where}.{k}", "unknown field") for k in sorted(item.keys() - FEEDBACK_FIELDS)
        )
        if _check_item(item, f"{where}.", task, labels, problems):
            earlier = first_seen.setdefault(item["prediction_id"], i)
            if earlier != i:
                problems.append(
                    Problem(f"{where}.prediction_id", f"duplicate of feedback[{earlier}]")
                )
    return _items_or_raise(items, problems)


def _check_item(
    item: Mapping[str, Any],
    prefix: str,
    task: str,
    labels: tuple[str | int, ...],
    problems: list[Problem],
) -> bool:
    """Append the item's problems; True when its prediction id is valid (for duplicates)."""
    valid_id = False
    if "prediction_id" not in item:
        problems.append(Problem(f"{prefix}prediction_id", "missing required field"))
    elif not isinstance(pid := item["prediction_id"], str) or not _CANONICAL_UUID.fullmatch(pid):
        problems.append(
            Problem(
                f"{prefix}prediction_id",
                f"expected a prediction id as /predict returns it (a lowercase UUID), "
                f"got {show_value(item['prediction_id'])}",
            )
        )
    else:
        valid_id = True
    if "actual" not in item:
        problems.append(Problem(f"{prefix}actual", "missing required field"))
    else:
        problem = (
            _number_problem(item["actual"])
            if task == "regression"
            else _label_problem(item["actual"], labels)
        )
        if problem:
            problems.append(Problem(f"{prefix}actual", problem))
    return valid_id


def _number_problem(value: Any) -> str | None:
    number = finite_number(value)
    if number is None:
        return f"expected a finite number, got {show_value(value)}"
    if abs(number) > MAX_LABEL_MAGNITUDE:
        return (
            f"expected a number of magnitude at most {MAX_LABEL_MAGNITUDE:.3g} "
            f"(its square must be finite), got {show_value(value)}"
        )
    return None


def _label_problem(value: Any, labels: tuple[str | int, ...]) -> str | None:
    # Compare type and value: 1 == 1.0 == True in Python, but the model was trained on one type.
    if not isinstance(value, bool) and any(
        type(value) is type(label) and value == label for label in labels
    ):
        return None
    shown = ", ".join(json.dumps(label) for label in labels[:20])
    more = ", ..." if len(labels) > 20 else ""
    same_text = [label for label in labels if str(label) == str(value)]
    if same_text and not isinstance(value, bool):
        return f"expected the class {json.dumps(same_text[0])}, got {json.dumps(value)}"
    return f"expected one of the classes {shown}{more}, got {show_value(value)}"


def _items_or_raise(items: list[Any], problems: list[Problem]) -> list[dict[str, Any]]:
    if problems:
        count = len(problems)
        noun = "problem" if count == 1 else "problems"
        listed = f" (first {MAX_PROBLEMS} listed)" if count > MAX_PROBLEMS else ""
        raise InvalidInputError(f"{count} {noun} in feedback{listed}", problems[:MAX_PROBLEMS])
    return [{"prediction_id": item["prediction_id"], "actual": item["actual"]} for item in items]


# --- reading (prediction logger) --------------------------------------------------------------


def parse_capture_line(message: str) -> dict[str, Any]:
    """Parse one log message into a capture or feedback record, checking its shape.

    Raises ``MalformedRecordError`` naming every problem, so the logger can quarantine the line
    and store the rest of its batch. Unknown keys are tolerated: a newer inference function may
    add some while an older logger is still deployed.
    """
    try:
        record = json.loads(message, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise MalformedRecordError(
            "not a JSON record", [Problem("message", f"not valid JSON: {exc}")]
        ) from exc
    if not isinstance(record, dict):
        raise MalformedRecordError("not a JSON record", [Problem("message", "expected an object")])
    kind = record.get("type")
    if kind not in ("capture", "feedback"):
        raise MalformedRecordError(
            "not a capture or feedback record",
            [Problem("type", f'expected "capture" or "feedback", got {show_value(kind)}')],
        )
    problems: list[Problem] = []
    if not _is_int(record.get("schema")) or record["schema"] != RECORD_SCHEMA:
        problems.append(
            Problem("schema", f"expected {RECORD_SCHEMA}, got {show_value(record.get('schema'))}")
        )
    _require(record, "model", _is_text, "a non-empty string", problems)
    _require(record, "ts", _is_timestamp, "a timestamp in milliseconds", problems)
    if kind == "capture":
        _check_capture(record, problems)
    else:
        _check_feedback(record, problems)
    if problems:
        count = len(problems)
        listed = f" (first {MAX_PROBLEMS} listed)" if count > MAX_PROBLEMS else ""
        raise MalformedRecordError(
            f"malformed {kind} record: {count} problem(s){listed}", problems[:MAX_PROBLEMS]
        )
    return record


def _check_capture(record: dict[str, Any], problems: list[Problem]) -> None:
    _require(record, "version", _is_text, "a non-empty string", problems)
    _require(record, "request_id", _is_text, "a non-empty string", problems)
    for key in ("alias", "variant"):
        _require(
            record, key, lambda v: v is None or isinstance(v, str), "a string or null", problems
        )
    _require(
        record, "latency_ms", lambda v: v is None or _is_number(v), "a number or null", problems
    )
    for key in ("part", "parts"):
        _require(record, key, lambda v: _is_int(v) and v >= 1, "a positive integer", problems)
    if (
        _is_int(record.get("part"))
        and _is_int(record.get("parts"))
        and record["part"] > record["parts"]
    ):
        problems.append(Problem("part", f"part {record['part']} of {record['parts']}"))
    source = record.get("source", LIVE)
    if source not in CAPTURE_SOURCES:
        problems.append(
            Problem(
                "source",
                f"expected one of {', '.join(CAPTURE_SOURCES)}, got {show_value(source)}",
            )
        )
    truncated = record.get("truncated", False)
    if not isinstance(truncated, bool):
        problems.append(Problem("truncated", f"expected a boolean, got {show_value(truncated)}"))
    lengths: dict[str, int] = {}
    ids = record.get("prediction_ids")
    if not isinstance(ids, list) or not ids:
        problems.append(Problem("prediction_ids", "expected a non-empty list"))
    else:
        lengths["prediction_ids"] = len(ids)
        problems.extend(
            Problem(f"prediction_ids[{i}]", "expected a non-empty string")
            for i, pid in enumerate(ids)
            if not _is_text(pid)
        )
    predictions = record.get("predictions")
    if not isinstance(predictions, list):
        problems.append(Problem("predictions", "expected a list"))
    else:
        lengths["predictions"] = len(predictions)
    instances = record.get("instances")
    if instances is None and truncated is not True:
        problems.append(Problem("instances", 'null only in a "truncated": true record'))
    elif isinstance(instances, list):
        lengths["instances"] = len(instances)
        problems.extend(
            Problem(f"instances[{i}]", "expected an object")
            for i, instance in enumerate(instances)
            if not isinstance(instance, dict)
        )
    elif instances is not None:
        problems.append(Problem("instances", "expected a list of objects"))
    probabilities = record.get("probabilities")
    if isinstance(probabilities, list):
        lengths["probabilities"] = len(probabilities)
        problems.extend(
            Problem(f"probabilities[{i}]", "expected an object or null")
            for i, row in enumerate(probabilities)
            if row is not None and not isinstance(row, dict)
        )
    elif probabilities is not None:
        problems.append(Problem("probabilities", "expected a list or null"))
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k} {v}" for k, v in lengths.items())
        problems.append(Problem("prediction_ids", f"lists differ in length: {shown}"))


def _check_feedback(record: dict[str, Any], problems: list[Problem]) -> None:
    items = record.get("feedback")
    if not isinstance(items, list) or not items:
        problems.append(Problem("feedback", "expected a non-empty list"))
        return
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            problems.append(Problem(f"feedback[{i}]", "expected an object"))
            continue
        if not _is_text(item.get("prediction_id")):
            problems.append(Problem(f"feedback[{i}].prediction_id", "expected a non-empty string"))
        if "actual" not in item:
            problems.append(Problem(f"feedback[{i}].actual", "missing required field"))


def _require(
    record: dict[str, Any],
    key: str,
    check: Callable[[Any], bool],
    expected: str,
    problems: list[Problem],
) -> None:
    if key not in record:
        problems.append(Problem(key, "missing required field"))
    elif not check(record[key]):
        problems.append(Problem(key, f"expected {expected}, got {show_value(record[key])}"))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _is_timestamp(value: Any) -> bool:
    return _is_int(value) and value >= 0


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def capture_rows(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One flat row per prediction (what Athena queries and sketches bin), from a record
    ``parse_capture_line`` accepted. A truncated row has ``"inputs": null``."""
    ids = record["prediction_ids"]
    instances = record["instances"] or [None] * len(ids)
    probabilities = record.get("probabilities")
    truncated = record.get("truncated") is True
    evaluation = is_evaluation(record)
    rows = []
    for i, pid in enumerate(ids):
        row = {
            "prediction_id": pid,
            "request_id": record["request_id"],
            "ts": record["ts"],
            "model": record["model"],
            "version": record["version"],
            "variant": record["variant"],
            "inputs": instances[i],
            "prediction": record["predictions"][i],
            "latency_ms": record.get("latency_ms"),
        }
        if isinstance(record.get("candidate_error"), str):
            # This request's candidate (shadow or canary) failed; production answered.
            row["candidate_error"] = record["candidate_error"]
            if isinstance(record.get("candidate_version"), str):
                row["candidate_version"] = record["candidate_version"]
        if probabilities is not None:
            row["probabilities"] = probabilities[i]
        if truncated:
            row["truncated"] = True
        if evaluation:
            row["source"] = EVALUATION
        elif record.get("source") == BATCH:
            row["source"] = BATCH
        rows.append(row)
    return rows


def is_evaluation(row: Mapping[str, Any]) -> bool:
    """Whether a capture row (or record) is evaluation traffic: stored, never judged."""
    return row.get("source") == EVALUATION


def is_live(row: Mapping[str, Any]) -> bool:
    """Whether a capture row (or record) is live traffic, the only kind drift, live quality,
    the rollout judge and labeled traffic count (evaluation and batch rows are stored only)."""
    return bool(row.get("source", LIVE) == LIVE)


def feedback_rows(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One flat row per label, from a feedback record ``parse_capture_line`` accepted."""
    return [
        {
            "prediction_id": item["prediction_id"],
            "actual": item["actual"],
            "ts": record["ts"],
            "model": record["model"],
        }
        for item in record["feedback"]
    ]
