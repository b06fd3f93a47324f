"""Log lines as JSON (``LIVEBLOG_LOG_FORMAT=json``): one object per line, for a log
collector to parse rather than a person to read. ``liveblog.server.log_config`` puts
this formatter on uvicorn's handlers, so the access log is JSON too.

An event stream's access line is written when the stream ends (``liveblog.server``)
and says how long it lasted: ``stream_seconds`` on the record, which both formatters
show (``AccessFormatter`` for text)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from uvicorn.logging import AccessFormatter as UvicornAccessFormatter

from liveblog import request_id


class AccessFormatter(UvicornAccessFormatter):
    """uvicorn's access lines, and a stream's duration after its own."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        seconds = getattr(record, "stream_seconds", None)
        if seconds is not None:
            line = f"{line} stream {seconds:.1f}s"
        return line


class JsonFormatter(logging.Formatter):
    """time (ISO 8601, UTC), level, logger, message, request_id (in a request), and
    exception (a traceback) when there is one. uvicorn's access lines add client,
    method, path and status."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        current = getattr(record, "request_id", None) or request_id.current()
        if current is not None:
            line["request_id"] = current
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            # uvicorn's access line: client, method, path, HTTP version, status.
            client, method, path, _, status = args
            line.update(client=client, method=method, path=path, status=status)
            seconds = getattr(record, "stream_seconds", None)
            if seconds is not None:
                line["stream_seconds"] = seconds
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class RequestIdFilter(logging.Filter):
    """Stamps the current request id on a record as it is logged (for handlers that
    format later, or elsewhere)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.current()
        return True
