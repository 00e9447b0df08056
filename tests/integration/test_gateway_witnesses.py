"""The gateway submits its checkpoints to the witnesses in ``[witnesses]`` (C2SP
tlog-witness, client side) and keeps each cosignature; here the witness is the reference
relay, over real HTTP on loopback, configured only by the vkey it publishes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.sync.witnesses import WitnessEndpoint, WitnessSubmitter
from store import cosignature, note
from tests.support.cloud import new_parties, open_sealed_store, start_relay
from tests.support.relay_attack import raw_request


async def _witness(url: str) -> WitnessEndpoint:
    port = int(url.rsplit(":", 1)[1].strip("/"))
    info = (await raw_request(port, "GET", "/v1/witness")).json
    return WitnessEndpoint.parse("relay", url + info["submission_prefix"], info["vkey"])


async def _append(store: Any, count: int, tag: str) -> None:
    for n in range(count):
        await store.append("session.closed", {"tag": tag, "n": n})


async def test_checkpoints_are_cosigned_and_kept_and_a_lost_state_recovers(
    tmp_path: Path,
) -> None:
    parties = new_parties()
    server, url = await start_relay(tmp_path / "relay", parties)
    store = await open_sealed_store(tmp_path / "gw.db", parties)
    try:
        witness = await _witness(url)
        submitter = WitnessSubmitter(store, (witness,))
        await _append(store, 5, "a")
        [first] = await submitter.submit_all()
        assert (first.tree_size, first.error) == (5, None)
        await _append(store, 3, "b")
        [second] = await submitter.submit_all()
        assert (second.tree_size, second.error) == (8, None)

        signed = await store.checkpoint()
        kept = await store.read(
            lambda conn: conn.execute(
                "SELECT witness, signature FROM checkpoint_cosignature WHERE tree_size = 8"
            ).fetchall()
        )
        assert [name for name, _ in kept] == [witness.verifier.name]
        line = note.NoteSignature(witness.verifier.name, bytes(kept[0][1]))
        checked = cosignature.check(witness.verifier, signed.checkpoint.note_text(), line)
        assert checked.timestamp > 1_700_000_000

        # Nothing new: no request, the witness's size is reported.
        [again] = await submitter.submit_all()
        assert again.tree_size == 8
    finally:
        await store.close()
        await server.stop()


async def test_a_cut_short_log_is_named_by_the_witness(tmp_path: Path) -> None:
    """A thief with the gateway key restores an older copy of the database (3 entries) after
    the witness cosigned 8: the witness answers 409 with its size, and the round says the
    log was cut short instead of quietly starting over."""
    parties = new_parties()
    server, url = await start_relay(tmp_path / "relay", parties)
    store = await open_sealed_store(tmp_path / "gw.db", parties)
    older = await open_sealed_store(tmp_path / "older.db", parties)
    try:
        witness = await _witness(url)
        await _append(store, 8, "a")
        [done] = await WitnessSubmitter(store, (witness,)).submit_all()
        assert done.tree_size == 8
        await _append(older, 3, "a")
        [outcome] = await WitnessSubmitter(older, (witness,)).submit_all()
        assert outcome.tree_size is None
        assert outcome.error is not None
        assert "cut short" in outcome.error
    finally:
        await older.close()
        await store.close()
        await server.stop()


async def test_a_forgotten_cosignature_is_recovered_from_the_409(tmp_path: Path) -> None:
    parties = new_parties()
    server, url = await start_relay(tmp_path / "relay", parties)
    first = await open_sealed_store(tmp_path / "gw.db", parties)
    try:
        witness = await _witness(url)
        await _append(first, 4, "a")
        [done] = await WitnessSubmitter(first, (witness,)).submit_all()
        assert done.tree_size == 4
        # The same log, but the gateway lost its record of the cosignature: old size 0 gets
        # 409 "4", the round retries from 4 with a proof, and is cosigned.
        await first.transact(lambda tx: tx._conn.execute("DELETE FROM checkpoint_cosignature"))
        await _append(first, 2, "b")
        [outcome] = await WitnessSubmitter(first, (witness,)).submit_all()
        assert (outcome.tree_size, outcome.error) == (6, None)
    finally:
        await first.close()
        await server.stop()


async def test_a_paced_gateway_shows_witnesses_only_the_scheduled_checkpoint(
    tmp_path: Path,
) -> None:
    """With paced uploads (docs/privacy.md) a witness is another observer: it is submitted
    the checkpoint of the last upload slot, never the log as it stands (which would show the
    queue, and so when entries were written)."""
    parties = new_parties()
    server, url = await start_relay(tmp_path / "relay", parties)
    store = await open_sealed_store(tmp_path / "gw.db", parties)
    try:
        witness = await _witness(url)
        submitter = WitnessSubmitter(store, (witness,), scheduled=True)
        await _append(store, 3, "a")
        [before] = await submitter.submit_all()
        assert (before.tree_size, before.error) == (None, "waiting for the first upload slot")

        def close_slot(tx: Any) -> None:
            while tx.tree_size < 4:
                tx.append("sync.padding", {})
            tx.checkpoint_at(4)
            tx.state.set_upload_boundary(4, 1, tx.now_ms())

        await store.transact(close_slot)
        await _append(store, 5, "queued")  # the queue: written, not yet in a slot
        [outcome] = await submitter.submit_all()
        assert (outcome.tree_size, outcome.error) == (4, None)
        sizes = await store.read(
            lambda conn: [
                row[0] for row in conn.execute("SELECT tree_size FROM checkpoint_cosignature")
            ]
        )
        assert sizes == [4]
    finally:
        await store.close()
        await server.stop()
