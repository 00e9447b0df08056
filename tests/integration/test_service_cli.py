"""The reference clients as a user runs them: ``threshold init``, ``threshold courier open``
and ``threshold owner ...`` as processes against a running gateway on loopback."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from nacl.signing import SigningKey

from gateway.trust.base64url import b64u_encode
from gateway.trust.ticket import Purpose
from groundwork.files import write_file
from tests.support.service import GatewayHarness, harness

__all__ = ["harness"]


async def threshold(*argv: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def key_file(tmp: Path, name: str, key: SigningKey) -> Path:
    path = tmp / name
    write_file(path, (b64u_encode(bytes(key) + bytes(key.verify_key)) + "\n").encode())
    return path


async def test_init_cli_prints_identity_and_refuses_overwrite(tmp_path: Path) -> None:
    owner = b64u_encode(bytes(SigningKey.generate().verify_key))
    args = (
        "init",
        "--dir",
        str(tmp_path / "gw"),
        f"--owner-pub={owner}",  # a base64url key may start with '-'
        "--gateway-id",
        "gw-cli",
        "--door",
        "front=sim",
        "--door",
        "garage=nuki:AA:BB:CC:DD:EE:01",
        "--tz",
        "Europe/Paris",
    )
    code, out, err = await threshold(*args)
    assert code == 0, err
    printed = json.loads(out)
    assert printed["gateway_id"] == "gw-cli"
    assert len(printed["tls_fingerprint"]) == 64
    code, out, err = await threshold(*args)
    assert code == 2
    assert "refusing to overwrite" in err
    assert "Traceback" not in err
    code, _, err = await threshold("init", "--dir", str(tmp_path / "x"), "--owner-pub", "zz")
    assert code == 2
    assert "Traceback" not in err


async def test_courier_cli_in_and_out_then_denied(harness: GatewayHarness, tmp_path: Path) -> None:
    t = harness.ticket(package_codes=("BOX-9",))
    holder = key_file(tmp_path, "holder.key", t.holder)
    ticket = tmp_path / "ticket.txt"
    ticket.write_text(t.token + "\n")
    fp = harness.gateway.fingerprint
    assert fp is not None
    base = (
        "courier",
        "open",
        "--gateway",
        harness.url,
        "--ticket",
        str(ticket),
        "--holder-key",
        str(holder),
        "--door",
        "front",
        "--pin-fingerprint",
        fp,
    )
    code, out, err = await threshold(*base, "--package-code", "BOX-9", "--done-after", "0")
    assert code == 0, out + err
    assert "access 201" in out
    assert "done: session closed" in out
    code, out, _ = await threshold(*base, "--package-code", "BOX-9", "--done-after", "0")
    assert code == 1
    assert "uses_exhausted" in out
    code, out, _ = await threshold(*base[:-1], "0" * 64, "--done-after", "0")
    assert code == 1
    assert "does not match the pinned fingerprint" in out + _


async def test_owner_cli_approve_events_lock(harness: GatewayHarness, tmp_path: Path) -> None:
    owner = key_file(tmp_path, "owner.key", harness.keys.owner)
    fp = harness.gateway.fingerprint
    assert fp is not None
    common = ("--gateway", harness.url, "--owner-key", str(owner), "--pin-fingerprint", fp)
    t = harness.ticket(purpose=Purpose.SURVEY)
    session_id = (await harness.open(t)).body["session"]
    code, out, err = await threshold("owner", "approve", session_id, *common)
    assert code == 0, err
    assert json.loads(out)["state"] == "open"
    await harness.done(t, session_id)
    code, out, err = await threshold("owner", "unlock", "--door", "front", *common)
    assert (code, json.loads(out)["lock"]) == (0, "unlocked"), err
    code, out, err = await threshold("owner", "lock", "--door", "front", *common)
    assert (code, json.loads(out)["lock"]) == (0, "locked"), err
    code, out, err = await threshold("owner", "events", "--limit", "500", *common)
    assert code == 0, err
    kinds = [json.loads(line)["kind"] for line in out.splitlines()]
    assert "session.awaiting_approval" in kinds
    assert "owner.unlock" in kinds
    t2 = harness.ticket(purpose=Purpose.SURVEY)
    s2 = (await harness.open(t2)).body["session"]
    code, out, _ = await threshold("owner", "deny", s2, *common)
    assert (code, json.loads(out)["state"]) == (0, "denied")
    wrong = key_file(tmp_path, "wrong.key", SigningKey.generate())
    code, _, err = await threshold(
        "owner",
        "events",
        "--gateway",
        harness.url,
        "--owner-key",
        str(wrong),
        "--pin-fingerprint",
        fp,
    )
    assert code == 1
    assert "unauthorized" in err


async def test_run_with_a_taken_port_is_one_clear_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        owner = b64u_encode(bytes(SigningKey.generate().verify_key))
        code, _, err = await threshold(
            "init",
            "--dir",
            str(tmp_path / "gw"),
            f"--owner-pub={owner}",
            "--bind",
            f"127.0.0.1:{port}",
        )
        assert code == 0, err
        code, _, err = await threshold("run", "--config", str(tmp_path / "gw" / "threshold.toml"))
    assert code == 1
    assert "cannot_listen" in err
    assert "Traceback" not in err


async def test_run_with_a_bad_config_names_the_key(tmp_path: Path) -> None:
    owner = b64u_encode(bytes(SigningKey.generate().verify_key))
    code, _, err = await threshold("init", "--dir", str(tmp_path / "gw"), f"--owner-pub={owner}")
    assert code == 0, err
    config = tmp_path / "gw" / "threshold.toml"
    config.write_text(config.read_text().replace("max_body_bytes = 16384", "max_body_bytes = -1"))
    code, _, err = await threshold("run", "--config", str(config))
    assert code == 1
    assert "api.max_body_bytes" in err
    assert err.strip().count("\n") == 0, err
