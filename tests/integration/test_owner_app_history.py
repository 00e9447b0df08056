"""The owner app's history against a forged readable copy (issue 15 with issue 12's rule).

The thief has the database file and drops the append-only triggers (no key needed), then
rewrites the readable copy of a sealed entry: the visitor's name in ``session.granted``. No
leaf hash changes. The history's check is the store's whole-log verification, which checks
every row against what its signed leaf commits to (docs/audit-log.md, "What is shown is what
is signed"): the card holding the forged entry, and everything after it, is not verified, and
the page says from which entry.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from gateway.owner.history import Filters
from tests.support.service import running_harness


def _as_thief(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db, isolation_level=None)
    for (name,) in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    return conn


async def test_a_rewritten_visitor_name_shows_unverified_in_the_history(tmp_path: Path) -> None:
    async with running_harness(tmp_path / "gw") as h:
        app = h.gateway.owner_app
        assert app is not None
        t = h.ticket(subject="Real Courier")
        session = (await h.open(t, package_code="PKG-1")).body["session"]
        await h.done(t, session)
        await h.wait_session(session, "closed")

        before = await app.history(Filters())
        (card,) = [c for c in before["visits"] if c["session"] == session]
        assert card["verified"] is True
        assert card["subject"] == "Real Courier"

        conn = _as_thief(h.gateway.config.database)
        try:
            (index, body) = conn.execute(
                "SELECT idx, body FROM audit_entry WHERE kind = 'session.granted'"
                " ORDER BY idx DESC LIMIT 1"
            ).fetchone()
            forged = {**json.loads(body), "sub": "Someone Else"}
            conn.execute(
                "UPDATE audit_entry SET body = ? WHERE idx = ?",
                (json.dumps(forged, sort_keys=True, separators=(",", ":")), index),
            )
        finally:
            conn.close()

        after = await app.history(Filters())
        assert after["log"]["ok"] is False
        assert after["log"]["first_bad_index"] == index
        (card,) = [c for c in after["visits"] if c["session"] == session]
        # The card holds the forged entry, and is not passed off as verified.
        assert index in card["entries"]
        assert card["verified"] is False
        assert all(clip["verified"] is False for clip in card["clips"])
