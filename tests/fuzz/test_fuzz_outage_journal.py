"""Fuzzing the outage journal's reader (:func:`store.outage_journal.decode`): the file the
gateway replays into its ledger at start after an outage (issue 11, finding 4). It is on the
disk, where a thief or a failing card can change it, so whatever it holds, the reader
answers with its contents or :class:`~store.errors.OutageJournalCorrupt` (the start-up's one
clear line), never another exception. Frames carry a CRC, so the fuzzer writes its JSON
inside correctly checksummed frames to reach the record reader.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from store.errors import OutageJournalCorrupt
from store.outage_journal import JournaledUse, OutageRecord, decode, encode_header, encode_record
from tests.fuzz.fuzzing import FUZZ, JSON, mutated, only

RECORD = json.loads(
    encode_record(
        OutageRecord(
            seq=1,
            at_ms=5,
            session="s-1",
            door="front",
            ticket_id="t-1",
            state="granted",
            terminal=False,
            entries=(("session.granted", {"jti": "t-1"}),),
            use=JournaledUse("kid", "t-1", 1),
        )
    )[8:]
)


def frame(payload: bytes) -> bytes:
    return struct.pack(">II", len(payload), zlib.crc32(payload)) + payload


@FUZZ
@given(
    st.lists(
        mutated(RECORD, tuple(RECORD)).map(lambda r: json.dumps(r).encode())
        | JSON.map(lambda v: json.dumps(v).encode())
        | st.binary(max_size=60),
        max_size=3,
    ),
    st.binary(max_size=12),
)
# A frame nested past the JSON parser's depth: RecursionError escaped (bug found here).
@example([b"[" * 100_000], b"")
def test_any_journal_decodes_or_is_corrupt(payloads: list[bytes], tail: bytes) -> None:
    data = encode_header("j-1") + b"".join(frame(p) for p in payloads) + tail
    contents: Any = only(OutageJournalCorrupt, lambda: decode(data))
    if contents is not None:
        assert [r.seq for r in contents.records] == list(range(1, len(contents.records) + 1))


@FUZZ
@given(st.binary(max_size=200))
def test_raw_bytes_decode_or_are_corrupt(data: bytes) -> None:
    only(OutageJournalCorrupt, lambda: decode(data))
