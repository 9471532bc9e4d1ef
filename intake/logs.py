"""Logging: message ids and reason codes only; exceptions by type and place, never their text."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def where(exc: BaseException) -> str:
    """Where an exception was raised (file:line of the innermost frame): enough to debug, no data."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "?"
    path = Path(tb.tb_frame.f_code.co_filename)
    return f"{'/'.join(path.parts[-2:])}:{tb.tb_lineno}"


class _NoTracebackData(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # Exception messages and tracebacks may carry input text; log the type and place instead.
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.msg = f"{record.msg} [{type(exc).__name__} at {where(exc)}]"
            record.exc_info = None
            record.exc_text = None
        return True


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_NoTracebackData())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
