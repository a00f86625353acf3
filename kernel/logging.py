"""structlog JSON on stdout, bound per call with case number, workflow id and caller.

Only identifiers of cases, workflows and systems are ever bound: never a
person's name, id number or phone.
"""

from __future__ import annotations

import logging
import sys

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}


def configure_logging(*, service: str, level: str = "info") -> None:
    """Send JSON lines to stdout, each carrying the service name."""
    logging.basicConfig(format="%(message)s", stream=sys.stdout, level=_LEVELS[level])
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)


def bind_call(*, system: str, method: str, case_number: str = "", workflow_id: str = "") -> None:
    """Bind what identifies one call to every log line it writes."""
    values = {"system": system, "rpc": method}
    if case_number:
        values["case_number"] = case_number
    if workflow_id:
        values["workflow_id"] = workflow_id
    structlog.contextvars.bind_contextvars(**values)


log = structlog.get_logger
