"""Fuzzing what the gateway reads from the relay (:mod:`gateway.sync.task`): the JSON of any
answer and an upload's acknowledgement. The relay operator is a party the threat model does
not trust (docs/threat-model.md), so a hostile relay's answers must end a sync round with the
task's own typed error (:class:`~gateway.sync.task.SyncUnavailable` or
:class:`~gateway.sync.task.SyncRefused`), never a stray exception with a traceback in
``threshold sync now``, and never a relay id the store cannot encode.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from gateway.sync.task import SyncRefused, SyncUnavailable, read_ack, relay_answer
from tests.fuzz.fuzzing import FUZZ, JSON, mutated, only

ACK = {
    "acked_size": 12,
    "relay_id": "relay:" + "A" * 43,
    "cosignature": base64.b64encode(bytes(64)).decode(),
    "tree_size": 12,
}


@FUZZ
@given(
    st.binary(max_size=200)
    | JSON.map(lambda v: json.dumps(v).encode())
    | st.integers(1, 40).map(lambda n: b"[" * n * 100)
    | st.integers(4300, 5000).map(lambda n: b"1" * n)
)
# A number of 5,000 digits: int()'s ValueError escaped the sync round (bug found here).
@example(b"1" * 5000)
# Nesting past the parser's depth: RecursionError escaped (bug found here).
@example(b"[" * 100_000)
def test_any_relay_answer_raises_only_sync_unavailable(raw: bytes) -> None:
    only(SyncUnavailable, lambda: relay_answer(raw, 200))


@FUZZ
@given(mutated(ACK, tuple(ACK)))
# A relay id with a lone surrogate went on to the store, which cannot encode it (bug found
# here: read_ack now refuses it).
@example({**ACK, "relay_id": "\ud800"})
def test_acknowledgements_raise_only_sync_refused(data: dict[str, Any]) -> None:
    ack = only(SyncRefused, lambda: read_ack(data))
    if ack is not None:
        acked, relay_id, cosignature = ack
        assert acked >= 0
        relay_id.encode("ascii")
        assert len(cosignature) in (4 + 8 + 64, 64)  # a tlog-cosignature, or the old form
