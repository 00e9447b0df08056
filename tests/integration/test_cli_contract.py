"""The CLI's error contract: wrong flags are one line and exit 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import run_cli as run


def test_unknown_command_is_one_line_usage_error() -> None:
    result = run("no-such-command")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") <= 2


def test_help_lists_groups() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert "version" in result.stdout


def _dash_key() -> str:
    """An Ed25519 public key whose base64url form starts with '-' (one key in 64 does)."""
    import nacl.signing

    from gateway.trust.paseto import b64encode

    while True:
        pub = b64encode(bytes(nacl.signing.SigningKey.generate().verify_key))
        if pub.startswith("-"):
            return pub


def test_a_key_that_starts_with_a_dash_is_a_value_not_an_option(tmp_path: Path) -> None:
    # Regression: `--issuer-pub -Abc...` failed with "expected one argument" one run in 64.
    owner_key = tmp_path / "owner.key"
    assert run("keys", "new", "--out", str(owner_key)).returncode == 0
    dash = _dash_key()
    result = run(
        "issuer",
        "certify",
        "--owner-key",
        str(owner_key),
        "--issuer-pub",
        dash,
        "--gateway",
        "gw-1",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("v4.public.")


def test_dashed_values_are_joined_only_after_options_that_take_a_value() -> None:
    from gateway.cli import _attach_dashed_values, build_parser

    parser = build_parser()
    argv = ["ticket", "verify", "TOKEN", "--owner-pub", "-abc", "--gateway", "gw", "--door", "d"]
    assert _attach_dashed_values(argv, parser) == [
        "ticket",
        "verify",
        "TOKEN",
        "--owner-pub=-abc",
        "--gateway",
        "gw",
        "--door",
        "d",
    ]
    # A real option after a value-taking option stays an option, so argparse still reports
    # the missing value instead of swallowing the flag.
    assert _attach_dashed_values(["issuer", "certify", "--issuer-pub", "--gateway"], parser) == [
        "issuer",
        "certify",
        "--issuer-pub",
        "--gateway",
    ]
    assert run("issuer", "certify", "--issuer-pub", "--gateway").returncode == 2
