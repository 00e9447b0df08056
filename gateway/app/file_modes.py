"""Secret-bearing files must be private: every one is checked at start, before it is read.

The gateway's secrets on disk: its key (audit checkpoints), the database and its SQLite
``-wal``/``-shm`` companions (the locks' shared keys, the owner's history), its outage
journal (``<database>.outage``: visits not yet in the database), the household issuer's key
(``household-issuer.key``: it signs visitors' tickets), the TLS key, the remote name's key
and certificate (``remote.pem``) and ACME account key (``remote-acme-account.key``), the
VAPID key (``vapid.key``: pushes to the owner's devices are signed with it), a real lock's
pairing or key file (``lock-<door>.json``: a Nuki's shared key, a SwitchBot Lock's
encryption key) and a virtual lock's state
(``sim-lock-<door>.json``, which holds its authorizations). Any group or other permission
bit on one of them refuses the start with one line naming every such file and the
``chmod 600`` that fixes it.

Refuse, not fix: a file found readable may already have been copied, and only the owner can
judge that (and re-pair the lock or re-initialise the gateway); a gateway that quietly
tightened the mode would hide it in a log nobody reads. It also never changes a mode an
administrator set on purpose. ``gateway.key`` keeps its own check in
:func:`gateway.app.identity.load_signing_key`, for the other commands that read keys.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path

from ble.sim.vendor import sim_state_file
from gateway.app.config import GatewayConfig
from gateway.app.locks import pairing_file
from gateway.errors import ConfigError
from gateway.owner.household import key_path as household_key_path
from gateway.remote.certificate import ACCOUNT_KEY_FILE, CERTIFICATE_FILE
from store.outage_journal import journal_path


class SecretFileExposed(ConfigError):
    code = "secret_file_exposed"


@dataclass(frozen=True, slots=True)
class SecretFile:
    path: Path
    holds: str


def secret_files(config: GatewayConfig) -> tuple[SecretFile, ...]:
    """Every file of this gateway that holds a secret (present or not)."""
    db = config.database
    files = [
        SecretFile(config.key_file, "the gateway key"),
        SecretFile(db, "the locks' shared keys"),
        SecretFile(db.with_name(db.name + "-wal"), "recent database pages"),
        SecretFile(db.with_name(db.name + "-shm"), "the database's shared memory"),
        SecretFile(journal_path(db), "visits the database could not record yet"),
        SecretFile(household_key_path(config.directory), "the household issuer's key"),
    ]
    if config.api.tls:
        files.append(SecretFile(config.api.tls_key, "the TLS key"))
    if config.remote.enabled:
        files.append(SecretFile(config.directory / CERTIFICATE_FILE, "the remote name's TLS key"))
        files.append(SecretFile(config.directory / ACCOUNT_KEY_FILE, "the ACME account key"))
    if config.push.enabled:
        files.append(SecretFile(config.push.key_file, "the Web Push (VAPID) key"))
    if config.mqtt.password_file is not None:
        files.append(SecretFile(config.mqtt.password_file, "the MQTT broker password"))
    for door in config.doors:
        if door.lock in ("sim", "sim-switchbot"):
            files.append(SecretFile(sim_state_file(config.directory, door.name), "a lock's keys"))
        else:
            files.append(SecretFile(pairing_file(config, door.name), "a lock's shared key"))
    return tuple(files)


def refuse_exposed(files: tuple[SecretFile, ...]) -> None:
    """Raise :class:`SecretFileExposed` when any existing file is open to group or others."""
    exposed: list[tuple[SecretFile, int]] = []
    for secret in files:
        try:
            mode = stat.S_IMODE(secret.path.stat().st_mode)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise SecretFileExposed(
                f"{secret.path}: cannot check its mode ({exc.strerror})"
            ) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            exposed.append((secret, mode))
    if exposed:
        listed = ", ".join(f"{s.path} (mode {m:o}, holds {s.holds})" for s, m in exposed)
        paths = " ".join(str(s.path) for s, _ in exposed)
        raise SecretFileExposed(
            f"refusing to start: readable by others: {listed}; run chmod 600 {paths}"
        )
