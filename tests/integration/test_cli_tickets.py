"""The ticket CLI as a black box: keys, certify, issue, inspect, verify, exit codes."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.cli import run_cli as run

NOW = "2026-06-03T10:00:00Z"


def ok(*argv: str) -> str:
    result = run(*argv)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def one_line_usage_error(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("cli")
    keys = {name: str(d / f"{name}.key") for name in ("owner", "issuer", "holder")}
    pubs = {name: ok("keys", "new", "--out", path) for name, path in keys.items()}
    cert = ok(
        "issuer",
        "certify",
        "--owner-key",
        keys["owner"],
        "--issuer-pub",
        pubs["issuer"],
        "--gateway",
        "gw-1",
        "--doors",
        "front,back",
        "--purposes",
        "delivery",
        "--not-before",
        "2026-06-01T00:00:00Z",
        "--not-after",
        "2026-07-01T00:00:00Z",
        "--hours",
        "08:00-20:00",
        "--max-ticket-hours",
        "8",
        "--name",
        "ACME",
    )
    ticket = ok(
        "ticket",
        "issue",
        "--key",
        keys["issuer"],
        "--cert",
        cert,
        "--gateway",
        "gw-1",
        "--door",
        "front",
        "--purpose",
        "delivery",
        "--holder-pub",
        pubs["holder"],
        "--not-before",
        "2026-06-03T09:00:00Z",
        "--not-after",
        "2026-06-03T12:00:00Z",
        "--package-code",
        "1Z999",
        "--subject",
        "Alice",
        "--id",
        "t-cli-1",
    )
    return {
        "dir": str(d),
        **keys,
        **{f"{k}_pub": v for k, v in pubs.items()},
        "cert": cert,
        "ticket": ticket,
    }


def test_key_file_is_private_and_show_matches(world: dict[str, str]) -> None:
    mode = stat.S_IMODE(os.stat(world["owner"]).st_mode)
    assert mode == 0o600
    assert ok("keys", "show", world["owner"]) == world["owner_pub"]
    # Never overwritten.
    one_line_usage_error(run("keys", "new", "--out", world["owner"]))


def test_verify_with_holder_key_allows(world: dict[str, str]) -> None:
    result = run(
        "ticket",
        "verify",
        world["ticket"],
        "--owner-pub",
        world["owner_pub"],
        "--gateway",
        "gw-1",
        "--door",
        "front",
        "--at",
        NOW,
        "--tz",
        "Europe/London",
        "--holder-key",
        world["holder"],
    )
    assert result.returncode == 0, result.stdout + result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["allowed"]
    assert verdict["reason"] == "ok"
    assert verdict["proof_checked"]
    assert verdict["issuer"] == "ACME"


def test_verify_without_holder_key_says_proof_unchecked(world: dict[str, str]) -> None:
    result = run(
        "ticket",
        "verify",
        world["ticket"],
        "--owner-pub",
        world["owner_pub"],
        "--gateway",
        "gw-1",
        "--door",
        "front",
        "--at",
        NOW,
    )
    assert result.returncode == 0
    verdict = json.loads(result.stdout)
    assert verdict["proof_checked"] is False
    assert "not checked" in verdict["note"]


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        (["--door", "back"], "wrong_door"),
        (["--gateway", "gw-2"], "wrong_gateway"),
        (["--at", "2026-06-03T15:00:00Z"], "expired"),
        (["--at", "2026-06-03T08:00:00Z"], "not_yet_valid"),
        (["--uses-so-far", "1"], "uses_exhausted"),
    ],
)
def test_deny_prints_json_reason_and_exits_1(
    world: dict[str, str], extra: list[str], reason: str
) -> None:
    args = {"--gateway": "gw-1", "--door": "front", "--at": NOW}
    flags = [x for k, v in args.items() if k not in extra for x in (k, v)]
    result = run(
        "ticket",
        "verify",
        world["ticket"],
        "--owner-pub",
        world["owner_pub"],
        *flags,
        *extra,
        "--holder-key",
        world["holder"],
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert json.loads(result.stdout)["reason"] == reason


def test_wrong_holder_key_is_bad_proof(world: dict[str, str]) -> None:
    result = run(
        "ticket",
        "verify",
        world["ticket"],
        "--owner-pub",
        world["owner_pub"],
        "--gateway",
        "gw-1",
        "--door",
        "front",
        "--at",
        NOW,
        "--holder-key",
        world["issuer"],
    )
    assert result.returncode == 1
    assert json.loads(result.stdout)["reason"] == "bad_proof"


def test_wrong_owner_is_unknown_key(world: dict[str, str]) -> None:
    result = run(
        "ticket",
        "verify",
        world["ticket"],
        "--owner-pub",
        world["holder_pub"],
        "--gateway",
        "gw-1",
        "--door",
        "front",
        "--at",
        NOW,
    )
    assert result.returncode == 1
    assert json.loads(result.stdout)["reason"] == "unknown_key"


def test_revocations_sign_and_verify(world: dict[str, str]) -> None:
    rl = ok(
        "revocations",
        "sign",
        "--owner-key",
        world["owner"],
        "--gateway",
        "gw-1",
        "--jti",
        "t-cli-1",
    )
    result = run(
        "ticket",
        "verify",
        world["ticket"],
        "--owner-pub",
        world["owner_pub"],
        "--gateway",
        "gw-1",
        "--door",
        "front",
        "--at",
        NOW,
        "--revocations",
        rl,
    )
    assert result.returncode == 1
    assert json.loads(result.stdout)["reason"] == "revoked"


def test_inspect_is_marked_unverified(world: dict[str, str]) -> None:
    shown = json.loads(ok("ticket", "inspect", world["ticket"]))
    assert shown["verified"] is False
    assert shown["claims"]["jti"] == "t-cli-1"
    assert shown["claims"]["delivery"]["packages"] == [hashlib.sha256(b"1Z999").hexdigest()]
    assert shown["footer"]["cert"]["sub"] == "ACME"


@pytest.mark.parametrize(
    "mangle",
    [lambda t: t[:-7], lambda t: t[:25], lambda t: "v4.public.!!!", lambda t: t + "$"],
    ids=["truncated", "header-only", "not-base64url", "trailing-junk"],
)
def test_verify_of_a_malformed_token_is_a_deny(
    world: dict[str, str], mangle: Callable[[str], str]
) -> None:
    # The gateway refuses such a token with bad_token; the CLI's verdict must agree (exit 1,
    # a deny, not exit 2: nothing was wrong with how the command was used).
    result = run(
        "ticket",
        "verify",
        mangle(world["ticket"]),
        "--owner-pub",
        world["owner_pub"],
        "--gateway",
        "gw-1",
        "--door",
        "front",
    )
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["allowed"] is False
    assert verdict["reason"] == "bad_token"


def test_usage_errors_are_one_line_exit_2(world: dict[str, str], tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.key"
    garbage.write_text("not a key at all!\n")
    one_line_usage_error(run("keys", "show", str(garbage)))
    one_line_usage_error(run("keys", "show", str(tmp_path / "missing.key")))
    one_line_usage_error(run("ticket", "inspect", world["ticket"][:25]))
    one_line_usage_error(run("ticket", "verify", world["ticket"], "--bogus-flag"))
    one_line_usage_error(
        run(
            "ticket",
            "verify",
            world["ticket"],
            "--owner-pub",
            "AAAA",
            "--gateway",
            "gw-1",
            "--door",
            "front",
        )
    )
    one_line_usage_error(
        run(
            "ticket",
            "verify",
            world["ticket"],
            "--owner-pub",
            world["owner_pub"],
            "--gateway",
            "gw-1",
            "--door",
            "front",
            "--tz",
            "Mars/Olympus",
        )
    )
    one_line_usage_error(
        run(
            "ticket",
            "issue",
            "--key",
            str(garbage),
            "--gateway",
            "gw-1",
            "--door",
            "front",
            "--purpose",
            "delivery",
            "--holder-pub",
            world["holder_pub"],
            "--not-before",
            NOW,
            "--not-after",
            "2026-06-03T11:00:00Z",
        )
    )
    one_line_usage_error(
        run(
            "ticket",
            "issue",
            "--key",
            world["owner"],
            "--gateway",
            "gw-1",
            "--door",
            "front",
            "--purpose",
            "delivery",
            "--holder-pub",
            world["holder_pub"],
            "--not-before",
            NOW,
            "--not-after",
            "2026-06-30T11:00:00Z",  # beyond 7 days
        )
    )
    one_line_usage_error(
        run(
            "issuer",
            "certify",
            "--owner-key",
            world["owner"],
            "--issuer-pub",
            world["issuer_pub"],
            "--gateway",
            "gw-1",
            "--hours",
            "8-20",
        )
    )


def test_owner_ticket_with_schedule(world: dict[str, str]) -> None:
    ticket = ok(
        "ticket",
        "issue",
        "--key",
        world["owner"],
        "--gateway",
        "gw-1",
        "--door",
        "front",
        "--purpose",
        "service",
        "--holder-pub",
        world["holder_pub"],
        "--not-before",
        "2026-06-01T00:00:00Z",
        "--not-after",
        "2026-06-07T00:00:00Z",
        "--schedule",
        "wed 09:00-12:00",
        "--uses",
        "3",
        "--subject",
        "Cleaner",
    )
    base = [
        "ticket",
        "verify",
        ticket,
        "--owner-pub",
        world["owner_pub"],
        "--gateway",
        "gw-1",
        "--door",
        "front",
        "--tz",
        "Europe/London",
        "--holder-key",
        world["holder"],
    ]
    assert run(*base, "--at", NOW).returncode == 0  # Wed 11:00 BST
    late = run(*base, "--at", "2026-06-03T12:30:00Z")
    assert late.returncode == 1
    assert json.loads(late.stdout)["reason"] == "outside_schedule"


def test_revocations_sign_keeps_state_and_refuses_bad_state(
    world: dict[str, str], tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    base = ("revocations", "sign", "--owner-key", world["owner"], "--state", str(state))
    ok(*base, "--gateway", "gw-1", "--subject", "ex-cleaner")
    ok(*base, "--gateway", "gw-2", "--jti", "t-cabin")
    saved = json.loads(state.read_text())
    assert saved["seq"] == 2
    assert set(saved["revoked"]) == {"gw-1", "gw-2"}
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600
    one_line_usage_error(run(*base, "--gateway", "gw-1", "--seq", "2"))
    one_line_usage_error(run(*base, "--gateway", "gw-1", "--until", "2020-01-01T00:00:00Z"))
    state.write_text('{"format": 1, "seq": "x", "revoked": {}}')
    one_line_usage_error(run(*base, "--gateway", "gw-1"))
    state.write_text("not json")
    one_line_usage_error(run(*base, "--gateway", "gw-1"))
