"""The JSON log lines: warnings written out at once, info lines shortly after, in order."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable

from kernel.logging import LineWriter


class CountedStream(io.StringIO):
    """Remembers what each flush wrote out."""

    def __init__(self) -> None:
        super().__init__()
        self.flushed: list[str] = []

    def flush(self) -> None:
        self.flushed.append(self.getvalue())


def _wait_until(condition: Callable[[], bool], deadline_seconds: float = 5.0) -> bool:
    ends = time.monotonic() + deadline_seconds
    while time.monotonic() < ends:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_a_warning_is_written_out_at_once_with_the_info_lines_before_it() -> None:
    stream = CountedStream()
    writer = LineWriter(stream, flush_seconds=60.0)
    writer.info('{"event": "rpc.ok"}')
    assert stream.flushed == []  # an info line waits for the flusher
    writer.warning('{"event": "rpc.refused"}')
    assert stream.flushed == ['{"event": "rpc.ok"}\n{"event": "rpc.refused"}\n']


def test_info_lines_are_written_out_within_the_flush_interval() -> None:
    stream = CountedStream()
    writer = LineWriter(stream, flush_seconds=0.05)
    writer.info("one")
    writer.info("two")
    assert _wait_until(lambda: "one\ntwo\n" in stream.flushed)
    writer.info("three")
    assert _wait_until(lambda: stream.flushed[-1:] == ["one\ntwo\nthree\n"])


def test_a_line_is_the_text_json_dumps_gives_with_the_same_options() -> None:
    from kernel.logging import _EncodedOnce

    class Opaque:
        def __repr__(self) -> str:
            return "<opaque>"

    def fallback(value: object) -> object:
        return repr(value)

    line = {"event": "rpc.ok", "rpc": "/govhall.x/Y", "note": "路灯", "ms": 1.5,
            "what": Opaque()}
    encode = _EncodedOnce()
    expected = json.dumps(line, ensure_ascii=False, default=fallback)
    assert encode(line, ensure_ascii=False, default=fallback) == expected
    again = {"event": "rpc.refused", "reason": "ü"}
    assert encode(again, ensure_ascii=False, default=fallback) == json.dumps(
        again, ensure_ascii=False, default=fallback)
