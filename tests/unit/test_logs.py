"""One line per event (gateway.app.logs): a traceback never splits a text record."""

from __future__ import annotations

import logging

from gateway.app.logs import OneLineFormatter


def test_a_traceback_stays_on_its_records_line() -> None:
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        record = logging.LogRecord("threshold", logging.ERROR, __file__, 1, "failed", (), None)
        import sys

        record.exc_info = sys.exc_info()
    line = OneLineFormatter().format(record)
    assert "\n" not in line
    assert "ERROR threshold: failed | Traceback" in line
    assert "ValueError: boom | second line" in line
