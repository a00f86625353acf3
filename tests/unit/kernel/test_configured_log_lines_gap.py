"""Gap test (s17 test reading): the lines ``configure_logging`` itself writes.

test_log_lines checks ``_EncodedOnce`` against ``json.dumps`` given the same options, but no
test ran the renderer as ``configure_logging`` builds it: handing it the class instead of an
instance, or dropping ``ensure_ascii=False``, left every test green (the first would fail the
first log line of every process). Run in a process of its own: the configuration is global.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

PROGRAM = """
import datetime
from kernel.logging import bind_call, bind_case_number, configure_logging, log
configure_logging(service="complaints")
bind_call(system="hotline-12345", method="/govhall.complaints.v1.ComplaintsService/Get")
bind_case_number("CP-20260105-000001")
log("probe").info("rpc.ok", note="路灯不亮", at=datetime.date(2026, 1, 5), ms=1.5)
log("probe").warning("rpc.refused", reason="ü")
"""


def test_configured_lines_are_json_with_their_text_unescaped_and_the_call_bound() -> None:
    completed = subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True,
                               text=True, encoding="utf-8", timeout=60, check=False)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert len(lines) == 2, completed.stdout
    ok, refused = (json.loads(line) for line in lines)
    assert "路灯不亮" in lines[0]  # written as text, not \\u escapes
    assert {k: ok[k] for k in ("event", "note", "ms", "service", "system", "case_number")} == {
        "event": "rpc.ok", "note": "路灯不亮", "ms": 1.5, "service": "complaints",
        "system": "hotline-12345", "case_number": "CP-20260105-000001"}
    assert ok["at"] == "datetime.date(2026, 1, 5)"  # structlog's fallback: the repr
    assert (refused["event"], refused["reason"], refused["level"]) == \
        ("rpc.refused", "ü", "warning")
