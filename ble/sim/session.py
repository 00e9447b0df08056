"""A virtual Nuki lock on its own in-process radio, whose physical state (bolt, door,
battery, authorizations, key) lives in a file between runs: what ``threshold lock ...
--sim`` uses, so that separate commands see the same lock.

The file holds the lock's private key and the shared keys of its authorizations, so it is
written with mode 0600, whole, then renamed into place.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from ble.bumble_backend import BumbleClient, BumbleScanner, VirtualRadio
from ble.errors import LockError
from ble.link import BleakTransport
from ble.sim.lock import VirtualNukiLock
from ble.sim.peripheral import DEFAULT_ADDRESS, VirtualNukiPeripheral
from groundwork.files import write_file


class VirtualLockStateError(LockError):
    code = "virtual_lock_state_unreadable"


def save_lock_state(path: Path, lock: VirtualNukiLock) -> None:
    """Keep the lock's state (its keys too: mode 0600), replaced whole, so that a SIGKILL
    leaves the old state or the new one, as a real lock's memory would."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(path, json.dumps(lock.to_dict(), indent=1).encode(), replace=True)


def load_lock_state(path: Path, **kwargs: Any) -> VirtualNukiLock:
    """The lock saved at ``path``, or a new one (random key) when there is no file yet."""
    if not path.exists():
        return VirtualNukiLock(**kwargs)
    try:
        return VirtualNukiLock.from_dict(json.loads(path.read_text()), **kwargs)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise VirtualLockStateError(
            f"the virtual lock's state file {path} is unreadable ({exc}); delete it to start "
            "with a new virtual lock"
        ) from exc


class VirtualNukiSession:
    """One run of the virtual lock: radio, peripheral, and its state file."""

    def __init__(
        self, radio: VirtualRadio, peripheral: VirtualNukiPeripheral, state_path: Path
    ) -> None:
        self.radio = radio
        self.peripheral = peripheral
        self.lock = peripheral.lock
        self.state_path = state_path

    @classmethod
    async def open(
        cls, state_path: Path, address: str = DEFAULT_ADDRESS, motor_seconds: float = 0.3
    ) -> VirtualNukiSession:
        lock = load_lock_state(state_path, motor_seconds=motor_seconds)
        radio = VirtualRadio()
        await radio.start()
        try:
            peripheral = await VirtualNukiPeripheral.join(radio, lock, address)
        except BaseException:
            await radio.close()
            raise
        session = cls(radio, peripheral, state_path)
        session.save()
        return session

    @property
    def transport(self) -> BleakTransport:
        return BleakTransport(
            scanner_backend=BumbleScanner,
            client_backend=BumbleClient,
            options={"bumble_adapter": self.radio.adapter},
        )

    def save(self) -> None:
        save_lock_state(self.state_path, self.lock)

    async def close(self) -> None:
        self.save()
        with contextlib.suppress(Exception):
            await self.peripheral.close()
        with contextlib.suppress(Exception):
            await self.radio.close()
