"""The outage journal: what the gateway did while its database could not be written
(issue 11, finding 4; docs/audit-log.md, "When the store cannot write").

An emergency ticket opens even when SQLite cannot write (a full disk, a read-only
filesystem), and a door that already moved is relocked whatever the log says. Before this
journal, what such a session did was held in RAM only: a restart forgot that a single-use
emergency ticket had been used (it opened twice), and the log never learned of the visit.

The journal is a small append-only file beside the database (``<database>.outage``, mode
0600). Each record is one batch of a session's audit entries that the store refused, the
session's state after it, and the ticket use it counted, if any. The file is preallocated
(zeros written and fsynced when it is made), so a record is written into blocks the
filesystem already gave it: a disk too full for SQLite still takes a record. Each append is
fsynced before the runner performs the next effect, so the journal keeps the write-ahead
rule when the database cannot.

Format (version 1). A sequence of frames, each ``length`` (4 bytes, big-endian, > 0),
``crc32`` of the payload (4 bytes, big-endian) and the payload, canonical JSON. The first
frame is the header, ``{"journal": <32 hex>, "v": 1}``; the others are records with a
``seq`` rising by one from 1. A zero length ends the journal (the preallocated zeros). A
frame that runs past the end or fails its CRC is a torn last write: it and everything after
it are ignored (and wiped when the journal is opened). A whole frame that does not parse is
not a torn write, and is refused as :class:`~store.errors.OutageJournalCorrupt`.

Replay (``gateway.access.ledger``) applies the records with ``seq`` above the journal's
mark in the database (``outage_replay``: journal id -> last seq applied), in the same
transaction that moves the mark; then the journal is wiped and given a new id. A crash
between the commit and the wipe replays nothing twice: the mark says those records are in.

:func:`encode_record`, :func:`encode_header` and :func:`decode` are pure;
:class:`OutageJournal` is the thin, blocking file writer (call it through
``asyncio.to_thread``).
"""

from __future__ import annotations

import json
import os
import secrets
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from store.errors import OutageJournalCorrupt, OutageJournalFull, StorageIOError

JOURNAL_VERSION = 1
#: Room for a few hundred batches (a session writes at most about eight): an outage long
#: enough to fill it has opened the door many times with an alarm each time.
DEFAULT_CAPACITY = 256 * 1024
_FRAME = struct.Struct(">II")

Scalar = str | int | bool | None


@dataclass(frozen=True, slots=True)
class JournaledUse:
    """The ticket use a batch counted: (issuer key id, ticket id, max uses)."""

    issuer: str
    ticket_id: str
    max_uses: int


@dataclass(frozen=True, slots=True)
class OutageRecord:
    """One batch of a session's audit entries the store could not take."""

    seq: int
    at_ms: int
    session: str
    door: str
    ticket_id: str
    #: The session's state after the batch, and whether it is terminal.
    state: str
    terminal: bool
    entries: tuple[tuple[str, Mapping[str, Scalar]], ...]
    use: JournaledUse | None = None


@dataclass(frozen=True, slots=True)
class JournalContents:
    """What a journal's bytes hold."""

    journal_id: str
    records: tuple[OutageRecord, ...]
    #: The offset just after the last whole frame (where the next record goes).
    end: int
    #: A torn frame was found after ``end``.
    torn: bool


def _frame(payload: Mapping[str, Any]) -> bytes:
    data = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return _FRAME.pack(len(data), zlib.crc32(data)) + data


def encode_header(journal_id: str) -> bytes:
    return _frame({"journal": journal_id, "v": JOURNAL_VERSION})


def encode_record(record: OutageRecord) -> bytes:
    use = record.use
    return _frame(
        {
            "seq": record.seq,
            "at_ms": record.at_ms,
            "session": record.session,
            "door": record.door,
            "ticket_id": record.ticket_id,
            "state": record.state,
            "terminal": record.terminal,
            "entries": [[kind, dict(body)] for kind, body in record.entries],
            "use": None if use is None else [use.issuer, use.ticket_id, use.max_uses],
        }
    )


def _frames(data: bytes) -> tuple[list[tuple[int, dict[str, Any]]], int, bool]:
    """The whole frames (offset after each, payload), the end offset, and whether torn."""
    frames: list[tuple[int, dict[str, Any]]] = []
    offset = 0
    while offset + _FRAME.size <= len(data):
        length, crc = _FRAME.unpack_from(data, offset)
        if length == 0:
            return frames, offset, False
        start = offset + _FRAME.size
        payload = data[start : start + length]
        if len(payload) != length or zlib.crc32(payload) != crc:
            return frames, offset, True
        try:
            parsed = json.loads(payload)
        # RecursionError: a frame nested past the parser's depth is as corrupt as any other.
        except (ValueError, RecursionError):
            raise OutageJournalCorrupt(f"outage journal frame at {offset} is not JSON") from None
        if not isinstance(parsed, dict):
            raise OutageJournalCorrupt(f"outage journal frame at {offset} is not an object")
        offset = start + length
        frames.append((offset, parsed))
    return frames, offset, False


def _record(payload: dict[str, Any]) -> OutageRecord:
    try:
        use = payload["use"]
        entries = tuple((str(kind), dict(body)) for kind, body in payload["entries"])
        record = OutageRecord(
            seq=int(payload["seq"]),
            at_ms=int(payload["at_ms"]),
            session=str(payload["session"]),
            door=str(payload["door"]),
            ticket_id=str(payload["ticket_id"]),
            state=str(payload["state"]),
            terminal=bool(payload["terminal"]),
            entries=entries,
            use=None if use is None else JournaledUse(str(use[0]), str(use[1]), int(use[2])),
        )
    except (KeyError, TypeError, ValueError, IndexError):
        raise OutageJournalCorrupt("an outage journal record is malformed") from None
    for _, body in record.entries:
        if not all(isinstance(v, str | int | bool) or v is None for v in body.values()):
            raise OutageJournalCorrupt("an outage journal entry holds a non-scalar value")
    return record


def decode(data: bytes) -> JournalContents:
    """Read a journal's bytes. All zeros (or nothing): a journal not started, id ``""``."""
    frames, end, torn = _frames(data)
    if not frames:
        if torn:
            raise OutageJournalCorrupt("the outage journal's header is torn")
        return JournalContents("", (), 0, False)
    (_, header), *rest = frames
    journal_id = header.get("journal")
    if header.get("v") != JOURNAL_VERSION or not isinstance(journal_id, str) or not journal_id:
        raise OutageJournalCorrupt("the outage journal's header is not version 1")
    records = tuple(_record(payload) for _, payload in rest)
    for expected, record in enumerate(records, start=1):
        if record.seq != expected:
            raise OutageJournalCorrupt(f"outage journal record {expected} has seq {record.seq}")
    return JournalContents(journal_id, records, end, torn)


def journal_path(database: Path) -> Path:
    """Where the journal of ``database`` lives."""
    return database.with_name(database.name + ".outage")


class OutageJournal:
    """The journal file: blocking I/O, one instance per database, one caller at a time."""

    def __init__(self, path: Path, fd: int, capacity: int, contents: JournalContents) -> None:
        self.path = path
        self._fd = fd
        self.capacity = capacity
        self._contents = contents

    @classmethod
    def open(cls, path: Path, capacity: int = DEFAULT_CAPACITY) -> OutageJournal:
        """Open the journal at ``path``, making it (0600, preallocated) if it is not there."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StorageIOError(f"cannot open the outage journal {path}: {exc.strerror}") from None
        try:
            size = os.fstat(fd).st_size
            data = os.pread(fd, max(size, capacity), 0)
            contents = decode(data)
            journal = cls(path, fd, max(size, capacity), contents)
            if size < capacity:
                journal._zero(size, capacity - size)
            if contents.torn:
                # Wipe the torn frame so a shorter record written over it cannot be
                # followed by what is left of it.
                journal._zero(contents.end, journal.capacity - contents.end)
            if not contents.journal_id:
                journal._start()
            else:
                os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            raise StorageIOError(f"cannot prepare the outage journal {path}: {exc}") from None
        except BaseException:
            os.close(fd)
            raise
        return journal

    @property
    def journal_id(self) -> str:
        return self._contents.journal_id

    @property
    def pending(self) -> tuple[OutageRecord, ...]:
        """Every record kept since the journal was last wiped, oldest first."""
        return self._contents.records

    def append(
        self,
        *,
        at_ms: int,
        session: str,
        door: str,
        ticket_id: str,
        state: str,
        terminal: bool,
        entries: tuple[tuple[str, Mapping[str, Scalar]], ...],
        use: JournaledUse | None,
    ) -> OutageRecord:
        """Add a record and fsync it; raises :class:`OutageJournalFull` when it does not fit."""
        contents = self._contents
        record = OutageRecord(
            seq=len(contents.records) + 1,
            at_ms=at_ms,
            session=session,
            door=door,
            ticket_id=ticket_id,
            state=state,
            terminal=terminal,
            entries=entries,
            use=use,
        )
        frame = encode_record(record)
        # Keep a zero length after the frame: it is what ends the journal.
        if contents.end + len(frame) + _FRAME.size > self.capacity:
            raise OutageJournalFull(
                f"the outage journal {self.path} is full ({self.capacity} bytes)"
            )
        try:
            os.pwrite(self._fd, frame, contents.end)
            os.fsync(self._fd)
        except OSError as exc:
            raise StorageIOError(f"cannot write the outage journal: {exc.strerror}") from None
        self._contents = JournalContents(
            contents.journal_id, (*contents.records, record), contents.end + len(frame), False
        )
        return record

    def wipe(self) -> None:
        """Forget every record (they are in the database) and start under a new id.

        The records are zeroed before the new header is written: a crash in between leaves
        either the old id (whose records the database's mark says are applied) or nothing.
        """
        try:
            self._zero(0, max(self._contents.end, _FRAME.size))
            self._start()
        except OSError as exc:
            raise StorageIOError(f"cannot wipe the outage journal: {exc.strerror}") from None

    def close(self) -> None:
        os.close(self._fd)

    def _start(self) -> None:
        journal_id = secrets.token_hex(16)
        header = encode_header(journal_id)
        os.pwrite(self._fd, header, 0)
        os.fsync(self._fd)
        self._contents = JournalContents(journal_id, (), len(header), False)

    def _zero(self, offset: int, length: int) -> None:
        os.pwrite(self._fd, bytes(length), offset)
        os.fsync(self._fd)
