"""The outage journal replayed into a real store (gateway/access/ledger.py): in order, before
any later write, and once, whatever crashes between the replay's commit and the wipe."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.access.ledger import StoreLedger
from gateway.access.ports import SessionRecord
from gateway.access.session import SessionFacts, SessionState
from store.db import Store
from store.errors import StoreError
from store.outage_journal import OutageJournal, journal_path
from tests.support.store import new_signer, open_store

FACTS = SessionFacts("s-e1", "front", "t-e1", "medic", "emergency", 60)
USE = ("kid-owner", "t-e1", 1)


def at(state: SessionState) -> SessionRecord:
    now = datetime.now(UTC)
    return SessionRecord(FACTS, state, b"", now, now)


def batch(*kinds: str) -> list[tuple[str, dict[str, str | int | bool | None]]]:
    return [(kind, {"session": FACTS.session, "door": "front"}) for kind in kinds]


async def fill(store: Store) -> None:
    await store.set_page_limit(1)
    for pad in (2000, 500, 100, 10, 0):
        for _ in range(400):
            try:
                await store.append("test.filler", {"pad": "x" * pad})
            except StoreError:
                break


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await open_store(tmp_path / "g.db", new_signer())
    try:
        yield s
    finally:
        await s.close()


def kinds_of(entries: list[dict[str, object]]) -> list[object]:
    return [e["kind"] for e in entries if e["kind"] != "test.filler"]


async def test_later_writes_wait_behind_the_journal(store: Store, tmp_path: Path) -> None:
    journal = OutageJournal.open(journal_path(tmp_path / "g.db"))
    ledger = StoreLedger(store, "gw", journal)
    try:
        await fill(store)
        with pytest.raises(StoreError):
            await ledger.append(
                batch("session.granted", "session.unlocking"), at(SessionState.UNLOCKING), USE
            )
        await ledger.journal(
            batch("session.granted", "session.unlocking"), at(SessionState.UNLOCKING), USE
        )
        assert ledger.outage_pending()
        assert ledger.journaled_uses() == [("kid-owner", "t-e1")]
        with pytest.raises(StoreError):
            await ledger.replay()  # still full: nothing taken, the journal kept
        assert ledger.outage_pending()

        await store.set_page_limit(1_000_000)
        # The session's next step: its journaled steps go first, in the same transaction.
        assert await ledger.append(batch("session.open"), at(SessionState.OPEN))
        assert not ledger.outage_pending()
        entries = await ledger.events(0, 10_000)
        assert kinds_of(entries) == [
            "session.granted",
            "session.unlocking",
            "store.outage_replayed",
            "session.open",
        ]
        unclosed = await store.unclosed_sessions()
        assert [(r.session_id, r.state) for r in unclosed] == [("s-e1", "open")]
        assert await store.consume_use("kid-owner", "t-e1", 1) is not None
        uses = await store.read(
            lambda c: c.execute("SELECT uses FROM ticket_use WHERE ticket_id = 't-e1'").fetchone()
        )
        assert uses[0] == 1  # the journaled use, once; the extra consume above was refused
    finally:
        journal.close()


async def test_a_crash_between_the_replay_and_the_wipe_counts_nothing_twice(
    store: Store, tmp_path: Path
) -> None:
    path = journal_path(tmp_path / "g.db")
    journal = OutageJournal.open(path)
    await journal_steps(StoreLedger(store, "gw", journal))
    saved = tmp_path / "before-wipe.outage"
    shutil.copyfile(path, saved)
    ledger = StoreLedger(store, "gw", journal)
    assert await ledger.replay() == 2
    journal.close()
    before = kinds_of(await ledger.events(0, 10_000))

    # The crash: the wipe never reached the disk, so the next start finds the old journal.
    shutil.copyfile(saved, path)
    reopened = OutageJournal.open(path)
    try:
        again = StoreLedger(store, "gw", reopened)
        assert again.outage_pending()
        await again.replay()
        assert not again.outage_pending()
        assert kinds_of(await again.events(0, 10_000)) == before  # nothing written twice
        uses = await store.read(
            lambda c: c.execute("SELECT uses FROM ticket_use WHERE ticket_id = 't-e1'").fetchone()
        )
        assert uses[0] == 1
        assert await store.unclosed_sessions() == []
    finally:
        reopened.close()


async def journal_steps(ledger: StoreLedger) -> None:
    await ledger.journal(
        batch("session.granted", "alarm.raised", "session.unlocking", "session.open"),
        at(SessionState.OPEN),
        USE,
    )
    await ledger.journal(batch("session.relocking", "session.closed"), at(SessionState.CLOSED))
