"""Logging set-up for the entry points (wsgi.py, the CLI): one handler on stderr.

Text for people, JSON lines (python-json-logger) for log pipelines. Called by
composition roots only; library modules just use ``logging.getLogger(__name__)``.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from service.config import Settings

#: Loggers of the service itself; the access log is ``service.access``.
ROOT_LOGGER = "service"
_TEXT_FORMAT = "%(asctime)s %(levelname)s [%(name)s] [pid %(process)d] %(message)s"
_JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s"


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
        handler.setFormatter(logging.Formatter(_TEXT_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(settings.log_level)
    logger.propagate = False
