"""The gateway's log: one line per event, as text for a terminal or JSON for journald.

``threshold run --log-format json`` (or ``THRESHOLD_LOG_FORMAT=json``, which the systemd
unit sets) writes each record as one JSON object (``python-json-logger``): time, level,
logger, message, and the traceback as a field, so journald and log shippers get whole events.
Text keeps one line per event too: a traceback is folded onto its record's line (``\\n``
shown as `` | ``), so ``grep`` and journald never split an event.

What is never logged (docs/threat-model.md): tickets, proofs, keys, owner signatures; the
modules that handle them log ids and codes only.
"""

from __future__ import annotations

import enum
import logging
import os
import sys

from pythonjsonlogger.json import JsonFormatter

#: Third-party chatter (bumble, zeroconf, aiohttp.access, bleak) stays out of the start-up
#: log unless something is wrong.
_QUIET = ("bumble", "zeroconf", "aiohttp.access", "bleak")


class LogFormat(enum.StrEnum):
    TEXT = "text"
    JSON = "json"


class OneLineFormatter(logging.Formatter):
    """``time LEVEL logger: message``, a traceback folded onto the same line."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", " | ")


def log_format_from_env(default: LogFormat = LogFormat.TEXT) -> LogFormat:
    raw = os.environ.get("THRESHOLD_LOG_FORMAT", "")
    try:
        return LogFormat(raw) if raw else default
    except ValueError:
        return default


def configure_logging(level: int = logging.INFO, fmt: LogFormat = LogFormat.TEXT) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt is LogFormat.JSON:
        handler.setFormatter(
            JsonFormatter(
                "{asctime}{levelname}{name}{message}",
                style="{",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(OneLineFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in _QUIET:
        logging.getLogger(noisy).setLevel(logging.WARNING)
