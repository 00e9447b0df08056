"""``threshold lock``: find, pair and command a smart lock from the command line.

* ``threshold lock scan``: Nuki locks advertising nearby (those in pairing mode marked);
* ``threshold lock pair --name N [--address A]``: pair with a Nuki in pairing mode and store
  the pairing (mode 0600; it holds the shared key);
* ``threshold lock status|unlock|lock|unlatch``: one command, one JSON line of status;
* ``threshold lock switchbot-key --address A --key-id XX --store FILE``: keep a SwitchBot
  Lock's key id and encryption key (read from standard input, never from the command line)
  in FILE, mode 0600, for the gateway to import as the door's ``lock-<door>.json``.

Real hardware goes through the platform's bleak backend. ``--sim`` uses the virtual Nuki on
an in-process Bumble radio instead, through the same bleak code; its state (bolt, door,
authorizations) is kept in a file beside the store so separate commands see one lock, and
``pair --sim`` switches the virtual lock's pairing mode on, as holding the button does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ble.driver import LockStatus
from ble.errors import LockError, LockNotFound, LockNotPaired
from ble.link import BleakTransport
from ble.nuki.driver import (
    NukiDriver,
    NukiPairing,
    NukiTimeouts,
    pair_nuki,
    scan_nuki,
)
from gateway.app.config import BLE_ADDRESS_RE
from gateway.errors import UsageError
from groundwork.files import write_file

DEFAULT_STORE = Path(os.environ.get("THRESHOLD_LOCK_STORE", "~/.config/threshold/lock.json"))


def _store_path(args: argparse.Namespace) -> Path:
    return Path(args.store).expanduser()


def _sim_state_path(store: Path) -> Path:
    return store.with_name(store.stem + "-virtual-nuki.json")


def _load_pairing(store: Path) -> NukiPairing:
    if not store.exists():
        raise LockNotPaired(
            f"no lock is paired yet (no {store}); run 'threshold lock pair --name NAME' first"
        )
    try:
        data = json.loads(store.read_text())
        return NukiPairing.from_json(data["lock"])
    except (OSError, ValueError, KeyError, TypeError, LockError) as exc:
        raise UsageError(f"the lock store {store} is unreadable ({exc})") from None


def _save_pairing(store: Path, pairing: NukiPairing) -> None:
    store.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps({"version": 1, "lock": pairing.to_json()}, indent=1).encode()
    write_file(store, data, replace=True)


def _status_json(status: LockStatus) -> str:
    return json.dumps(
        {
            "lock": status.lock.value,
            "door": status.door.value,
            "battery_percent": status.battery_percent,
            "battery_critical": status.battery_critical,
            "read_at": status.read_at.isoformat(),
        }
    )


async def _with_transport(
    args: argparse.Namespace, work: Callable[[BleakTransport, Any], Awaitable[int]]
) -> int:
    """Run ``work`` with real Bluetooth, or with the virtual lock when ``--sim``."""
    if not args.sim:
        return await work(BleakTransport(), None)
    from ble.sim.session import VirtualNukiSession  # Bumble only when asked for

    session = await VirtualNukiSession.open(_sim_state_path(_store_path(args)))
    try:
        return await work(session.transport, session)
    finally:
        await session.close()


def _run_scan(args: argparse.Namespace) -> int:
    async def work(transport: BleakTransport, _sim: Any) -> int:
        found = await scan_nuki(transport, scan_s=args.timeout)
        for lock in found:
            print(
                json.dumps(
                    {
                        "address": lock.address,
                        "name": lock.name,
                        "pairing_mode": lock.pairing_mode,
                        "rssi": lock.rssi,
                    }
                )
            )
        if not found:
            raise LockNotFound("no Nuki lock is advertising nearby")
        return 0

    return asyncio.run(_with_transport(args, work))


def _run_pair(args: argparse.Namespace) -> int:
    if not args.name.strip():
        raise UsageError("--name must not be empty")

    async def work(transport: BleakTransport, sim: Any) -> int:
        address = args.address
        if sim is not None:
            # As holding the button does; the lock is then found the way a real one is, by
            # scanning for a Nuki advertising pairing mode (unless --address is given).
            await sim.peripheral.press_button_for_pairing()
        if address is None:
            candidates = [
                lock
                for lock in await scan_nuki(transport, scan_s=args.timeout)
                if lock.pairing_mode
            ]
            if not candidates:
                raise LockNotFound(
                    "no Nuki in pairing mode nearby: hold the lock's button for 5 seconds "
                    "until its ring lights up, then run this again"
                )
            if len(candidates) > 1:
                raise UsageError(
                    "several Nuki locks are in pairing mode; choose one with --address: "
                    + ", ".join(lock.address for lock in candidates)
                )
            address = candidates[0].address
        pairing = await pair_nuki(address, args.name, transport=transport)
        _save_pairing(_store_path(args), pairing)
        print(
            json.dumps(
                {
                    "paired": pairing.address,
                    "auth_id": pairing.auth_id,
                    "store": str(_store_path(args)),
                }
            )
        )
        return 0

    return asyncio.run(_with_transport(args, work))


def _run_command(args: argparse.Namespace) -> int:
    pairing = _load_pairing(_store_path(args))

    async def work(transport: BleakTransport, sim: Any) -> int:
        if sim is not None and pairing.address != sim.peripheral.address:
            raise LockNotPaired("the stored pairing is for a real lock; pair again with --sim")
        driver = NukiDriver(pairing, transport, NukiTimeouts(scan_s=args.timeout))
        try:
            operation = {
                "status": driver.status,
                "unlock": driver.unlock,
                "lock": driver.lock,
                "unlatch": driver.unlatch,
            }[args.lock_command]
            print(_status_json(await operation()))
        finally:
            await driver.close()
        return 0

    return asyncio.run(_with_transport(args, work))


def _run_switchbot_key(args: argparse.Namespace) -> int:
    from ble.switchbot.driver import SwitchBotCredentials

    # The key on the command line would land in the shell's history and in ps.
    line = sys.stdin.readline().strip()
    try:
        credentials = SwitchBotCredentials.from_json(
            {
                "address": args.address,
                "key_id": args.key_id,
                "encryption_key": line,
                "model": args.model,
            }
        )
    except LockError as exc:
        raise UsageError(
            f"{exc.message}; give the key id and key the SwitchBot account issued"
        ) from None
    if not BLE_ADDRESS_RE.fullmatch(credentials.address):
        raise UsageError(f"--address {args.address!r} is not a Bluetooth address")
    store = _store_path(args)
    store.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps({"version": 1, "lock": credentials.to_json()}, indent=1).encode()
    write_file(store, data, replace=True)
    print(
        json.dumps(
            {
                "stored": credentials.address,
                "key_id": f"{credentials.key_id:02x}",
                "model": credentials.model.value,
                "store": str(store),
            }
        )
    )
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sim", action="store_true", help="use the virtual Nuki lock (in-process Bumble radio)"
    )
    parser.add_argument(
        "--store",
        default=str(DEFAULT_STORE),
        help="pairing store (JSON, mode 0600; default %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        help="seconds to look for the lock (default %(default)s)",
    )


def register(sub: Any) -> None:
    parser = sub.add_parser("lock", help="find, pair and command the smart lock")
    commands = parser.add_subparsers(
        dest="lock_command", metavar="COMMAND", parser_class=type(parser)
    )
    commands.required = True
    scan = commands.add_parser("scan", help="list Nuki locks advertising nearby")
    _common(scan)
    scan.set_defaults(handler=_run_scan)
    pair = commands.add_parser("pair", help="pair with a Nuki in pairing mode")
    pair.add_argument("--name", required=True, help="how the lock will list this gateway")
    pair.add_argument("--address", help="the lock's Bluetooth address (default: scan)")
    _common(pair)
    pair.set_defaults(handler=_run_pair)
    for name, text in (
        ("status", "read the lock's state"),
        ("unlock", "unlock (the bolt turns; the latch stays)"),
        ("lock", "lock"),
        ("unlatch", "unlock and pull the latch: the door opens"),
    ):
        command = commands.add_parser(name, help=text)
        _common(command)
        command.set_defaults(handler=_run_command)
    key = commands.add_parser(
        "switchbot-key",
        help="keep a SwitchBot Lock's key id and encryption key (the key read from stdin)",
    )
    key.add_argument("--address", required=True, help="the lock's Bluetooth address")
    key.add_argument("--key-id", required=True, help="two hex digits, from the SwitchBot account")
    key.add_argument(
        "--model",
        choices=["lock", "lock-pro"],
        default="lock",
        help="the original SwitchBot Lock or the Lock Pro (default %(default)s)",
    )
    key.add_argument(
        "--store",
        required=True,
        help="where to keep it (mode 0600): the gateway's lock-<door>.json",
    )
    key.set_defaults(handler=_run_switchbot_key)
