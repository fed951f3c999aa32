"""One thread for every delayed action of the event sources: schedule firings, retries of
asynchronous events, throttled events looked at again."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(order=True)
class _Timer:
    due: float
    seq: int
    action: Callable[[], None] = field(compare=False)


class Timers:
    """``call_at(due, action)`` from any thread; ``run`` is the thread; ``stopping`` ends it
    (``wake`` it after setting ``stopping``)."""

    def __init__(self, stopping: threading.Event) -> None:
        self._stopping = stopping
        self._timers: list[_Timer] = []
        self._timer_seq = itertools.count()
        self._timer_cv = threading.Condition()

    def call_at(self, due: float, action: Callable[[], None]) -> None:
        """Run ``action`` on the timers' thread once ``time.monotonic()`` reaches ``due``."""
        with self._timer_cv:
            heapq.heappush(self._timers, _Timer(due, next(self._timer_seq), action))
            self._timer_cv.notify()

    def wake(self) -> None:
        with self._timer_cv:
            self._timer_cv.notify_all()

    def run(self) -> None:
        while True:
            with self._timer_cv:
                while not self._stopping.is_set():
                    wait = self._timers[0].due - time.monotonic() if self._timers else None
                    if wait is not None and wait <= 0:
                        break
                    self._timer_cv.wait(wait)
                if self._stopping.is_set():
                    return
                timer = heapq.heappop(self._timers)
            try:
                timer.action()
            except Exception:
                log.exception("local event sources: a timer failed")
