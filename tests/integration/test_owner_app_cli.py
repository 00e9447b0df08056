"""``threshold owner enroll | devices | rename-device | revoke-device | allow-device`` against a
real gateway."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.test_service_cli import key_file, threshold
from tests.support.service import GatewayHarness, harness

__all__ = ["harness"]  # the fixture, imported for pytest


async def test_enroll_prints_a_one_time_link_and_its_qr_code(
    harness: GatewayHarness, tmp_path: Path
) -> None:
    owner = key_file(tmp_path, "owner.key", harness.keys.owner)
    fp = harness.gateway.fingerprint
    assert fp is not None
    common = ("--gateway", harness.url, "--owner-key", str(owner), "--pin-fingerprint", fp)
    code, out, err = await threshold(
        "owner", "enroll", "--role", "member", "--name", "Tab", *common
    )
    assert code == 0, err
    lines = out.splitlines()
    app = harness.gateway.app_url
    assert app is not None
    assert lines[0].startswith(app + "#enroll=")
    assert any("\u2588" in line or "\u2580" in line for line in lines)  # the QR code's blocks
    assert "member device (Tab)" in lines[-1]
    events = await harness.client.owner(harness.keys.owner, "GET", "/v1/owner/events")
    created = [e for e in events["events"] if e["kind"] == "owner.enrollment_created"]
    assert created[0]["body"]["role"] == "member"
    assert "enroll=" not in json.dumps(events)  # the secret is never logged
    code, out, err = await threshold("owner", "devices", *common)
    assert (code, out) == (0, "")
    code, out, err = await threshold("owner", "revoke-device", "d-none", *common)
    assert code == 1
    assert "device_unknown" in out + err
    allow = ("owner", "allow-device", "d-none", "--may-open", "yes")
    code, out, err = await threshold(*allow, *common)
    assert code == 1
    assert "device_unknown" in out + err
    # Without the owner key's signature there is no link.
    reply = await harness.client.request("POST", "/v1/owner/enrollments", {"role": "owner"})
    assert reply.status == 401
