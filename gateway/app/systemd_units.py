"""The systemd units ``threshold service install`` writes: the gateway's and the relay's.

docs/operations.md, "The service". Pure: text from settings; the command writes the files.

Each service runs as its own system user (a ``sysusers.d`` line creates it), with its state
in ``/var/lib/<name>`` (``StateDirectory=``, mode 0700) and nothing else of the file system
writable. The sandbox is as tight as the gateway allows:

* no capabilities at all: the LAN API listens above 1024, and bleak reaches BlueZ over
  D-Bus (an AF_UNIX socket), so even a Bluetooth lock needs no ``CAP_NET_ADMIN`` or
  ``AF_BLUETOOTH``;
* address families: ``AF_INET``/``AF_INET6`` (the API, the camera, the relay), ``AF_UNIX``
  (D-Bus, the notify socket) and ``AF_NETLINK`` (the host's addresses for mDNS and the TLS
  certificate's names);
* ``Type=notify`` with a watchdog (:mod:`gateway.app.systemd_notify`), ``Restart=on-failure``.

``PrivateUsers=`` is left off for the gateway: BlueZ's D-Bus policy checks the caller's user,
which a private user namespace would hide. The relay, with no Bluetooth, has it.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

#: Sandboxing common to both units (systemd.exec(5)); each line was checked against the
#: gateway's needs in tests/integration/test_service_unit.py.
_HARDENING = """\
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
ProcSubset=pid
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RemoveIPC=yes
UMask=0077
CapabilityBoundingSet=
AmbientCapabilities=
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources @mount @obsolete @debug @cpu-emulation
SystemCallErrorNumber=EPERM
DevicePolicy=closed
"""


@dataclass(frozen=True, slots=True)
class UnitSettings:
    """What the units need to know about this machine."""

    executable: Path
    user: str = "threshold"
    state_directory: str = "threshold"
    relay_user: str = "threshold-relay"
    relay_state_directory: str = "threshold-relay"
    relay_bind: str = "127.0.0.1:8787"
    watchdog_s: int = 30
    #: ``Documentation=`` URL (a ``file:`` URL of docs/operations.md in a checkout), if any.
    documentation: str | None = None

    @property
    def config(self) -> Path:
        return Path("/var/lib") / self.state_directory / "threshold.toml"


def _documentation(s: UnitSettings) -> str:
    return "" if s.documentation is None else f"Documentation={s.documentation}\n"


def gateway_unit(s: UnitSettings) -> str:
    command = shlex.join([str(s.executable), "run", "--config", str(s.config)])
    return f"""\
[Unit]
Description=Threshold home access gateway
{_documentation(s)}Wants=network-online.target
After=network-online.target bluetooth.target
StartLimitIntervalSec=300
StartLimitBurst=10

[Service]
Type=notify
NotifyAccess=main
ExecStart={command}
User={s.user}
Group={s.user}
StateDirectory={s.state_directory}
StateDirectoryMode=0700
WorkingDirectory=/var/lib/{s.state_directory}
Restart=on-failure
RestartSec=5s
WatchdogSec={s.watchdog_s}s
TimeoutStartSec=120s
TimeoutStopSec=30s
Environment=PYTHONUNBUFFERED=1 THRESHOLD_LOG_FORMAT=json
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK
{_HARDENING}
[Install]
WantedBy=multi-user.target
"""


def relay_unit(s: UnitSettings) -> str:
    command = shlex.join(
        [
            str(s.executable),
            "cloud",
            "run",
            "--dir",
            f"/var/lib/{s.relay_state_directory}",
            "--bind",
            s.relay_bind,
        ]
    )
    return f"""\
[Unit]
Description=Threshold reference relay
{_documentation(s)}Wants=network-online.target
After=network-online.target

[Service]
Type=exec
ExecStart={command}
User={s.relay_user}
Group={s.relay_user}
StateDirectory={s.relay_state_directory}
StateDirectoryMode=0700
Restart=on-failure
RestartSec=5s
TimeoutStopSec=30s
PrivateUsers=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
{_HARDENING}
[Install]
WantedBy=multi-user.target
"""


def sysusers(s: UnitSettings) -> str:
    """A sysusers.d(5) file creating both system users (``systemd-sysusers`` applies it)."""
    return (
        f'u {s.user} - "Threshold home access gateway" /var/lib/{s.state_directory}\n'
        f'u {s.relay_user} - "Threshold reference relay" /var/lib/{s.relay_state_directory}\n'
    )
