"""The outage journal's format (pure) and its file writer (store/outage_journal.py)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from store.errors import OutageJournalCorrupt, OutageJournalFull
from store.outage_journal import (
    JournaledUse,
    OutageJournal,
    OutageRecord,
    decode,
    encode_header,
    encode_record,
    journal_path,
)


def record(seq: int, **kw: object) -> OutageRecord:
    fields: dict[str, object] = {
        "seq": seq,
        "at_ms": 1_790_000_000_000 + seq,
        "session": "s-1",
        "door": "front",
        "ticket_id": "t-1",
        "state": "unlocking",
        "terminal": False,
        "entries": (("session.granted", {"alarm": True, "jti": "t-1", "n": None}),),
        "use": JournaledUse("kid", "t-1", 1),
    }
    fields.update(kw)
    return OutageRecord(**fields)  # type: ignore[arg-type]


def test_records_round_trip_and_zeros_end_the_journal() -> None:
    data = encode_header("ab" * 16) + encode_record(record(1)) + encode_record(record(2, use=None))
    contents = decode(data + bytes(64))
    assert contents.journal_id == "ab" * 16
    assert contents.records == (record(1), record(2, use=None))
    assert contents.end == len(data)
    assert not contents.torn


def test_an_unstarted_journal_is_empty() -> None:
    assert decode(b"").records == ()
    assert decode(bytes(4096)).journal_id == ""


@pytest.mark.parametrize("cut", [1, 5, 9, 20])
def test_a_torn_last_record_is_ignored(cut: int) -> None:
    whole = encode_header("cd" * 16) + encode_record(record(1))
    torn = encode_record(record(2))[:-cut]
    contents = decode(whole + torn)
    assert contents.records == (record(1),)
    assert contents.end == len(whole)
    assert contents.torn


def test_a_flipped_bit_is_a_torn_write_not_a_record() -> None:
    whole = encode_header("cd" * 16)
    bad = bytearray(encode_record(record(1)))
    bad[-3] ^= 0x01
    contents = decode(whole + bytes(bad))
    assert contents.records == ()
    assert contents.torn


def test_a_bad_header_or_a_gap_in_seq_is_corrupt() -> None:
    with pytest.raises(OutageJournalCorrupt):
        decode(encode_record(record(1)))  # no header: the first frame is a record
    with pytest.raises(OutageJournalCorrupt):
        decode(encode_header("ef" * 16) + encode_record(record(2)))
    with pytest.raises(OutageJournalCorrupt):
        decode(encode_header("ef" * 16)[:-2])  # the header itself torn


def test_the_file_is_private_preallocated_and_survives_reopening(tmp_path: Path) -> None:
    path = journal_path(tmp_path / "threshold.db")
    assert path.name == "threshold.db.outage"
    journal = OutageJournal.open(path, capacity=8192)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.stat().st_size == 8192
        first_id = journal.journal_id
        journal.append(
            at_ms=1,
            session="s-1",
            door="front",
            ticket_id="t-1",
            state="unlocking",
            terminal=False,
            entries=(("session.granted", {"jti": "t-1"}),),
            use=JournaledUse("kid", "t-1", 1),
        )
    finally:
        journal.close()
    reopened = OutageJournal.open(path, capacity=8192)
    try:
        assert reopened.journal_id == first_id
        assert [r.seq for r in reopened.pending] == [1]
        assert reopened.pending[0].use == JournaledUse("kid", "t-1", 1)
        reopened.wipe()
        assert reopened.pending == ()
        assert reopened.journal_id != first_id
    finally:
        reopened.close()
    again = OutageJournal.open(path, capacity=8192)
    try:
        assert again.pending == ()
    finally:
        again.close()


def test_a_full_journal_says_so(tmp_path: Path) -> None:
    journal = OutageJournal.open(tmp_path / "j.outage", capacity=1024)
    try:

        def add() -> None:
            journal.append(
                at_ms=1,
                session="s-1",
                door="front",
                ticket_id="t-1",
                state="open",
                terminal=False,
                entries=(("session.open", {"pad": "x" * 100}),),
                use=None,
            )

        add()

        def fill() -> None:
            for _ in range(100):
                add()

        with pytest.raises(OutageJournalFull) as full:
            fill()
        assert full.value.code == "outage_journal_full"
        kept = len(journal.pending)
        assert kept > 0
    finally:
        journal.close()
    reopened = OutageJournal.open(tmp_path / "j.outage", capacity=1024)
    try:
        assert len(reopened.pending) == kept  # what was acknowledged is all there
    finally:
        reopened.close()


def test_a_torn_tail_is_wiped_on_open(tmp_path: Path) -> None:
    path = tmp_path / "j.outage"
    journal = OutageJournal.open(path, capacity=4096)
    journal.close()
    data = bytearray(path.read_bytes())
    contents = decode(bytes(data))
    long_record = encode_record(record(1, entries=(("session.open", {"pad": "y" * 300}),)))
    data[contents.end : contents.end + len(long_record) - 10] = long_record[:-10]
    path.write_bytes(bytes(data))
    reopened = OutageJournal.open(path, capacity=4096)
    try:
        assert reopened.pending == ()
        reopened.append(
            at_ms=2,
            session="s-2",
            door="front",
            ticket_id="t-2",
            state="closed",
            terminal=True,
            entries=(("session.closed", {}),),
            use=None,
        )
    finally:
        reopened.close()
    final = decode(path.read_bytes())
    assert [r.session for r in final.records] == ["s-2"]
    assert not final.torn
