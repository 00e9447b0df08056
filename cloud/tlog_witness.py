"""The relay as a standard C2SP witness: ``tlog-witness`` ``add-checkpoint`` (v1.0.0,
https://c2sp.org/tlog-witness, section "add-checkpoint"), for any log whose key it trusts.

Request body: ``old <size>\\n``, up to 63 consistency-proof lines (base64 hashes), an empty
line, then a signed checkpoint note (``store.checkpoint``, ``store.note``). The answer, in
the order the spec gives the checks:

* 400: the body does not parse;
* 404: the checkpoint's origin is not a log this witness knows;
* 403: no signature from the log's trusted key, or one from it that fails (the note is then
  malformed per signed-note);
* 400: the old size is above the checkpoint's size;
* 409: the old size is not the size of the latest checkpoint this witness cosigned for the
  origin (0 if none); the body is that size and a newline, type ``text/x.tlog.size``;
* 422: a size-0 checkpoint whose root is not the empty tree's, a non-empty proof from size
  0, a consistency proof that does not verify, or the same size with another root;
* 200: the witness records the checkpoint as the origin's latest and answers one
  ``tlog-cosignature`` line (Ed25519, type 0x04) with a non-zero timestamp.

:func:`decide` is the whole decision, pure; the relay runs it and the state update in one
step of its single storage thread, which is the atomicity the spec asks for (checking the
old size and persisting the new checkpoint must not interleave with another request).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from nacl.signing import SigningKey

from store import cosignature, merkle, note
from store.checkpoint import EMPTY_ROOT, Body, parse_body

#: "The client MUST NOT send more than 63 consistency proof lines."
MAX_PROOF_LINES = 63
MAX_REQUEST_BYTES = 64 * 1024
SIZE_CONTENT_TYPE = "text/x.tlog.size"
_INCONSISTENT = "inconsistent_checkpoint"
_OLD = re.compile(r"old (0|[1-9][0-9]{0,18})")


@dataclass(frozen=True)
class Request:
    old_size: int
    proof: tuple[bytes, ...]
    checkpoint: str


@dataclass(frozen=True)
class Latest:
    """The latest checkpoint the witness cosigned for one origin."""

    tree_size: int
    root_hash: bytes


@dataclass(frozen=True)
class Answer:
    """An HTTP status and its body. A 200 (cosignature lines) and a 409 (the size) are text
    as the spec says; every other status is a problem+json with ``code`` and ``body`` as
    its detail. ``latest`` is the new state on 200."""

    status: int
    body: str
    code: str = ""
    content_type: str = "text/plain; charset=utf-8"
    latest: Latest | None = None


class BadRequest(ValueError):
    """The body is not an add-checkpoint request (answered 400)."""


def parse_request(data: bytes) -> Request:
    if len(data) > MAX_REQUEST_BYTES:
        raise BadRequest(f"an add-checkpoint request is at most {MAX_REQUEST_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the request is not UTF-8") from None
    head, blank, checkpoint = text.partition("\n\n")
    if not blank:
        raise BadRequest("no empty line before the checkpoint")
    lines = head.split("\n")
    old = _OLD.fullmatch(lines[0])
    if old is None or int(old.group(1)) > 2**63 - 1:
        raise BadRequest("the first line is 'old <size>' without leading zeroes")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise BadRequest(f"at most {MAX_PROOF_LINES} consistency proof lines")
    proof: list[bytes] = []
    for line in lines[1:]:
        try:
            digest = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("a proof line is not base64") from None
        if len(digest) != 32:
            raise BadRequest("a proof line is a 32-byte hash")
        proof.append(digest)
    return Request(int(old.group(1)), tuple(proof), checkpoint)


def encode_request(old_size: int, proof: list[bytes] | tuple[bytes, ...], note_text: str) -> bytes:
    """A client's add-checkpoint body (the gateway submitting to its ``[witnesses]``)."""
    lines = [f"old {old_size}", *(base64.b64encode(p).decode("ascii") for p in proof)]
    return ("\n".join(lines) + "\n\n" + note_text).encode("utf-8")


def origin_hash(origin: str) -> str:
    """The monitoring path's name for a log: lowercase hex SHA-256 of its origin."""
    return hashlib.sha256(origin.encode()).hexdigest()


def decide(
    data: bytes,
    logs: Callable[[str], note.Verifier | None],
    latest: Callable[[str], Latest | None],
    key: SigningKey,
    name: str,
    now_s: int,
) -> tuple[Answer, str | None]:
    """The answer to one add-checkpoint body, and the checkpoint's origin when it parsed.

    ``logs`` gives the trusted verifier of an origin (None: unknown log); ``latest`` the
    witness's state for an origin it has cosigned (None: never).
    """
    try:
        request = parse_request(data)
        parsed = note.parse(request.checkpoint)
        body = parse_body(parsed.text)
    except (BadRequest, note.MalformedNote) as exc:
        return Answer(400, str(exc), "malformed"), None
    verifier = logs(body.origin)
    if verifier is None:
        return Answer(
            404, "this witness does not know the log's origin", "unknown_log"
        ), body.origin
    try:
        note.verified(parsed, [verifier])
    except note.MalformedNote as exc:
        return Answer(403, str(exc), "untrusted_checkpoint"), body.origin
    if request.old_size > body.tree_size:
        return Answer(400, "the old size is above the checkpoint's size", "malformed"), body.origin
    return _check_consistency(request, body, parsed.text, latest, key, name, now_s), body.origin


def _check_consistency(
    request: Request,
    body: Body,
    text: str,
    latest: Callable[[str], Latest | None],
    key: SigningKey,
    name: str,
    now_s: int,
) -> Answer:
    held = latest(body.origin) or Latest(0, EMPTY_ROOT)
    if request.old_size != held.tree_size:
        return Answer(409, f"{held.tree_size}\n", "", SIZE_CONTENT_TYPE)
    if body.tree_size == 0 and body.root_hash != EMPTY_ROOT:
        return Answer(422, "a size-0 checkpoint has the empty tree's root", _INCONSISTENT)
    if request.old_size == 0:
        if request.proof:
            return Answer(422, "no consistency proof from size 0", _INCONSISTENT)
    elif request.old_size == body.tree_size:
        if body.root_hash != held.root_hash:
            return Answer(422, "the same size with another root", _INCONSISTENT)
    elif not merkle.verify_consistency(
        request.old_size, body.tree_size, held.root_hash, body.root_hash, list(request.proof)
    ):
        return Answer(422, "the consistency proof does not verify", _INCONSISTENT)
    line = cosignature.cosign(key, name, text, max(1, now_s))
    return Answer(200, line.line(), latest=Latest(body.tree_size, body.root_hash))
