"""``threshold remote status``: remote reach at a glance (docs/remote.md).

Reads the configuration, the remote certificate (``remote.pem``: names, validity, whether
renewal is due) and the tunnel's last status (``remote-status.json``, written by the running
gateway); contacts nobody. One JSON object on stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

from gateway.errors import UsageError


def _status(args: argparse.Namespace) -> int:
    from gateway.app.config import load
    from gateway.remote.certificate import CERTIFICATE_FILE, read_certificate
    from gateway.remote.schedule import renewal_due
    from gateway.remote.tunnel import REMOTE_STATUS_FILE

    path = Path(args.config)
    if not path.is_file():
        raise UsageError(f"--config {path}: no such file")
    config = load(path)
    remote = config.remote
    out: dict[str, Any] = {"enabled": remote.enabled}
    if remote.enabled:
        out["host_name"] = remote.host_name
        out["origin"] = remote.origin
        out["lan_origin"] = remote.lan_origin
        info = read_certificate(config.directory / CERTIFICATE_FILE)
        if info is None:
            out["certificate"] = None
        else:
            now = dt.datetime.now(dt.UTC)
            out["certificate"] = {
                "names": list(info.names),
                "not_after": info.not_after.isoformat(),
                "renewal_due": renewal_due(
                    info.not_before, info.not_after, now, remote.renew_fraction
                ),
            }
        try:
            out["tunnel"] = json.loads((config.directory / REMOTE_STATUS_FILE).read_text())
        except (OSError, ValueError):
            out["tunnel"] = None
    print(json.dumps(out, indent=2))
    return 0


def register(sub: Any) -> None:
    remote = sub.add_parser("remote", help="reach from anywhere through the relay")
    commands = remote.add_subparsers(dest="remote_command", required=True)
    status = commands.add_parser(
        "status", help="the remote name, its certificate and the tunnel's last state"
    )
    status.add_argument("--config", required=True, help="path to threshold.toml")
    status.set_defaults(handler=_status)
