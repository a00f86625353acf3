"""structlog JSON on stdout, bound per call with case number, workflow id and caller.

Only identifiers of cases, workflows and systems are ever bound: never a
person's name, id number or phone.

A warning or worse is written out at once. Info and debug lines (an rpc.ok
per call) are written out together at most ``FLUSH_SECONDS`` later: under
a burst, flushing stdout for each line cost the event loop a system call
and the GIL round trip after it, per call (py-spy, bench/complaints.py).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}


#: How long an info or debug line may wait before it is written out.
FLUSH_SECONDS = 0.1


class LineWriter:
    """A structlog logger writing each rendered line to a stream: warnings and worse
    flushed at once, the others by a daemon thread within ``flush_seconds``."""

    def __init__(self, stream: TextIO, *, flush_seconds: float = FLUSH_SECONDS) -> None:
        self._stream = stream
        self._flush_seconds = flush_seconds
        self._lock = threading.Lock()
        self._unflushed = threading.Event()
        threading.Thread(target=self._flush_behind, name="govhall-log-flush",
                         daemon=True).start()

    def _write(self, message: str) -> None:
        with self._lock:
            self._stream.write(message + "\n")
        if not self._unflushed.is_set():
            self._unflushed.set()

    def _write_now(self, message: str) -> None:
        with self._lock:
            self._stream.write(message + "\n")
            self._stream.flush()

    def flush(self) -> None:
        """Write out every line written so far."""
        self._unflushed.clear()
        with self._lock:
            self._stream.flush()

    def _flush_behind(self) -> None:
        while True:
            self._unflushed.wait()
            time.sleep(self._flush_seconds)
            self.flush()

    debug = info = msg = _write
    warning = warn = error = err = critical = exception = fatal = failure = _write_now


def configure_logging(*, service: str, level: str = "info") -> None:
    """Send JSON lines to stdout, each carrying the service name."""
    logging.basicConfig(format="%(message)s", stream=sys.stdout, level=_LEVELS[level])
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(_EncodedOnce(), ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=_one_writer(LineWriter(sys.stdout)),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)


class _EncodedOnce:
    """``json.dumps`` with its encoder made on the first line, not on every one.

    ``json.dumps`` given any option builds a new ``JSONEncoder`` per call; the
    options (structlog's) are the same on every line, and so is the text.
    """

    def __init__(self) -> None:
        self._encode: Callable[[object], str] | None = None

    def __call__(self, event_dict: object, **options: Any) -> str:
        if self._encode is None:
            self._encode = json.JSONEncoder(**options).encode
        return self._encode(event_dict)


def _one_writer(writer: LineWriter) -> Callable[..., LineWriter]:
    def factory(*_args: object) -> LineWriter:
        return writer
    return factory


def bind_call(*, system: str, method: str, case_number: str = "", workflow_id: str = "") -> None:
    """Bind what identifies one call to every log line it writes."""
    values = {"system": system, "rpc": method}
    if case_number:
        values["case_number"] = case_number
    if workflow_id:
        values["workflow_id"] = workflow_id
    structlog.contextvars.bind_contextvars(**values)


def bind_case_number(case_number: str) -> None:
    """Bind the case a call is about to every log line it writes (after ``bind_call``)."""
    structlog.contextvars.bind_contextvars(case_number=case_number)


log = structlog.get_logger
