"""A state machine definition (Amazon States Language, JSONPath), checked and compiled once.

``compile_machine`` turns the definition into ``Machine``/``State`` objects the interpreter runs:
paths parsed, payload templates and intrinsic calls compiled, Choice rules compiled. Whatever the
local interpreter does not run (a state type, a field, a resource, an intrinsic, a JSONPath
form, JSONata) raises ``UnsupportedDefinitionError`` naming the state and the field, so the local
stack refuses the template when it starts instead of ignoring part of it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from mlops.errors import ConfigError
from mlops_cli.emulator.states.choice import Predicate, compile_rule
from mlops_cli.emulator.states.intrinsics import compile_intrinsic
from mlops_cli.emulator.states.paths import (
    Path,
    Template,
    compile_template,
    parse_path,
    parse_result_path,
)

LAMBDA_INVOKE: Final = "arn:aws:states:::lambda:invoke"
S3_GET_OBJECT: Final = "arn:aws:states:::s3:getObject"
S3_PUT_OBJECT: Final = "arn:aws:states:::s3:putObject"
STATES_ALL: Final = "States.ALL"

_COMMON: Final = {"Type", "Comment"}
_IO: Final = {"InputPath", "OutputPath"}
_FLOW: Final = {"Next", "End"}
_RESULT: Final = {"ResultPath", "ResultSelector", "Retry", "Catch"}
FIELDS: Final[dict[str, frozenset[str]]] = {
    "Task": frozenset(
        _COMMON | _IO | _FLOW | _RESULT | {"Resource", "Parameters", "TimeoutSeconds"}
    ),
    "Pass": frozenset(_COMMON | _IO | _FLOW | {"ResultPath", "Parameters", "Result"}),
    "Choice": frozenset(_COMMON | _IO | {"Choices", "Default"}),
    "Wait": frozenset(
        _COMMON | _IO | _FLOW | {"Seconds", "SecondsPath", "Timestamp", "TimestampPath"}
    ),
    "Succeed": frozenset(_COMMON | _IO),
    "Fail": frozenset(_COMMON | {"Error", "Cause", "ErrorPath", "CausePath"}),
    "Map": frozenset(
        _COMMON
        | _IO
        | _FLOW
        | _RESULT
        | {
            "ItemsPath",
            "ItemReader",
            "ItemSelector",
            "Parameters",
            "ItemBatcher",
            "ItemProcessor",
            "Iterator",
            "MaxConcurrency",
            "MaxConcurrencyPath",
            "ToleratedFailurePercentage",
            "ToleratedFailurePercentagePath",
            "ToleratedFailureCount",
            "ToleratedFailureCountPath",
            "ResultWriter",
            "Label",
        }
    ),
}
_MACHINE_FIELDS: Final = frozenset({"StartAt", "States", "Comment", "Version", "TimeoutSeconds"})
_PROCESSOR_FIELDS: Final = frozenset({"StartAt", "States", "Comment", "ProcessorConfig"})
_INPUT_TYPES: Final = frozenset({"CSV", "JSON", "JSONL"})
_DELIMITERS: Final = {"COMMA": ",", "PIPE": "|", "SEMICOLON": ";", "SPACE": " ", "TAB": "\t"}


class UnsupportedDefinitionError(ConfigError):
    """A definition the local interpreter will not run; the message names state and field."""

    code = "unsupported_definition"


@dataclass(frozen=True)
class Retrier:
    errors: tuple[str, ...]
    interval: float = 1.0
    max_attempts: int = 3
    backoff: float = 2.0
    max_delay: float | None = None
    jitter: bool = False


@dataclass(frozen=True)
class Catcher:
    errors: tuple[str, ...]
    next: str
    result_path: Path | None


@dataclass(frozen=True)
class ItemReader:
    input_type: str
    parameters: Template
    header_location: str = "FIRST_ROW"
    headers: tuple[str, ...] = ()
    delimiter: str = ","
    max_items: int | None = None
    max_items_path: Path | None = None


@dataclass(frozen=True)
class ItemBatcher:
    max_items: int | None = None
    max_items_path: Path | None = None
    max_bytes: int | None = None
    max_bytes_path: Path | None = None
    batch_input: Template | None = None


@dataclass(frozen=True)
class ResultWriter:
    parameters: Template


@dataclass
class State:
    name: str
    type: str
    next: str | None = None
    end: bool = False
    input_path: Path | None = None  # None: "InputPath": null, the state gets {}
    output_path: Path | None = None
    parameters: Template | None = None
    result_selector: Template | None = None
    result_path: Path | None = None  # None: "ResultPath": null, the input passes through
    retry: tuple[Retrier, ...] = ()
    catch: tuple[Catcher, ...] = ()
    # Task
    resource: str = ""
    function: str | None = None  # a plain Lambda ARN resource: the function
    timeout_seconds: float | None = None
    # Pass
    result: Any = None
    has_result: bool = False
    # Choice
    choices: tuple[tuple[Predicate, str], ...] = ()
    default: str | None = None
    # Wait
    seconds: float | None = None
    seconds_path: Path | None = None
    timestamp: str | None = None
    timestamp_path: Path | None = None
    # Fail
    error: str | None = None
    cause: str | None = None
    error_path: Path | None = None
    cause_path: Path | None = None
    # Map
    items_path: Path | None = None
    item_selector: Template | None = None
    processor: Machine | None = None
    distributed: bool = False
    execution_type: str = "STANDARD"
    max_concurrency: int = 0
    max_concurrency_path: Path | None = None
    item_reader: ItemReader | None = None
    item_batcher: ItemBatcher | None = None
    tolerated_percentage: float | None = None
    tolerated_percentage_path: Path | None = None
    tolerated_count: int | None = None
    tolerated_count_path: Path | None = None
    result_writer: ResultWriter | None = None
    label: str | None = None


@dataclass
class Machine:
    start_at: str
    states: dict[str, State]
    timeout_seconds: float | None = None
    functions: set[str] = field(default_factory=set)  # static FunctionNames its Tasks call


FunctionCheck = Callable[[str], bool]


def compile_machine(definition: Mapping[str, Any], known_function: FunctionCheck) -> Machine:
    """``known_function(name_or_arn)``: whether a Task's static function exists (the template's);
    an unknown one is refused too."""
    return _Compiler(known_function).machine(definition, "", _MACHINE_FIELDS)


class _Compiler:
    def __init__(self, known_function: FunctionCheck) -> None:
        self.known_function = known_function

    def machine(self, raw: Any, where: str, allowed: frozenset[str]) -> Machine:
        label = where or "definition"
        if not isinstance(raw, Mapping):
            raise UnsupportedDefinitionError(f"{label}: must be an object")
        if raw.get("QueryLanguage", "JSONPath") != "JSONPath":
            raise UnsupportedDefinitionError(f"{label}.QueryLanguage: only JSONPath runs locally")
        unknown = sorted(set(raw) - allowed - {"QueryLanguage"})
        if unknown:
            raise UnsupportedDefinitionError(f"{label}: fields {unknown} are not supported locally")
        states_raw = raw.get("States")
        if not isinstance(states_raw, Mapping) or not states_raw:
            raise UnsupportedDefinitionError(f"{label}: States must be a non-empty object")
        states = {name: self.state(name, spec, where) for name, spec in states_raw.items()}
        start = raw.get("StartAt")
        if start not in states:
            raise UnsupportedDefinitionError(f"{label}: StartAt {start!r} is not a state")
        for state in states.values():
            targets = [state.next, state.default]
            targets += [c.next for c in state.catch] + [n for _, n in state.choices]
            for target in targets:
                if target is not None and target not in states:
                    raise UnsupportedDefinitionError(
                        f"state {state.name!r}: transition to {target!r}, which is not a state"
                    )
        machine = Machine(str(start), states, _number(raw, "TimeoutSeconds", label))
        for state in states.values():
            if state.processor is not None:
                machine.functions |= state.processor.functions
            elif state.function:
                machine.functions.add(state.function)
        return machine

    def state(self, name: str, raw: Any, where: str) -> State:
        label = f"state {name!r}"
        if not isinstance(raw, Mapping):
            raise UnsupportedDefinitionError(f"{label}: must be an object")
        kind = raw.get("Type")
        if kind not in FIELDS:
            raise UnsupportedDefinitionError(
                f"{label}: Type {kind!r} is not supported locally "
                f"(supported: {', '.join(sorted(FIELDS))})"
            )
        unknown = sorted(set(raw) - FIELDS[kind])
        if unknown:
            raise UnsupportedDefinitionError(
                f"{label} ({kind}): field(s) {', '.join(unknown)} not supported locally"
            )
        try:
            return self._state(name, kind, raw, label)
        except UnsupportedDefinitionError:
            raise
        except (ValueError, TypeError) as exc:
            raise UnsupportedDefinitionError(f"{label}: {exc}") from None

    def _state(self, name: str, kind: str, raw: Mapping[str, Any], label: str) -> State:
        state = State(name=name, type=kind)
        if kind in ("Task", "Pass", "Wait", "Map"):
            state.next = raw.get("Next")
            state.end = bool(raw.get("End", False))
            if state.end == (state.next is not None):
                raise UnsupportedDefinitionError(f"{label}: exactly one of Next and End")
        state.input_path = _io_path(raw, "InputPath")
        state.output_path = _io_path(raw, "OutputPath")
        state.result_path = parse_result_path(raw.get("ResultPath", "$"))
        if "Parameters" in raw:
            state.parameters = self.template(raw["Parameters"], f"{label}.Parameters")
        if "ResultSelector" in raw:
            state.result_selector = self.template(raw["ResultSelector"], f"{label}.ResultSelector")
        state.retry = tuple(
            self.retrier(r, f"{label}.Retry[{i}]") for i, r in enumerate(raw.get("Retry", []))
        )
        state.catch = tuple(
            self.catcher(c, f"{label}.Catch[{i}]") for i, c in enumerate(raw.get("Catch", []))
        )
        if kind == "Task":
            self.task(state, raw, label)
        elif kind == "Pass":
            state.has_result = "Result" in raw
            state.result = raw.get("Result")
        elif kind == "Choice":
            choices = raw.get("Choices")
            if not isinstance(choices, list) or not choices:
                raise UnsupportedDefinitionError(f"{label}.Choices: a non-empty list")
            compiled = []
            for i, rule in enumerate(choices):
                if "Next" not in rule:
                    raise UnsupportedDefinitionError(f"{label}.Choices[{i}]: Next is required")
                compiled.append((compile_rule(rule, f"{label}.Choices[{i}]"), rule["Next"]))
            state.choices = tuple(compiled)
            state.default = raw.get("Default")
        elif kind == "Wait":
            given = [
                k for k in ("Seconds", "SecondsPath", "Timestamp", "TimestampPath") if k in raw
            ]
            if len(given) != 1:
                raise UnsupportedDefinitionError(
                    f"{label}: exactly one of Seconds(Path)/Timestamp(Path)"
                )
            state.seconds = _number(raw, "Seconds", label)
            state.timestamp = raw.get("Timestamp")
            state.seconds_path = _opt_path(raw, "SecondsPath")
            state.timestamp_path = _opt_path(raw, "TimestampPath")
        elif kind == "Fail":
            state.error, state.cause = raw.get("Error"), raw.get("Cause")
            state.error_path = _opt_path(raw, "ErrorPath")
            state.cause_path = _opt_path(raw, "CausePath")
        elif kind == "Map":
            self.map(state, raw, label)
        return state

    def template(self, value: Any, where: str) -> Template:
        return compile_template(value, where, compile_intrinsic)

    def retrier(self, raw: Any, where: str) -> Retrier:
        allowed = {
            "ErrorEquals",
            "IntervalSeconds",
            "MaxAttempts",
            "BackoffRate",
            "MaxDelaySeconds",
            "JitterStrategy",
            "Comment",
        }
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise UnsupportedDefinitionError(f"{where}: fields {unknown} not supported locally")
        jitter = raw.get("JitterStrategy", "NONE")
        if jitter not in ("NONE", "FULL"):
            raise UnsupportedDefinitionError(f"{where}.JitterStrategy: NONE or FULL")
        return Retrier(
            errors=_errors(raw, where),
            interval=float(raw.get("IntervalSeconds", 1)),
            max_attempts=int(raw.get("MaxAttempts", 3)),
            backoff=float(raw.get("BackoffRate", 2.0)),
            max_delay=_number(raw, "MaxDelaySeconds", where),
            jitter=jitter == "FULL",
        )

    def catcher(self, raw: Any, where: str) -> Catcher:
        unknown = sorted(set(raw) - {"ErrorEquals", "Next", "ResultPath", "Comment"})
        if unknown:
            raise UnsupportedDefinitionError(f"{where}: fields {unknown} not supported locally")
        if "Next" not in raw:
            raise UnsupportedDefinitionError(f"{where}: Next is required")
        return Catcher(
            _errors(raw, where), raw["Next"], parse_result_path(raw.get("ResultPath", "$"))
        )

    def task(self, state: State, raw: Mapping[str, Any], label: str) -> None:
        resource = raw.get("Resource")
        state.resource = str(resource)
        state.timeout_seconds = _number(raw, "TimeoutSeconds", label)
        if resource == LAMBDA_INVOKE:
            params = raw.get("Parameters")
            if not isinstance(params, Mapping):
                raise UnsupportedDefinitionError(
                    f"{label}.Parameters: lambda:invoke needs FunctionName"
                )
            unknown = sorted(
                {k.removesuffix(".$") for k in params} - {"FunctionName", "Payload", "Qualifier"}
            )
            if unknown:
                raise UnsupportedDefinitionError(
                    f"{label}.Parameters: {unknown} not supported locally for lambda:invoke"
                )
            name = params.get("FunctionName")
            if isinstance(name, str):
                self.check_function(name, f"{label}.Parameters.FunctionName")
                state.function = name
            elif "FunctionName.$" not in params:
                raise UnsupportedDefinitionError(f"{label}.Parameters: FunctionName is required")
        elif isinstance(resource, str) and resource.startswith("arn:aws:lambda:"):
            self.check_function(resource, f"{label}.Resource")
            state.function = resource
        else:
            raise UnsupportedDefinitionError(
                f"{label}.Resource: {resource!r} is not supported locally (supported: "
                f"{LAMBDA_INVOKE} and Lambda function ARNs)"
            )

    def check_function(self, name: str, where: str) -> None:
        if not self.known_function(name):
            raise UnsupportedDefinitionError(
                f"{where}: {name!r} is not a function of this template"
            )

    def map(self, state: State, raw: Mapping[str, Any], label: str) -> None:
        if "Iterator" in raw and "ItemProcessor" in raw:
            raise UnsupportedDefinitionError(f"{label}: Iterator and ItemProcessor both given")
        if "ItemSelector" in raw and "Parameters" in raw:
            raise UnsupportedDefinitionError(f"{label}: ItemSelector and Parameters both given")
        selector = raw.get("ItemSelector", raw.get("Parameters"))
        state.parameters = None  # a Map's Parameters is its ItemSelector
        if selector is not None:
            state.item_selector = self.template(selector, f"{label}.ItemSelector")
        processor = raw.get("ItemProcessor", raw.get("Iterator"))
        config = processor.get("ProcessorConfig", {}) if isinstance(processor, Mapping) else {}
        mode = config.get("Mode", "INLINE")
        if mode not in ("INLINE", "DISTRIBUTED"):
            raise UnsupportedDefinitionError(
                f"{label}.ItemProcessor.ProcessorConfig.Mode: {mode!r}"
            )
        unknown = sorted(set(config) - {"Mode", "ExecutionType"})
        if unknown:
            raise UnsupportedDefinitionError(f"{label}.ItemProcessor.ProcessorConfig: {unknown}")
        state.distributed = mode == "DISTRIBUTED"
        state.execution_type = config.get("ExecutionType", "STANDARD")
        if state.execution_type not in ("STANDARD", "EXPRESS"):
            raise UnsupportedDefinitionError(f"{label}: ExecutionType {state.execution_type!r}")
        state.processor = self.machine(processor, f"{label}.ItemProcessor", _PROCESSOR_FIELDS)
        state.max_concurrency = int(raw.get("MaxConcurrency", 0))
        state.max_concurrency_path = _opt_path(raw, "MaxConcurrencyPath")
        distributed_only = [
            k
            for k in (
                "ItemReader",
                "ItemBatcher",
                "ResultWriter",
                "Label",
                "ToleratedFailurePercentage",
                "ToleratedFailurePercentagePath",
                "ToleratedFailureCount",
                "ToleratedFailureCountPath",
            )
            if k in raw
        ]
        if distributed_only and not state.distributed:
            raise UnsupportedDefinitionError(
                f"{label}: {distributed_only} need ProcessorConfig.Mode DISTRIBUTED"
            )
        if "ItemReader" in raw and "ItemsPath" in raw:
            raise UnsupportedDefinitionError(f"{label}: ItemReader and ItemsPath both given")
        state.items_path = _opt_path(raw, "ItemsPath") if "ItemsPath" in raw else parse_path("$")
        if "ItemReader" in raw:
            state.item_reader = self.item_reader(raw["ItemReader"], f"{label}.ItemReader")
        if "ItemBatcher" in raw:
            state.item_batcher = self.item_batcher(raw["ItemBatcher"], f"{label}.ItemBatcher")
        if "ResultWriter" in raw:
            state.result_writer = self.result_writer(raw["ResultWriter"], f"{label}.ResultWriter")
        percentage = _number(raw, "ToleratedFailurePercentage", label)
        if percentage is not None and not 0 <= percentage <= 100:
            raise UnsupportedDefinitionError(f"{label}.ToleratedFailurePercentage: 0 to 100")
        state.tolerated_percentage = percentage
        count = raw.get("ToleratedFailureCount")
        state.tolerated_count = None if count is None else int(count)
        state.tolerated_percentage_path = _opt_path(raw, "ToleratedFailurePercentagePath")
        state.tolerated_count_path = _opt_path(raw, "ToleratedFailureCountPath")
        state.label = raw.get("Label")

    def item_reader(self, raw: Any, where: str) -> ItemReader:
        unknown = sorted(set(raw) - {"Resource", "ReaderConfig", "Parameters"})
        if unknown:
            raise UnsupportedDefinitionError(f"{where}: fields {unknown} not supported locally")
        if raw.get("Resource") != S3_GET_OBJECT:
            raise UnsupportedDefinitionError(
                f"{where}.Resource: {raw.get('Resource')!r} is not supported locally "
                f"(supported: {S3_GET_OBJECT})"
            )
        config = raw.get("ReaderConfig") or {}
        allowed = {
            "InputType",
            "CSVHeaderLocation",
            "CSVHeaders",
            "CSVDelimiter",
            "MaxItems",
            "MaxItemsPath",
        }
        unknown = sorted(set(config) - allowed)
        if unknown:
            raise UnsupportedDefinitionError(
                f"{where}.ReaderConfig: {unknown} not supported locally"
            )
        input_type = config.get("InputType", "JSON")
        if input_type not in _INPUT_TYPES:
            raise UnsupportedDefinitionError(
                f"{where}.ReaderConfig.InputType: {input_type!r} is not supported locally "
                f"(supported: {', '.join(sorted(_INPUT_TYPES))})"
            )
        location = config.get("CSVHeaderLocation", "FIRST_ROW")
        if location not in ("FIRST_ROW", "GIVEN"):
            raise UnsupportedDefinitionError(
                f"{where}.ReaderConfig.CSVHeaderLocation: {location!r}"
            )
        headers = tuple(config.get("CSVHeaders") or ())
        if (location == "GIVEN") != bool(headers):
            raise UnsupportedDefinitionError(f"{where}.ReaderConfig: CSVHeaders goes with GIVEN")
        if len(set(headers)) != len(headers):
            raise UnsupportedDefinitionError(f"{where}.ReaderConfig.CSVHeaders: duplicates")
        delimiter = config.get("CSVDelimiter", "COMMA")
        if delimiter not in _DELIMITERS:
            raise UnsupportedDefinitionError(f"{where}.ReaderConfig.CSVDelimiter: {delimiter!r}")
        params = raw.get("Parameters") or {}
        keys = {k.removesuffix(".$") for k in params}
        if not {"Bucket", "Key"} <= keys or keys - {"Bucket", "Key", "VersionId"}:
            raise UnsupportedDefinitionError(f"{where}.Parameters: Bucket and Key (and VersionId)")
        max_items = config.get("MaxItems")
        return ItemReader(
            input_type=input_type,
            parameters=self.template(params, f"{where}.Parameters"),
            header_location=location,
            headers=headers,
            delimiter=_DELIMITERS[delimiter],
            max_items=None if max_items is None else int(max_items),
            max_items_path=_opt_path(config, "MaxItemsPath"),
        )

    def item_batcher(self, raw: Any, where: str) -> ItemBatcher:
        allowed = {
            "MaxItemsPerBatch",
            "MaxItemsPerBatchPath",
            "MaxInputBytesPerBatch",
            "MaxInputBytesPerBatchPath",
            "BatchInput",
        }
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise UnsupportedDefinitionError(f"{where}: fields {unknown} not supported locally")
        if not set(raw) - {"BatchInput"}:
            raise UnsupportedDefinitionError(f"{where}: MaxItemsPerBatch or MaxInputBytesPerBatch")
        items = raw.get("MaxItemsPerBatch")
        size = raw.get("MaxInputBytesPerBatch")
        return ItemBatcher(
            max_items=None if items is None else int(items),
            max_items_path=_opt_path(raw, "MaxItemsPerBatchPath"),
            max_bytes=None if size is None else int(size),
            max_bytes_path=_opt_path(raw, "MaxInputBytesPerBatchPath"),
            batch_input=None
            if "BatchInput" not in raw
            else self.template(raw["BatchInput"], f"{where}.BatchInput"),
        )

    def result_writer(self, raw: Any, where: str) -> ResultWriter:
        unknown = sorted(set(raw) - {"Resource", "Parameters"})
        if unknown:
            raise UnsupportedDefinitionError(f"{where}: fields {unknown} not supported locally")
        if raw.get("Resource") != S3_PUT_OBJECT:
            raise UnsupportedDefinitionError(
                f"{where}.Resource: {raw.get('Resource')!r} is not supported locally "
                f"(supported: {S3_PUT_OBJECT})"
            )
        params = raw.get("Parameters") or {}
        keys = {k.removesuffix(".$") for k in params}
        if "Bucket" not in keys or keys - {"Bucket", "Prefix"}:
            raise UnsupportedDefinitionError(f"{where}.Parameters: Bucket (and Prefix)")
        return ResultWriter(self.template(params, f"{where}.Parameters"))


def _errors(raw: Mapping[str, Any], where: str) -> tuple[str, ...]:
    errors = raw.get("ErrorEquals")
    if not isinstance(errors, list) or not errors or not all(isinstance(e, str) for e in errors):
        raise UnsupportedDefinitionError(f"{where}.ErrorEquals: a non-empty list of error names")
    if STATES_ALL in errors and (len(errors) != 1):
        raise UnsupportedDefinitionError(f"{where}.ErrorEquals: States.ALL must be alone")
    return tuple(errors)


def _io_path(raw: Mapping[str, Any], key: str) -> Path | None:
    value = raw.get(key, "$")
    return None if value is None else parse_path(value)


def _opt_path(raw: Mapping[str, Any], key: str) -> Path | None:
    value = raw.get(key)
    return None if value is None else parse_path(value)


def _number(raw: Mapping[str, Any], key: str, where: str) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise UnsupportedDefinitionError(f"{where}.{key}: a non-negative number")
    return float(value)
