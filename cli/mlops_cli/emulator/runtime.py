"""Lambda execution environments, locally: one OS process each, bootstrapped by the real runtime
interface client (``python -m awslambdaric``) against our Runtime API (``runtime_api.py``).

Faithful to Lambda:

- Each execution environment is its own process (and process group) running the handler through
  ``awslambdaric``, with exactly the function's variables plus Lambda's reserved ones, the code
  directory as working directory and ``sys.path`` = code directory, then layers.
- Environments start lazily (a cold start is a real process start; ``init_ms`` is spawn → first
  ``GET /next``), are reused warmest-first, and a function scales out to ``max_environments``.
- The Runtime API is the real protocol: a long-polled ``next`` with the request id, deadline, ARN
  and trace headers; ``response``, ``error`` and ``init/error``.
- Timeouts, memory and crashes end the environment as on Lambda: ``Sandbox.Timedout``,
  ``Runtime.OutOfMemory``, ``Runtime.ExitError``. Init errors (``Runtime.ImportModuleError``,
  ``Runtime.HandlerNotFound``, ...) come from the RIC itself, and the next invoke initialises a
  new environment. A handler's exception leaves its environment warm.
- A response over 6 MB is ``Function.ResponseSizeTooLarge`` (the environment stays warm); a
  request over 6 MB is refused (``RequestTooLargeException``) before reaching an environment.
- Logs: each line the function writes on stdout or stderr, with the request id in flight, plus
  Lambda's INIT_START / START / END / REPORT / INIT_REPORT and timeout or crash lines.

Not faithful:

- No isolation beyond the process: the function shares the machine's filesystem, network and
  CPU, and imports fall through to the interpreter's site-packages (all of this venv, where
  Lambda has only boto3) after the code directory and the layers.
- Memory is RSS (process + children, sampled every 50 ms, and the kernel's peak RSS of the
  runtime process checked at the end of each invocation), not a cgroup: page cache is not counted.
- An invoke that finds all ``max_environments`` busy waits for one, without limit; Lambda would
  throttle a synchronous invoke (429 ``TooManyRequestsException``).
- Init has a single budget of 10 s + the function timeout (Lambda: 10 s, then a retry within the
  function timeout during the first invoke); running over it is ``Sandbox.Timedout``.
- A multi-line record written through ``logging`` arrives as one LogLine per line (Lambda keeps
  it whole through its telemetry descriptor); the RIC's own error records are kept whole.
- Environments are never frozen between invocations, and idle ones are never reclaimed.

Why one file of about 700 lines: it holds one object, the pool of execution environments on the
runtime's event loop. Spawning, handing an event over, timing out, killing for memory and
discarding all change the same pool and environment state; split, that state would travel
between modules. The protocol the environments speak is already apart (``runtime_api``).

Over 600 lines, one idea: the lifecycle of an execution environment (spawn, reuse, scale out,
timeout, crash, freeze) is one state machine; its Runtime API server is runtime_api.py.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import json
import math
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import psutil
import uvicorn

from mlops_cli.emulator.runtime_api import Endpoint, Outcome, Request, RuntimeApi
from mlops_cli.emulator.template import ACCOUNT, REGION

# "The Init phase is limited to 10 seconds." (Lambda execution environment lifecycle)
INIT_TIMEOUT_SECONDS = 10.0
MAX_REQUEST_BYTES = 6_291_456  # the Invoke API's synchronous payload quota
MEMORY_SAMPLE_SECONDS = 0.05
CHILDREN_REFRESH_SECONDS = 0.5  # listing a process's children scans /proc: not every sample
LOG_LINE_LIMIT = 1024 * 1024
START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 5.0
MIB = 1024 * 1024
# How Lambda (a Go program) names the signal that ended a runtime.
_SIGNAL_NAMES = {
    signal.SIGKILL: "killed",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGABRT: "aborted",
    signal.SIGTERM: "terminated",
    signal.SIGINT: "interrupt",
    signal.SIGBUS: "bus error",
    signal.SIGFPE: "floating point exception",
    signal.SIGILL: "illegal instruction",
}


@dataclass(frozen=True)
class FunctionSpec:
    """One function of the template, as the runtime needs it."""

    logical_id: str
    physical_name: str
    code_dir: Path
    handler: str
    # Exactly the function's variables; the runtime adds only Lambda's reserved ones.
    environment: dict[str, str]
    python_paths: tuple[Path, ...] = ()  # layer directories, as /opt/python would be
    timeout: float = 3.0
    memory_mb: int = 128
    max_environments: int = 10
    log_group: str = ""


@dataclass(frozen=True)
class LogLine:
    function: str
    timestamp_ms: int
    message: str
    request_id: str | None  # None for lines written during init
    log_stream: str = ""  # the environment's AWS_LAMBDA_LOG_STREAM_NAME


@dataclass(frozen=True)
class Invocation:
    request_id: str
    payload: Any  # the handler's result, or Lambda's error object
    error_type: str | None
    duration_ms: float
    init_ms: float | None  # set when this invocation started a new environment

    @property
    def ok(self) -> bool:
        return self.error_type is None


@dataclass(eq=False)
class _Environment:
    function: str
    spec: FunctionSpec
    endpoint: Endpoint
    log_stream: str
    spawned_at: float
    port: int = 0
    server: uvicorn.Server | None = None
    serving: asyncio.Task[None] | None = None
    process: asyncio.subprocess.Process | None = None
    ps: psutil.Process | None = None
    readers: list[asyncio.Task[None]] = field(default_factory=list)  # stdout, stderr
    exited: asyncio.Task[None] | None = None
    log_request_id: str | None = None  # whose output the lines are
    invocations: int = 0
    peak_rss: int = 0
    children: list[psutil.Process] = field(default_factory=list)
    children_at: float = -math.inf
    discarded: bool = False

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        return [t for t in (self.serving, *self.readers, self.exited) if t is not None]

    @property
    def init_ms(self) -> float | None:
        first_next = self.endpoint.first_next_at
        return None if first_next is None else (first_next - self.spawned_at) * 1000


@dataclass(eq=False)
class _Pool:
    function: str
    spec: FunctionSpec
    environments: set[_Environment] = field(default_factory=set)
    idle: list[_Environment] = field(default_factory=list)  # a stack: the warmest on top
    waiters: deque[asyncio.Future[_Environment | None]] = field(default_factory=deque)


class LocalRuntime:
    """Lambda's execution environments for ``functions`` (keyed by logical id).

    ``on_log`` receives every LogLine on the runtime's own thread: it must be quick and must not
    call ``invoke``. ``invoke`` is blocking and thread-safe; ``ainvoke`` awaits from any other
    event loop. Both return an Invocation for anything the function does, and raise only for
    local problems (unknown function, event not JSON-serialisable, runtime not started, Python
    not found).
    """

    def __init__(
        self,
        functions: Mapping[str, FunctionSpec],
        *,
        python: str = sys.executable,
        on_log: Callable[[LogLine], None] | None = None,
    ) -> None:
        self.functions = dict(functions)
        self.python = python
        self.on_log = on_log
        self._pools = {name: _Pool(name, spec) for name, spec in self.functions.items()}
        self._api = RuntimeApi()
        self._tasks: set[asyncio.Task[Invocation]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closing = False
        self._execution_env = ""
        # Process groups that may still be alive, for the atexit sweep (any thread).
        self._groups: set[int] = set()
        self._groups_lock = threading.Lock()

    # -- public API ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the runtime's event loop; environments start on their first invoke."""
        if self._loop is not None:
            return
        self._execution_env = f"AWS_Lambda_python{_python_version(self.python)}"
        self._closing = False
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._run, args=(loop, ready), daemon=True, name="local-runtime"
        )
        self._thread.start()
        # A parent that dies of an exception still runs atexit: no orphan environments.
        atexit.register(self._kill_groups)
        if not ready.wait(START_TIMEOUT_SECONDS):
            self.stop()
            raise RuntimeError("the local runtime's event loop did not start")

    def stop(self) -> None:
        """Kill every environment (whole process groups) and stop the loop. Idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._closing = True
        if thread.is_alive():
            shutdown = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
                shutdown.result(STOP_TIMEOUT_SECONDS * 2)  # the sweep below is the backstop
            loop.call_soon_threadsafe(loop.stop)
            thread.join(STOP_TIMEOUT_SECONDS)
        self._kill_groups()
        self._loop = self._thread = None
        atexit.unregister(self._kill_groups)

    def invoke(self, function: str, event: Any) -> Invocation:
        """Invoke ``function`` synchronously (RequestResponse) and wait for the outcome.

        ``event`` is sent as JSON; bytes are sent as they are (like Invoke's ``Payload``).
        """
        return self._submit(function, event).result()

    async def ainvoke(self, function: str, event: Any) -> Invocation:
        """``invoke`` for another event loop. Cancelling the caller does not stop the
        invocation, as a client that goes away does not stop a Lambda invocation."""
        return await asyncio.wrap_future(self._submit(function, event))

    def environments(self, function: str) -> int:
        """Live execution environments of ``function`` (initialising, idle or busy)."""
        return len(self._pools[function].environments)

    # -- the event loop thread -------------------------------------------------------------

    def _run(self, loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        memory = loop.create_task(self._watch_memory())
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            memory.cancel()
            loop.run_until_complete(asyncio.gather(memory, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _submit(self, function: str, event: Any) -> concurrent.futures.Future[Invocation]:
        loop = self._loop
        if loop is None or self._closing:
            raise RuntimeError("the local runtime is not running (call start())")
        if threading.current_thread() is self._thread:
            raise RuntimeError("invoke() from on_log or the runtime's thread would deadlock")
        if function not in self._pools:
            raise KeyError(f"no function {function!r} in this runtime")
        if isinstance(event, bytes | bytearray | memoryview):
            body = bytes(event)
        else:
            # The bytes a client would send: escaping non-ASCII would inflate the payload up
            # to 6x and trip the 6 MB limit on events Lambda accepts.
            body = json.dumps(event, ensure_ascii=False).encode()
        result: concurrent.futures.Future[Invocation] = concurrent.futures.Future()
        loop.call_soon_threadsafe(self._begin, function, body, result)
        return result

    def _begin(
        self, function: str, body: bytes, result: concurrent.futures.Future[Invocation]
    ) -> None:
        # Once running, the caller can no longer cancel it: the invocation goes to its end.
        if not result.set_running_or_notify_cancel():
            return
        if self._closing:
            result.set_exception(RuntimeError("the local runtime stopped"))
            return
        task = asyncio.get_running_loop().create_task(self._invoke(function, body))
        self._tasks.add(task)
        task.add_done_callback(partial(self._end, result))

    def _end(
        self, result: concurrent.futures.Future[Invocation], task: asyncio.Task[Invocation]
    ) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            result.set_exception(RuntimeError("the local runtime stopped during the invocation"))
        elif (exc := task.exception()) is not None:
            result.set_exception(exc)
        else:
            result.set_result(task.result())

    async def _shutdown(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        environments = [env for pool in self._pools.values() for env in pool.environments]
        for env in environments:
            self._discard(env)
        pending: list[asyncio.Task[Any]] = [*self._tasks]
        for env in environments:
            pending += env.tasks
        if pending:
            await asyncio.wait(pending, timeout=STOP_TIMEOUT_SECONDS)

    # -- invocations -----------------------------------------------------------------------

    async def _invoke(self, function: str, body: bytes) -> Invocation:
        loop = asyncio.get_running_loop()
        pool = self._pools[function]
        spec = pool.spec
        rid = str(uuid.uuid4())
        if len(body) > MAX_REQUEST_BYTES:  # refused by the Invoke API, no environment involved
            message = f"Request must be smaller than {MAX_REQUEST_BYTES} bytes for the Invoke"
            error = {"errorType": "RequestTooLargeException", "errorMessage": message}
            return Invocation(rid, error, "RequestTooLargeException", 0.0, None)
        env = await self._acquire(pool)
        cold = env.invocations == 0
        env.invocations += 1
        request = Request(rid, body, loop.create_future(), loop.create_future(), loop.time())
        env.endpoint.request = request
        env.endpoint.inbox.put_nowait(request)
        outcome = await self._wait_outcome(env, request, cold)
        if not request.handed.done():  # it failed before the runtime asked for the event
            self._log_init_report(env, outcome)
        if not outcome.fatal and self._sample_memory(env, peak=True) > spec.memory_mb * MIB:
            # A peak between two samples: Lambda would have stopped the runtime there.
            outcome = _oom(rid)
        if outcome.error_type == "Sandbox.Timedout":
            timed_out = f"{_iso_now()} {rid} Task timed out after {spec.timeout:.2f} seconds"
            self._log(env, timed_out, rid)
        elif outcome.error_type in ("Runtime.ExitError", "Runtime.OutOfMemory"):
            # Lambda's own line for a runtime that died without reporting anything.
            self._log(env, f"{outcome.payload['errorMessage']}\n{outcome.error_type}", rid)
        if outcome.fatal:
            await self._retire(env)
        else:
            await asyncio.sleep(0)  # lines written before the response are read before END
        duration_ms = max(request.settled_at - (request.handed_at or request.assigned_at), 0.0)
        duration_ms *= 1000
        init_ms = None
        if cold:
            init_ms = env.init_ms or (request.settled_at - env.spawned_at) * 1000
        report = _report(
            rid,
            spec,
            duration_ms=duration_ms,
            peak_rss=env.peak_rss,
            init_ms=init_ms,
            outcome=outcome,
        )
        self._log(env, f"END RequestId: {rid}", rid)
        self._log(env, report, rid)
        if not outcome.fatal:
            self._release(env)
        return Invocation(rid, outcome.payload, outcome.error_type, duration_ms, init_ms)

    async def _wait_outcome(self, env: _Environment, request: Request, cold: bool) -> Outcome:
        """The request's outcome; the timeout runs from the moment the event is handed over."""
        timeout = env.spec.timeout
        budget = timeout + (INIT_TIMEOUT_SECONDS if cold else 0.0)
        waiting = (request.handed, request.outcome)
        await asyncio.wait(waiting, timeout=budget, return_when=asyncio.FIRST_COMPLETED)
        if not request.outcome.done() and request.handed.done():
            remaining = request.handed_at + timeout - asyncio.get_running_loop().time()
            await asyncio.wait((request.outcome,), timeout=max(remaining, 0.0))
        if not request.outcome.done():
            message = f"RequestId: {request.request_id} Error: Task timed out after "
            message += f"{timeout:.2f} seconds"
            error = {"errorType": "Sandbox.Timedout", "errorMessage": message}
            request.settle(Outcome(error, "Sandbox.Timedout", fatal=True, status="timeout"))
        return request.outcome.result()

    # -- the pool --------------------------------------------------------------------------

    async def _acquire(self, pool: _Pool) -> _Environment:
        """The warmest idle environment, else a new one, else the next one to be free.

        Beyond ``max_environments`` Lambda throttles a synchronous invoke (429
        TooManyRequestsException); locally the invoke waits, so a burst is served, not refused.
        """
        while True:
            if self._closing:
                raise RuntimeError("the local runtime stopped")
            if pool.idle:
                return pool.idle.pop()
            if len(pool.environments) < pool.spec.max_environments:
                return await self._spawn(pool)
            waiter: asyncio.Future[_Environment | None]
            waiter = asyncio.get_running_loop().create_future()
            pool.waiters.append(waiter)
            try:
                env = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # handed one while cancelled
                    if (handed := waiter.result()) is not None:
                        self._release(handed)
                    else:
                        self._wake(pool)
                raise
            if env is not None:
                return env

    def _release(self, env: _Environment) -> None:
        if env.discarded:
            return
        pool = self._pools[env.function]
        while pool.waiters:
            waiter = pool.waiters.popleft()
            if not waiter.done():
                waiter.set_result(env)
                return
        pool.idle.append(env)

    def _wake(self, pool: _Pool) -> None:
        """A slot is free: let the first waiter start an environment."""
        while pool.waiters:
            waiter = pool.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _spawn(self, pool: _Pool) -> _Environment:
        loop = asyncio.get_running_loop()
        spec = pool.spec
        region = spec.environment.get("AWS_REGION", REGION)
        endpoint = Endpoint(
            function_arn=f"arn:aws:lambda:{region}:{ACCOUNT}:function:{spec.physical_name}",
            timeout=spec.timeout,
            on_handover=lambda request: self._handover(env, request),
        )
        stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{secrets.token_hex(16)}"
        env = _Environment(pool.function, spec, endpoint, stream, loop.time())
        pool.environments.add(env)  # counted from now on, so concurrent invokes see it
        env.port, env.server, env.serving = self._api.open(endpoint)
        self._log(env, f"INIT_START Runtime Version: {self._execution_env}.local", None)
        env.spawned_at = loop.time()
        try:
            env.process = await asyncio.create_subprocess_exec(
                self.python,
                "-m",
                "awslambdaric",
                spec.handler,
                cwd=spec.code_dir,
                env=self._environment(spec, env.port, stream),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group: one kill takes its children
                limit=LOG_LINE_LIMIT,
            )
        except OSError as exc:
            self._discard(env)
            raise RuntimeError(f"cannot start {self.python} for {pool.function}: {exc}") from exc
        with self._groups_lock:
            self._groups.add(env.process.pid)
        with contextlib.suppress(psutil.Error):  # already gone: the exit watcher reports it
            env.ps = psutil.Process(env.process.pid)
        assert env.process.stdout is not None
        assert env.process.stderr is not None
        env.readers = [
            loop.create_task(self._read_logs(env, env.process.stdout)),
            loop.create_task(self._read_logs(env, env.process.stderr)),
        ]
        env.exited = loop.create_task(self._watch_exit(env))
        if env.discarded:  # stopped while the process was starting
            _kill_group(env.process.pid)
        return env

    def _environment(self, spec: FunctionSpec, port: int, stream: str) -> dict[str, str]:
        """The function's variables, Lambda's reserved ones, and nothing of this process."""
        env = dict(spec.environment)
        env.setdefault("AWS_REGION", REGION)
        env.setdefault("AWS_DEFAULT_REGION", env["AWS_REGION"])
        env.update(
            {
                "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
                "AWS_LAMBDA_FUNCTION_NAME": spec.physical_name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group or f"/aws/lambda/{spec.physical_name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": stream,
                "AWS_EXECUTION_ENV": self._execution_env,
                "LAMBDA_TASK_ROOT": str(spec.code_dir),
                "_HANDLER": spec.handler,
                # The RIC does not put LAMBDA_TASK_ROOT on sys.path; Lambda's bootstrap does.
                "PYTHONPATH": os.pathsep.join(str(p) for p in (spec.code_dir, *spec.python_paths)),
                "PYTHONUNBUFFERED": "1",
                "TZ": ":UTC",
                "PATH": os.environ.get("PATH", os.defpath),
            }
        )
        if "HOME" in os.environ:
            env["HOME"] = os.environ["HOME"]
        return env

    def _handover(self, env: _Environment, request: Request) -> None:
        env.log_request_id = request.request_id
        self._log(
            env, f"START RequestId: {request.request_id} Version: $LATEST", request.request_id
        )

    def _discard(self, env: _Environment) -> None:
        """Take ``env`` out of service for good: kill its process group, close its endpoint."""
        if env.discarded:
            return
        env.discarded = True
        pool = self._pools[env.function]
        pool.environments.discard(env)
        if env in pool.idle:
            pool.idle.remove(env)
        if env.process is not None:
            _kill_group(env.process.pid)
        self._api.close(env.port)
        if env.server is not None:
            env.server.should_exit = True
        self._wake(pool)

    async def _retire(self, env: _Environment) -> None:
        """Discard ``env`` and wait until its process is reaped and its output read."""
        self._discard(env)
        ending = [task for task in (env.exited, *env.readers) if task is not None]
        if ending:
            await asyncio.wait(ending, timeout=STOP_TIMEOUT_SECONDS)

    async def _watch_exit(self, env: _Environment) -> None:
        assert env.process is not None
        code = await env.process.wait()
        request = env.endpoint.request
        if request is not None and not request.outcome.done():
            how = f"signal: {_signal_name(-code)}" if code < 0 else f"exit status {code}"
            message = f"RequestId: {request.request_id} Error: Runtime exited with error: {how}"
            error = {"errorType": "Runtime.ExitError", "errorMessage": message}
            request.settle(Outcome(error, "Runtime.ExitError", fatal=True, status="error"))
        elif not env.discarded:
            idle = f"Runtime exited while idle (exit status {code}): environment discarded"
            self._log(env, idle, None)
        self._discard(env)  # also kills what is left of its process group
        with self._groups_lock:
            self._groups.discard(env.process.pid)

    def _kill_groups(self) -> None:
        """Kill every environment's process group now, from any thread (stop, atexit)."""
        with self._groups_lock:
            groups = list(self._groups)
            self._groups.clear()
        for group in groups:
            _kill_group(group)

    # -- memory ----------------------------------------------------------------------------

    async def _watch_memory(self) -> None:
        while True:
            await asyncio.sleep(MEMORY_SAMPLE_SECONDS)
            for pool in self._pools.values():
                for env in list(pool.environments):
                    request = env.endpoint.request
                    if request is None or request.outcome.done():
                        continue  # idle environments do not grow
                    if self._sample_memory(env) > env.spec.memory_mb * MIB:
                        request.settle(_oom(request.request_id))
                        self._discard(env)

    def _sample_memory(self, env: _Environment, *, peak: bool = False) -> int:
        """RSS of the environment's process and its children; with ``peak`` (at the end of an
        invocation), at least the kernel's high-water mark of the runtime process, which catches
        a spike between two samples, and the children as last listed (listing them is slow)."""
        if env.ps is None:
            return env.peak_rss
        now = time.monotonic()
        try:
            if not peak and now - env.children_at > CHILDREN_REFRESH_SECONDS:
                env.children = env.ps.children(recursive=True)
                env.children_at = now
            rss = int(env.ps.memory_info().rss)
            for child in env.children:
                with contextlib.suppress(psutil.Error):
                    rss += int(child.memory_info().rss)
        except psutil.Error:
            return env.peak_rss
        if peak:
            rss = max(rss, _kernel_peak_rss(env.ps.pid))
        env.peak_rss = max(env.peak_rss, rss)
        return rss

    # -- logs ------------------------------------------------------------------------------

    async def _read_logs(self, env: _Environment, stream: asyncio.StreamReader) -> None:
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # a line over LOG_LINE_LIMIT: asyncio drops it
                dropped = f"[a line longer than {LOG_LINE_LIMIT} bytes was dropped]"
                self._log(env, dropped, env.log_request_id)
                continue
            if not raw:
                return
            # The RIC joins the lines of an error record with "\r" so that it stays one line.
            text = raw.decode("utf-8", "replace").rstrip("\n").rstrip("\r").replace("\r", "\n")
            # Output belongs to the last request handed over (None during init): a line
            # printed just before the response may be read after the response.
            self._log(env, text, env.log_request_id)

    def _log(self, env: _Environment, message: str, request_id: str | None) -> None:
        if self.on_log is None:
            return
        line = LogLine(env.function, int(time.time() * 1000), message, request_id, env.log_stream)
        try:
            self.on_log(line)
        except Exception as exc:  # a broken sink must not break the runtime
            print(f"local runtime: on_log failed: {exc!r}", file=sys.stderr)

    def _log_init_report(self, env: _Environment, outcome: Outcome) -> None:
        """Lambda's line for an Init phase that failed or timed out."""
        duration = (asyncio.get_running_loop().time() - env.spawned_at) * 1000
        status = outcome.status or "error"
        line = f"INIT_REPORT Init Duration: {duration:.2f} ms\tPhase: init\tStatus: {status}"
        if status == "error":
            line += f"\tError Type: {outcome.error_type}"
        self._log(env, line, None)


def _oom(request_id: str) -> Outcome:
    message = f"RequestId: {request_id} Error: Runtime exited with error: signal: killed"
    error = {"errorType": "Runtime.OutOfMemory", "errorMessage": message}
    return Outcome(error, "Runtime.OutOfMemory", fatal=True, status="error")


def _report(
    request_id: str,
    spec: FunctionSpec,
    *,
    duration_ms: float,
    peak_rss: int,
    init_ms: float | None,
    outcome: Outcome,
) -> str:
    parts = [
        f"REPORT RequestId: {request_id}",
        f"Duration: {duration_ms:.2f} ms",
        f"Billed Duration: {max(math.ceil(duration_ms), 1)} ms",
        f"Memory Size: {spec.memory_mb} MB",
        f"Max Memory Used: {math.ceil(peak_rss / MIB)} MB",
    ]
    if init_ms is not None:
        parts.append(f"Init Duration: {init_ms:.2f} ms")
    if outcome.status is not None:
        parts.append(f"Status: {outcome.status}")
        if outcome.status == "error":
            parts.append(f"Error Type: {outcome.error_type}")
    return "\t".join(parts)


def _kill_group(group: int) -> None:
    # Already gone, or (EPERM) the id now names a group that is not ours.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)


def _signal_name(number: int) -> str:
    try:
        sig = signal.Signals(number)
    except ValueError:
        return f"signal {number}"
    return _SIGNAL_NAMES.get(sig, sig.name.lower())


def _kernel_peak_rss(pid: int) -> int:
    """VmHWM, the kernel's peak resident set of ``pid`` (Linux; 0 where /proc lacks it)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _iso_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _python_version(python: str) -> str:
    """``3.11`` for ``python``: AWS_EXECUTION_ENV names it, and the RIC reads that."""
    if python == sys.executable:
        return f"{sys.version_info.major}.{sys.version_info.minor}"
    code = "import sys; print('%d.%d' % sys.version_info[:2])"
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()
