"""Fuzzing what ``threshold owner log`` reads from the relay (:mod:`gateway.clients.cloud`):
pages of sealed entries, the checkpoints document and the alarms. The owner trusts the relay
with nothing (docs/threat-model.md), so every document either has the protocol's shape or
ends the command with :class:`~cloud.wire.MalformedMessage` (the CLI's one typed line); what
is let through is what the command prints and checks without another exception.
"""

from __future__ import annotations

import base64
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from cloud.wire import MalformedMessage
from gateway.clients.cloud import alarms_from, checkpoints_document, entries_page
from store.checkpoint import Checkpoint, SignedCheckpoint
from tests.fuzz.fuzzing import FUZZ, JSON, mutated, only

B64 = base64.b64encode(bytes(32)).decode()
ROW = {"index": 0, "sealed": B64}
CHECKPOINT = {
    **SignedCheckpoint(Checkpoint("gw-home-1", 1, bytes(32), 1), bytes(64)).to_json(),
    "source": "upload",
    "cosignature": base64.b64encode(bytes(64)).decode(),
}
ALARM = {"id": 1, "code": "gap", "time_ms": 1_700_000_000_000, "detail": "entries 3..4 missing"}


@FUZZ
@given(JSON | st.lists(mutated(ROW, tuple(ROW)), max_size=3).map(lambda rows: {"entries": rows}))
# A row that is not an object: AttributeError (bug found here).
@example({"entries": [7]})
# A page that is not an object: AttributeError (bug found here).
@example([])
def test_entry_pages_raise_only_malformed(page: Any) -> None:
    rows = only(MalformedMessage, lambda: entries_page(page))
    for index, sealed in rows or []:
        assert index >= 0
        assert isinstance(sealed, bytes)


@FUZZ
@given(
    JSON
    | st.lists(mutated(CHECKPOINT, tuple(CHECKPOINT)), max_size=2).map(
        lambda items: {"checkpoints": items, "relay_id": "relay:x", "relay_key": B64}
    )
)
# A checkpoint whose source is missing printed "None" as a source (bug found here).
@example({"checkpoints": [{k: v for k, v in CHECKPOINT.items() if k != "source"}]})
def test_checkpoint_documents_raise_only_malformed(document: Any) -> None:
    only(MalformedMessage, lambda: checkpoints_document(document))


@FUZZ
@given(JSON | st.lists(mutated(ALARM, tuple(ALARM)), max_size=3).map(lambda a: {"alarms": a}))
# An alarm without a code: KeyError when the command printed it (bug found here).
@example({"alarms": [{"time_ms": 1, "detail": "x"}]})
# A detail with a terminal escape sequence: printed raw to the owner's terminal.
@example({"alarms": [{**ALARM, "detail": "\x1b[2J"}]})
def test_alarm_documents_raise_only_malformed(document: Any) -> None:
    alarms = only(MalformedMessage, lambda: alarms_from(document))
    for alarm in alarms or []:
        assert f"ALARM {alarm['code']}: {alarm['detail']}".isprintable()
        assert alarm["time_ms"] >= 0
