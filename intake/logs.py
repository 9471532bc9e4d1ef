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


#: Libraries that read mail, forms or the IMAP conversation and log what they read (mail-parser logs a header
#: value it cannot decode, imapclient logs the protocol at DEBUG): only their warnings and errors are kept, and
#: those without their text, from the moment the record is made (so no handler, ours or another's, sees it).
SILENCED = ("mailparser", "imapclient", "msoffcrypto", "openpyxl", "docx", "defusedxml", "olefile", "PIL")

#: Loggers whose text is let through our handler: our own, and libraries that log no mail content.
TRUSTED = ("intake", "apscheduler", "waitress")

WITHHELD = "text withheld (a library's log line may quote mail)"


def _named(name: str, names: tuple[str, ...]) -> bool:
    return any(name == n or name.startswith(n + ".") for n in names)


def _withhold(record: logging.LogRecord) -> None:
    record.msg = WITHHELD
    record.args = ()
    record.exc_info = None
    record.exc_text = None
    record.stack_info = None


class _OnlyTrustedText(logging.Filter):
    """Any other library's record keeps its level and logger name; its text and arguments are withheld."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _named(record.name, TRUSTED):
            _withhold(record)
        return True


_base_factory = logging.getLogRecordFactory()


def _redacting_factory(*args: object, **kwargs: object) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    if _named(record.name, SILENCED):
        _withhold(record)
    return record


def quiet_libraries() -> None:
    """Quiet the :data:`SILENCED` libraries and withhold their text. Idempotent; importing :mod:`intake` calls
    it, so even without :func:`setup_logging` (a library user, a test) nothing they log carries mail text."""
    for name in SILENCED:
        logging.getLogger(name).setLevel(logging.WARNING)
    if logging.getLogRecordFactory() is not _redacting_factory:
        logging.setLogRecordFactory(_redacting_factory)


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_OnlyTrustedText())
    handler.addFilter(_NoTracebackData())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    quiet_libraries()
