"""The local Lambda runtime: real processes bootstrapped by awslambdaric, behaving as Lambda does.

One runtime serves the whole module (environments start lazily, so each test's functions are
cold the first time that test invokes them); tests that need their own lifecycle start their own.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mlops_cli.emulator.runtime import Invocation, LocalRuntime
from tests.runtime.conftest import HANDLERS, LAYER, LogSink, function_spec, gone, processes_of

# What Lambda adds to a function's own variables (and the RIC sets per invocation).
RESERVED = {
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_EXECUTION_ENV",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "LAMBDA_TASK_ROOT",
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "PYTHONPATH",
    "PYTHONUNBUFFERED",
    "TZ",
    "PATH",
    "HOME",
    "LC_CTYPE",  # the child interpreter's own C-locale coercion (PEP 538)
}
BROKEN_MODULE = (
    "import module_that_does_not_exist\n\n\ndef handler(event, context):\n    return 1\n"
)
FIXED_MODULE = "def handler(event, context):\n    return {'fixed': True, 'event': event}\n"


@pytest.fixture(scope="module")
def fixable_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fixable")


@pytest.fixture(scope="module")
def logs() -> LogSink:
    return LogSink()


@pytest.fixture(scope="module")
def runtime(fixable_dir: Path, logs: LogSink) -> Iterator[LocalRuntime]:
    specs = [
        function_spec(
            "Describe",
            "describe",
            environment={"SHARED_NAME": "alpha"},
            python_paths=(LAYER,),
            memory_mb=256,
        ),
        function_spec("DescribeOther", "describe", environment={"SHARED_NAME": "beta"}),
        function_spec("Isolated", "describe", environment={"ONLY_MINE": "1"}),
        function_spec("NeverStarted", "describe"),
        function_spec("Sleeper", "sleep"),
        function_spec("ColdStart", "sleep"),
        function_spec("Throttled", "sleep", max_environments=2),
        function_spec("Pair", "sleep"),
        function_spec("Failing", "fail"),
        function_spec("Timeout", "sleep", timeout=1.0),
        function_spec("Hog", "hog", memory_mb=128, timeout=10.0),
        function_spec("Exit", "exit_process"),
        function_spec("Segfault", "segfault"),
        function_spec("Chatty", "chatty"),
        function_spec("Oversized", "oversized"),
        function_spec("MissingHandler", "no_such_handler"),
        function_spec("Fixable", "handler", code_dir=fixable_dir),
    ]
    local = LocalRuntime({spec.logical_id: spec for spec in specs}, on_log=logs)
    local.start()
    yield local
    local.stop()
    assert [p for s in specs for p in processes_of(s.physical_name)] == []


def parallel(runtime: LocalRuntime, function: str, event: object, n: int) -> list[Invocation]:
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: runtime.invoke(function, event), range(n)))


def test_an_invoke_returns_the_handlers_result_with_a_lambda_context(
    runtime: LocalRuntime,
) -> None:
    result = runtime.invoke("Describe", {"hello": "world"})

    assert result.ok, result.payload
    seen = result.payload
    assert seen["event"] == {"hello": "world"}
    assert seen["function_name"] == "runtime-test-Describe"
    assert seen["memory_limit_in_mb"] == "256"  # a string, as the RIC reads it from the env
    assert 0 < seen["remaining_ms"] <= 3000
    assert seen["aws_request_id"] == result.request_id
    assert seen["invoked_function_arn"].endswith(":function:runtime-test-Describe")
    assert seen["log_group_name"] == "/aws/lambda/runtime-test-Describe"
    assert seen["log_stream_name"].startswith(time.strftime("%Y/%m/%d/[$LATEST]", time.gmtime()))
    assert seen["cwd"] == str(HANDLERS)
    assert seen["pid"] != os.getpid()


def test_each_function_sees_only_its_own_variables(runtime: LocalRuntime) -> None:
    alpha = runtime.invoke("Describe", {}).payload["environ"]
    beta = runtime.invoke("DescribeOther", {}).payload["environ"]

    assert alpha["SHARED_NAME"] == "alpha"
    assert beta["SHARED_NAME"] == "beta"
    assert alpha["AWS_LAMBDA_FUNCTION_NAME"] != beta["AWS_LAMBDA_FUNCTION_NAME"]


def test_nothing_of_the_invoking_process_environment_leaks(
    runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_SECRET", "do-not-leak")
    monkeypatch.setenv("AWS_PROFILE", "developer")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "cli")

    environ = runtime.invoke("Isolated", {}).payload["environ"]

    assert "MY_SECRET" not in environ
    assert set(environ) - RESERVED == {"ONLY_MINE"}


def test_pythonpath_is_the_code_directory_then_the_layers(runtime: LocalRuntime) -> None:
    seen = runtime.invoke("Describe", {}).payload

    assert seen["environ"]["PYTHONPATH"] == os.pathsep.join([str(HANDLERS), str(LAYER)])
    assert seen["environ"]["LAMBDA_TASK_ROOT"] == str(HANDLERS)
    assert seen["sys_path"].index(str(HANDLERS)) < seen["sys_path"].index(str(LAYER))


def test_a_warm_environment_is_reused_with_its_module_state(runtime: LocalRuntime) -> None:
    first = runtime.invoke("DescribeOther", {})
    second = runtime.invoke("DescribeOther", {})

    assert second.payload["pid"] == first.payload["pid"]
    assert second.payload["invocations"] == first.payload["invocations"] + 1
    assert second.init_ms is None
    assert runtime.environments("DescribeOther") == 1


def test_a_cold_start_reports_its_init_duration(runtime: LocalRuntime) -> None:
    cold = runtime.invoke("ColdStart", {"seconds": 0})

    assert cold.init_ms is not None
    assert cold.init_ms > 0


def test_parallel_invokes_each_get_their_own_environment(runtime: LocalRuntime) -> None:
    parallel(runtime, "Sleeper", {"seconds": 0.5}, 4)  # warm four environments

    started = time.monotonic()
    results = parallel(runtime, "Sleeper", {"seconds": 0.5}, 4)
    wall = time.monotonic() - started

    assert all(r.ok for r in results)
    assert len({r.payload["pid"] for r in results}) == 4
    assert wall < 1.5
    assert runtime.environments("Sleeper") == 4


def test_max_environments_caps_concurrency_and_queues_the_rest(runtime: LocalRuntime) -> None:
    started = time.monotonic()
    results = parallel(runtime, "Throttled", {"seconds": 0.5}, 4)
    wall = time.monotonic() - started

    assert all(r.ok for r in results)
    assert len({r.payload["pid"] for r in results}) <= 2
    assert wall >= 1.0
    assert runtime.environments("Throttled") == 2


def test_the_most_recently_used_environment_is_reused_first(runtime: LocalRuntime) -> None:
    parallel(runtime, "Pair", {"seconds": 0.3}, 2)  # two warm environments
    last = runtime.invoke("Pair", {})

    following = [runtime.invoke("Pair", {}) for _ in range(3)]

    assert runtime.environments("Pair") == 2
    assert {r.payload["pid"] for r in following} == {last.payload["pid"]}


def test_a_handler_exception_is_a_function_error_and_the_environment_stays_warm(
    runtime: LocalRuntime,
) -> None:
    before = runtime.invoke("Failing", {})
    failed = runtime.invoke("Failing", {"why": "no sqft"})
    after = runtime.invoke("Failing", {})

    assert failed.error_type == "ValueError"
    assert failed.payload["errorMessage"] == "bad input: no sqft"
    assert isinstance(failed.payload["stackTrace"], list)
    assert "app.py" in failed.payload["stackTrace"][0]
    assert after.payload["pid"] == before.payload["pid"]
    assert after.init_ms is None


def test_a_timeout_kills_the_environment_and_the_next_invoke_starts_a_new_one(
    runtime: LocalRuntime, logs: LogSink
) -> None:
    pid = runtime.invoke("Timeout", {"seconds": 0}).payload["pid"]

    started = time.monotonic()
    timed_out = runtime.invoke("Timeout", {"seconds": 5})
    elapsed = time.monotonic() - started
    after = runtime.invoke("Timeout", {"seconds": 0})

    assert timed_out.error_type == "Sandbox.Timedout"
    assert timed_out.payload["errorMessage"] == (
        f"RequestId: {timed_out.request_id} Error: Task timed out after 1.00 seconds"
    )
    assert 1.0 <= elapsed < 1.5
    assert gone(pid)
    assert any(
        m.endswith(f"{timed_out.request_id} Task timed out after 1.00 seconds")
        for m in logs.messages(timed_out.request_id)
    )
    assert after.ok
    assert after.payload["pid"] != pid
    assert after.init_ms is not None


def test_memory_over_the_limit_is_out_of_memory_and_replaces_the_environment(
    runtime: LocalRuntime, logs: LogSink
) -> None:
    hog = runtime.invoke("Hog", {"megabytes": 300})
    after = runtime.invoke("Hog", {"megabytes": 0, "hold": 0})

    assert hog.error_type == "Runtime.OutOfMemory"
    assert hog.payload["errorMessage"].endswith("Runtime exited with error: signal: killed")
    (report,) = [m for m in logs.messages(hog.request_id) if m.startswith("REPORT")]
    used = int(report.split("Max Memory Used: ")[1].split(" MB")[0])
    assert used > 128
    assert "Error Type: Runtime.OutOfMemory" in report
    assert after.ok
    assert after.init_ms is not None


@pytest.mark.parametrize(
    ("function", "how"),
    [("Exit", "exit status 3"), ("Segfault", "signal: segmentation fault")],
)
def test_a_runtime_that_dies_mid_invocation_is_an_exit_error(
    runtime: LocalRuntime, function: str, how: str
) -> None:
    died = runtime.invoke(function, {})

    assert died.error_type == "Runtime.ExitError"
    assert died.payload["errorMessage"] == (
        f"RequestId: {died.request_id} Error: Runtime exited with error: {how}"
    )
    assert runtime.environments(function) == 0


def test_an_import_error_fails_init_and_a_fixed_module_is_picked_up(
    runtime: LocalRuntime, fixable_dir: Path
) -> None:
    (fixable_dir / "app.py").write_text(BROKEN_MODULE)
    broken = runtime.invoke("Fixable", {})
    (fixable_dir / "app.py").write_text(FIXED_MODULE)
    fixed = runtime.invoke("Fixable", {"n": 1})

    assert broken.error_type == "Runtime.ImportModuleError"
    assert broken.payload["errorMessage"] == (
        "Unable to import module 'app': No module named 'module_that_does_not_exist'"
    )
    assert fixed.payload == {"fixed": True, "event": {"n": 1}}
    assert fixed.init_ms is not None


def test_a_missing_handler_is_handler_not_found(runtime: LocalRuntime) -> None:
    missing = runtime.invoke("MissingHandler", {})

    assert missing.error_type == "Runtime.HandlerNotFound"
    assert missing.payload["errorMessage"] == "Handler 'no_such_handler' missing on module 'app'"
    assert runtime.environments("MissingHandler") == 0


def test_function_output_and_platform_lines_carry_the_request_id(
    runtime: LocalRuntime, logs: LogSink
) -> None:
    result = runtime.invoke("Chatty", {"marker": "m-42"})

    messages = logs.messages(result.request_id)
    assert messages[0] == f"START RequestId: {result.request_id} Version: $LATEST"
    assert "printed m-42" in messages
    assert any(m.startswith("[INFO]") and m.endswith("logged m-42") for m in messages)
    assert messages[-2] == f"END RequestId: {result.request_id}"
    assert messages[-1].startswith(f"REPORT RequestId: {result.request_id}\tDuration: ")
    assert "\tInit Duration: " in messages[-1]


def test_a_multi_line_error_record_is_one_log_line(runtime: LocalRuntime, logs: LogSink) -> None:
    result = runtime.invoke("Chatty", {"marker": "m-43", "fail": True})

    (record,) = [m for m in logs.messages(result.request_id) if m.startswith("[ERROR]")]
    first, *rest = record.split("\n")
    assert first == "[ERROR] RuntimeError: failed m-43"
    assert rest[0] == "Traceback (most recent call last):"
    assert any("app.py" in line for line in rest)


def test_an_oversized_response_is_an_error_and_the_environment_stays(
    runtime: LocalRuntime,
) -> None:
    result = runtime.invoke("Oversized", {})

    assert result.error_type == "Function.ResponseSizeTooLarge"
    assert "(6291556 bytes)" in result.payload["errorMessage"]
    assert runtime.environments("Oversized") == 1


def test_a_request_over_6_mb_is_refused_before_any_environment(runtime: LocalRuntime) -> None:
    refused = runtime.invoke("NeverStarted", {"blob": "x" * 6_291_456})

    assert refused.error_type == "RequestTooLargeException"
    assert runtime.environments("NeverStarted") == 0


def test_ainvoke_awaits_from_another_event_loop(runtime: LocalRuntime) -> None:
    async def two_at_once() -> list[Invocation]:
        return await asyncio.gather(
            runtime.ainvoke("Sleeper", {"seconds": 0.2}),
            runtime.ainvoke("Sleeper", {"seconds": 0.2}),
        )

    results = asyncio.run(two_at_once())

    assert all(r.ok for r in results)
    assert len({r.payload["pid"] for r in results}) == 2


def test_stop_kills_every_environment_and_what_it_started() -> None:
    name = f"runtime-test-stop-{os.getpid()}"
    spawner = function_spec("Spawner", "spawn_child", physical_name=name)
    idle = function_spec("Idle", "sleep", physical_name=name)
    local = LocalRuntime({"Spawner": spawner, "Idle": idle})
    local.start()
    spawned = local.invoke("Spawner", {}).payload
    local.invoke("Idle", {})
    assert len(processes_of(name)) == 3  # two runtimes and the grandchild

    local.stop()

    assert processes_of(name) == []
    assert gone(spawned["pid"])
    assert gone(spawned["child"])
    with pytest.raises(RuntimeError, match="not running"):
        local.invoke("Idle", {})


def test_stop_ends_an_invocation_in_flight() -> None:
    local = LocalRuntime({"Sleeper": function_spec("Sleeper", "sleep", timeout=30.0)})
    local.start()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(local.invoke, "Sleeper", {"seconds": 20})
        while local.environments("Sleeper") == 0:
            time.sleep(0.01)
        started = time.monotonic()
        local.stop()

        with pytest.raises(RuntimeError, match="stopped"):
            pending.result(timeout=5)
    assert time.monotonic() - started < 3


def test_a_large_non_ascii_event_is_sized_by_its_utf8_bytes(runtime: LocalRuntime) -> None:
    # 2.2 MB of UTF-8 ("é" is 2 bytes); escaped as \u00e9 it would be 6.6 MB, over the limit
    event = {"seconds": 0, "text": "\u00e9" * 1_100_000}
    result = runtime.invoke("Sleeper", event)
    assert result.ok, result.error_type
