"""JSON log lines for the API and the worker: one object per line, with the request id and the job id
of the work in progress, so one command can be followed from the HTTP request to its commit.

The ids live in a context variable: the API sets the request id per request (Starlette copies the
context into the thread that runs a route), the worker sets the batch, job and request ids of the
work it reports on. Every line logged meanwhile carries them.
"""

import json
import logging
import re
import sys
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

_context: ContextVar[Mapping[str, Any]] = ContextVar("log_context", default=MappingProxyType({}))


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add fields (request_id, job_id, ...) to every line logged inside the block."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def current(name: str) -> Any:
    """A field of the current log context, e.g. the request id to hand on with a job."""
    return _context.get().get(name)

# Attributes every LogRecord has; anything else was passed with `extra=` and belongs in the line,
# except uvicorn's terminal-coloured copy of its message.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "color_message"}

# A safety net, not the policy (the policy is: never log keys, headers or the pepper). Keys read
# sk_<prefix>_<secret>: the prefix names the key and stays, the secret goes.
_SECRETS = [
    (re.compile(r"\b(sk_[0-9a-f]{12})_[A-Za-z0-9_-]+"), r"\1_[redacted]"),
    (re.compile(r"(?i)\b(bearer)\s+[^\s\"',;]+"), r"\1 [redacted]"),
    # A password in a URL, also with no user name (redis://:secret@host).
    (re.compile(r"(://[^:/@\s]*):[^@/\s]+@"), r"\1:[redacted]@"),
]


def redact(text: str, extra_secrets: tuple[str, ...] = ()) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    for secret in extra_secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "logger", "message", ...context (request_id, job_id), ...extra, "exception"?}`."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_context.get())
        for name, value in vars(record).items():
            if name not in _RECORD_FIELDS and not name.startswith("_") and value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = "".join(traceback.format_exception(*record.exc_info))
        elif record.stack_info:
            line["stack"] = record.stack_info
        return redact(json.dumps(line, default=str, ensure_ascii=False), self.secrets)


def configure_logging(level: str = "INFO", secrets: tuple[str, ...] = ()) -> None:
    """Send every logger's records, as JSON, to stderr. Libraries that install handlers of their
    own (uvicorn) are made to propagate to the root instead, so their lines are JSON too."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery", "celery.task"):
        library = logging.getLogger(name)
        library.handlers[:] = []
        library.propagate = True
