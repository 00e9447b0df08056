"""The privacy test over the full demo with sync on (issue: "Privacy by construction").

``threshold demo --dir D`` runs every visit while the relay's link is cut, then lets the
gateway catch up and the owner read the history back. Afterwards every byte the relay kept
(``D/cloud/``: its database, WAL, key) and every byte that crossed the link both ways
(``D/cloud/wire-capture.bin``) is searched for the household's plaintext: holder names,
the order id, the door name, purposes and the package code, raw and as base64/base64url.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# What the demo's visits carry (gateway/demo/story.py): holders, order, door, purposes, code.
SECRETS = (
    "courier",
    "courier-2",
    "cleaner",
    "surveyor",
    "order-4711",
    "front",
    "delivery",
    "service",
    "survey",
    "PKG-4711-A",
)


def forms(secret: str) -> list[bytes]:
    raw = secret.encode()
    found = [raw]
    for pad in (b"", b"\x00", b"\x00\x00"):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(pad + raw).rstrip(b"=")[len(pad) * 2 : -2]
            # Short encodings occur by chance in random base64; only long ones are evidence.
            if len(text) >= 8:
                found.append(text)
    return found


def leaks(blob: bytes) -> list[str]:
    return [s for s in SECRETS if any(form in blob for form in forms(s))]


def test_full_demo_shows_the_cloud_nothing_of_the_visits(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "demo", "--dir", str(tmp_path / "gw")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "6. the internet comes back" in out
    assert "ok    gateway caught up" in out
    assert "ok    owner's history" in out
    assert "session.granted          courier" in out  # the owner, and only the owner, reads it
    cloud = tmp_path / "gw" / "cloud"
    files = sorted(p for p in cloud.iterdir() if p.is_file())
    names = {p.name for p in files}
    assert {"relay.sqlite3", "wire-capture.bin", "relay.key"} <= names
    capture = (cloud / "wire-capture.bin").read_bytes()
    assert b"POST /v1/gateways/gw-demo/entries" in capture
    assert b"GET /v1/owner/gateways/gw-demo/entries" in capture
    # The probe finds what is there: the gateway's own database holds the plaintext.
    assert "courier" in leaks(
        (tmp_path / "gw" / "threshold.db").read_bytes()
        + b"".join(p.read_bytes() for p in (tmp_path / "gw").glob("threshold.db-*"))
    )
    for path in files:
        assert leaks(path.read_bytes()) == [], path.name
