"""Logging set-up for the entry points (wsgi.py, the CLI): one handler on stderr.

Text for people, JSON lines (python-json-logger) for log pipelines. Called by
composition roots only; library modules just use ``logging.getLogger(__name__)``.

A logged value can come from a client (a URL path may hold ``%0A``): in the
text format every control character of a message is escaped (``\\x0a``), so no
request can write a line that looks like another request's; JSON strings are
escaped by the encoder. A traceback keeps its lines.

No record gathers what no format here prints: the calling frame (file, line,
function), the thread and the multiprocessing name. These are the logging
HOWTO's "Optimization" switches; each record is then a fifth cheaper, and
every request writes one (bench/README.md). The process id stays on.
"""

from __future__ import annotations

import logging
import re
import sys

from pythonjsonlogger.json import JsonFormatter

from service.config import Settings

#: Loggers of the service itself; the access log is ``service.access``.
ROOT_LOGGER = "service"
_TEXT_FORMAT = "%(asctime)s %(levelname)s [%(name)s] [pid %(process)d] %(message)s"
_JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s"
#: What must not reach a text log line as it is: control characters (C0, DEL, C1), the
#: Unicode line and paragraph separators, and the backslash (so an escape cannot be forged).
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\\]")


def escape_controls(text: str) -> str:
    r"""``text`` with every unsafe character written as a ``\xNN``/``\uNNNN`` escape."""
    return _UNSAFE.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


class EscapingFormatter(logging.Formatter):
    """The text format, with the message's control characters escaped (the traceback is left whole)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.message)
        return super().formatMessage(record)


def configure_logging(settings: Settings) -> None:
    """Send the service's log records to stderr in the configured format, once."""
    logger = logging.getLogger(ROOT_LOGGER)
    if any(getattr(h, "_conduit", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler._conduit = True  # type: ignore[attr-defined]
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter(_JSON_FIELDS, rename_fields={"levelname": "level", "name": "logger"}))
    else:
        handler.setFormatter(EscapingFormatter(_TEXT_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(settings.log_level)
    logging._srcfile = None  # no sys._getframe() walk per record: %(pathname)s, %(lineno)d, %(funcName)s unused
    logging.logThreads = False
    logging.logMultiprocessing = False
    logger.propagate = False
