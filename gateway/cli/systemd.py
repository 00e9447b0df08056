"""``threshold service install``: the hardened systemd units for the gateway and the relay
(docs/operations.md, "The service")."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from gateway.errors import UsageError


def _install(args: argparse.Namespace) -> int:
    from gateway.app.systemd_units import UnitSettings, gateway_unit, relay_unit, sysusers
    from groundwork.files import write_file

    executable = Path(args.executable or shutil.which("threshold") or sys.argv[0]).resolve()
    if not executable.is_file():
        raise UsageError(f"--executable {executable}: no such file")
    docs = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
    settings = UnitSettings(
        executable=executable,
        watchdog_s=args.watchdog_s,
        relay_bind=args.relay_bind,
        documentation=docs.as_uri() if docs.is_file() else None,
    )
    unit_dir = Path(args.unit_dir)
    sysusers_dir = Path(args.sysusers_dir)
    files = {unit_dir / "threshold.service": gateway_unit(settings)}
    if args.relay:
        files[unit_dir / "threshold-relay.service"] = relay_unit(settings)
    files[sysusers_dir / "threshold.conf"] = sysusers(settings)
    for path in files:
        if path.exists() and not args.replace:
            raise UsageError(f"{path} exists (--replace to write it again)")
    for path, text in files.items():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_file(path, text.encode(), replace=args.replace, mode=0o644)
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror} (run as root?)") from None
    print(
        json.dumps(
            {
                "written": [str(p) for p in files],
                "next": [
                    f"systemd-sysusers {sysusers_dir / 'threshold.conf'}",
                    f"threshold init --dir /var/lib/{settings.state_directory} ...  "
                    f"(then chown -R {settings.user}: /var/lib/{settings.state_directory})",
                    "systemctl daemon-reload && systemctl enable --now threshold",
                ],
            },
            indent=2,
        )
    )
    return 0


def register(sub: Any) -> None:
    service = sub.add_parser("service", help="install Threshold as a systemd service")
    ssub = service.add_subparsers(dest="service_command", metavar="COMMAND")
    ssub.required = True
    install = ssub.add_parser(
        "install",
        help="write the hardened systemd units and the sysusers.d entry",
        description="Writes threshold.service (and threshold-relay.service with --relay).",
    )
    install.add_argument("--unit-dir", default="/etc/systemd/system")
    install.add_argument("--sysusers-dir", default="/etc/sysusers.d")
    install.add_argument("--executable", help="the threshold command (default: this one)")
    install.add_argument("--relay", action="store_true", help="also the relay's unit")
    install.add_argument("--relay-bind", default="127.0.0.1:8787", help="the relay's HOST:PORT")
    install.add_argument("--watchdog-s", type=int, default=30, help="WatchdogSec (default 30)")
    install.add_argument("--replace", action="store_true", help="overwrite existing files")
    install.set_defaults(handler=_install)
