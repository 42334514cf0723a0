"""Secrets never reach a log: a log-record factory that redacts them in every logger.

Installed once per process by `bootstrap` (so `siyu serve`, the worker and every CLI command
have it). Two nets:
- known values: every SIYU_* environment variable and Settings field whose name mentions
  secret, key, token or password (WeCom corp secret and AES key, SMS AccessKey secret, webhook
  secret, the session secret…) is replaced by `[redacted]` wherever it appears;
- shapes: siyu API keys (`sk_<prefix>_<secret>`), `corpsecret=`/`secret=`/`password=`/
  `access_token=`/`Signature=` query or form parameters, `"password": "…"`-style JSON pairs
  and `Authorization: Bearer …` headers.
Decision: a record factory rather than a handler filter, because handlers are added later by
uvicorn or pytest and a filter on the root logger does not see records of child loggers.
The message is rendered (msg % args) before redaction, so secrets passed as arguments are
caught too; exception tracebacks are redacted when formatted by `redact`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from typing import Any

MARK = "[redacted]"
_SENSITIVE_NAME = re.compile(r"secret|key|token|password|passwd", re.IGNORECASE)
_SHAPES = (
    re.compile(r"\bsk_[A-Za-z0-9]{8}_[A-Za-z0-9_-]{8,}"),
    re.compile(
        r"(?i)\b(corpsecret|secret|password|passwd|access_token|accesskeysecret|signature|"
        r"aeskey|encodingaeskey)=([^&\s\"']+)"
    ),
    re.compile(
        r"(?i)([\"']?(?:password|secret|corpsecret|access_key_secret|api_key|token)[\"']?\s*"
        r"[:=]\s*[\"'])([^\"']+)([\"'])"
    ),
    re.compile(r"(?i)(authorization:?\s*bearer\s+)(\S+)"),
)
_known: set[str] = set()
_installed = False


def redact(text: str) -> str:
    """The text with every known secret and secret-shaped value replaced."""
    for value in sorted(_known, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MARK)
    text = _SHAPES[0].sub(MARK, text)
    text = _SHAPES[1].sub(lambda m: f"{m.group(1)}={MARK}", text)
    text = _SHAPES[2].sub(lambda m: f"{m.group(1)}{MARK}{m.group(3)}", text)
    return _SHAPES[3].sub(lambda m: f"{m.group(1)}{MARK}", text)


def remember_secrets(values: Iterable[str | None]) -> None:
    """Add values that must never be logged (short values are ignored: too many false hits)."""
    _known.update(v for v in values if v and len(v) >= 6)


def secrets_of(settings: Any) -> list[str]:
    """Values of settings fields and SIYU_* variables whose names say they are secret."""
    found = [
        v for k, v in os.environ.items() if k.startswith("SIYU_") and _SENSITIVE_NAME.search(k)
    ]
    fields = getattr(type(settings), "model_fields", {})
    for name in fields:
        value = getattr(settings, name, None)
        if _SENSITIVE_NAME.search(name) and isinstance(value, str):
            found.append(value)
    return found


def install_secret_redaction(settings: Any = None) -> None:
    """Redact secrets in every log record created from now on (idempotent)."""
    global _installed
    remember_secrets(secrets_of(settings))
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logged as it is
            return record
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, ()
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
