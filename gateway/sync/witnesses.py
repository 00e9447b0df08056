"""Submitting the gateway's checkpoints to standard witnesses: the client side of C2SP
``tlog-witness`` ``add-checkpoint`` (https://c2sp.org/tlog-witness), for every witness listed
under ``[witnesses]`` (a URL, the submission prefix, and the witness's cosigner vkey each).

Theory of operation. For each witness the store remembers the largest checkpoint it has
cosigned (``checkpoint_cosignature``, ``witness`` = the vkey's key name). A round signs a
checkpoint of the log as it stands (or reuses the one at that size) and, for each witness
behind it, sends the old size, the RFC 6962 consistency proof from there and the signed
note. A 200 answer's cosignature lines are checked with the witness's vkey (a line from any
other key is ignored, as the spec says) and the verified one is kept in the store. A 409
names the size the witness has: when that size is one the log has, the round retries once
from it (the store can prove consistency from any size); when it is *larger* than the log,
the witness has cosigned more of this log than the gateway holds now, which only a cut-short
or rewritten log explains, and the round says so loudly. Any other answer is reported per
witness; one witness failing never stops the others, nor anything else the gateway does.

The answer handling (:func:`read_answer`) is pure; :class:`WitnessSubmitter` is the I/O.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from dataclasses import dataclass

import aiohttp

from cloud.tlog_witness import SIZE_CONTENT_TYPE, encode_request
from store import cosignature, note
from store.checkpoint import Format, SignedCheckpoint
from store.db import Store
from store.transaction import StoreTransaction

log = logging.getLogger("threshold.witnesses")

REQUEST_TIMEOUT_S = 15.0
MAX_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True)
class WitnessEndpoint:
    """One ``[witnesses.<label>]`` entry: where to submit and whose cosignature to expect."""

    label: str
    url: str
    verifier: note.Verifier

    @classmethod
    def parse(cls, label: str, url: str, vkey: str) -> WitnessEndpoint:
        return cls(label, url.rstrip("/"), cosignature.parse_cosigner_vkey(vkey))


@dataclass(frozen=True)
class Cosigned:
    blob: bytes
    timestamp: int


@dataclass(frozen=True)
class Behind:
    """409: the witness's latest cosigned size for this log."""

    size: int


@dataclass(frozen=True)
class Failed:
    reason: str


@dataclass(frozen=True)
class Outcome:
    """What one witness did this round: the size it cosigned, or why not."""

    witness: str
    tree_size: int | None
    error: str | None = None


def read_answer(
    status: int, content_type: str, body: bytes, verifier: note.Verifier, signed_note: str
) -> Cosigned | Behind | Failed:
    """The meaning of a witness's answer to ``signed_note`` (tlog-witness, add-checkpoint)."""
    if status == 409 and content_type.startswith(SIZE_CONTENT_TYPE):
        text = body.decode("ascii", "replace")
        if not text.endswith("\n") or not text[:-1].isdigit() or len(text) > 21:
            return Failed("the witness's 409 does not carry a size")
        return Behind(int(text[:-1]))
    if status != 200:
        return Failed(f"the witness answered {status}: {body[:200].decode('utf-8', 'replace')}")
    try:
        lines = body.decode("utf-8")
        parsed = note.parse(signed_note + lines)
    except (UnicodeDecodeError, note.MalformedNote) as exc:
        return Failed(f"the witness's answer is not note signature lines ({exc})")
    text = parsed.text
    for line in parsed.signatures:
        if line.name != verifier.name or line.key_id != verifier.key_id:
            continue  # "The client MUST ignore any cosignatures from unknown keys."
        try:
            checked = cosignature.check(verifier, text, line)
        except note.MalformedNote as exc:
            return Failed(str(exc))
        if checked.timestamp == 0:
            return Failed("the witness's cosignature has no timestamp")
        return Cosigned(line.blob, checked.timestamp)
    return Failed("no cosignature from the configured witness key")


def _cosigned_size(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute(
        "SELECT COALESCE(MAX(tree_size), 0) FROM checkpoint_cosignature WHERE witness = ?",
        (name,),
    ).fetchone()
    return int(row[0])


def _keep(tx: StoreTransaction, *, size: int, name: str, blob: bytes) -> None:
    tx.state.add_cosignature(size, name, blob, tx.now_ms())


class WitnessSubmitter:
    """Sends the current checkpoint to every configured witness (one round per call)."""

    def __init__(
        self, store: Store, witnesses: tuple[WitnessEndpoint, ...], *, scheduled: bool = False
    ) -> None:
        self._store = store
        self._witnesses = witnesses
        #: Submit only the paced upload's scheduled checkpoint (docs/privacy.md): a witness
        #: is another observer, shown exactly what the relay is shown.
        self._scheduled = scheduled

    async def submit_all(self) -> list[Outcome]:
        if not self._witnesses:
            return []
        if self._scheduled:
            held = await self._store.scheduled_checkpoint()
            if held is None:
                return [
                    Outcome(w.label, None, "waiting for the first upload slot")
                    for w in self._witnesses
                ]
            signed = held
        else:
            signed = await self._store.checkpoint()
        if signed.checkpoint.format is not Format.NOTE:
            # An old-format checkpoint at the current size (a database upgraded with no new
            # entry yet) is not a C2SP note; the next entry's checkpoint will be.
            return [
                Outcome(w.label, None, "waiting for a tlog-checkpoint") for w in self._witnesses
            ]
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            return list(
                await asyncio.gather(*(self._submit(session, w, signed) for w in self._witnesses))
            )

    async def _submit(
        self, session: aiohttp.ClientSession, witness: WitnessEndpoint, signed: SignedCheckpoint
    ) -> Outcome:
        size = signed.checkpoint.tree_size
        name = witness.verifier.name
        old = await self._store.read(functools.partial(_cosigned_size, name=name))
        if old >= size:
            return Outcome(witness.label, old)
        for _attempt in range(2):
            answer = await self._post(session, witness, signed, old)
            if isinstance(answer, Cosigned):
                await self._store.transact(
                    functools.partial(_keep, size=size, name=name, blob=answer.blob)
                )
                return Outcome(witness.label, size)
            if isinstance(answer, Behind):
                if answer.size > size:
                    reason = (
                        f"the witness has cosigned {answer.size} entries of this log and the "
                        f"log has {size}: it was cut short or rewritten"
                    )
                    log.error("witness %s: %s", witness.label, reason)
                    return Outcome(witness.label, None, reason)
                if answer.size == old:
                    break
                old = answer.size
                continue
            log.warning("witness %s: %s", witness.label, answer.reason)
            return Outcome(witness.label, None, answer.reason)
        return Outcome(witness.label, None, "the witness disagrees about its latest size")

    async def _post(
        self,
        session: aiohttp.ClientSession,
        witness: WitnessEndpoint,
        signed: SignedCheckpoint,
        old: int,
    ) -> Cosigned | Behind | Failed:
        size = signed.checkpoint.tree_size
        proof = await self._store.consistency_proof(old, size) if 0 < old < size else []
        body = encode_request(old, proof, signed.note())
        try:
            async with session.post(witness.url + "/add-checkpoint", data=body) as response:
                raw = await response.content.read(MAX_ANSWER_BYTES)
                kind = response.headers.get("Content-Type", "")
                status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return Failed(f"unreachable: {type(exc).__name__}")
        return read_answer(status, kind, raw, witness.verifier, signed.note())
