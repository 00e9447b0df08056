"""A real Mosquitto broker for the Home Assistant tests (Debian's ``mosquitto`` package).

Started on 127.0.0.1 with a generated configuration: a plain listener that allows anonymous
clients (as many home brokers do), and a TLS listener (a certificate made here, trusted by
the test through its file) that requires a user from a generated password file. Nothing is
persisted; the broker logs to a file in the test's directory and is stopped by its pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import getpass
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from gateway.app.tls import host_names, make_certificate, new_key_pem

INSTALL_HINT = (
    "Mosquitto is missing: the Home Assistant tests run a real broker. "
    "Install it with ./scripts/setup.sh --test (Debian package 'mosquitto')."
)
USER = "threshold"
PASSWORD = "correct horse battery staple"
START_S = 10.0


def mosquitto_binary(name: str = "mosquitto") -> str:
    found = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/usr/bin")
    if found is None:
        raise RuntimeError(INSTALL_HINT)
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Broker:
    directory: Path
    port: int
    tls_port: int
    ca_file: Path
    password_file: Path
    log_file: Path
    process: subprocess.Popen[bytes] | None = None

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    async def start(self) -> None:
        binary = mosquitto_binary()
        self.process = subprocess.Popen(  # noqa: ASYNC220 (returns at once)
            [binary, "-c", str(self.directory / "mosquitto.conf")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        async with asyncio.timeout(START_S):
            for port in (self.port, self.tls_port):
                while True:
                    if self.process.poll() is not None:
                        raise RuntimeError(f"mosquitto exited at start:\n{self.log()}")
                    try:
                        _, writer = await asyncio.open_connection("127.0.0.1", port)
                    except OSError:
                        await asyncio.sleep(0.05)  # the broker is still binding
                        continue
                    writer.close()
                    await writer.wait_closed()
                    break

    async def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.to_thread(process.wait), START_S)
        except TimeoutError:
            process.kill()
            await asyncio.to_thread(process.wait)


def write_broker_files(directory: Path) -> Broker:
    directory.mkdir(parents=True, exist_ok=True)
    key = new_key_pem()
    cert = make_certificate(
        key, "mqtt-test", host_names("mqtt-test", "127.0.0.1"), dt.datetime.now(dt.UTC)
    )
    (directory / "broker.key").write_bytes(key)
    (directory / "broker.key").chmod(0o600)
    ca_file = directory / "broker.pem"
    ca_file.write_bytes(cert)
    password_file = directory / "passwords"
    password_file.write_text(f"{USER}:{PASSWORD}\n")
    password_file.chmod(0o600)
    # mosquitto_passwd hashes the file in place (it must never hold plain text for the broker).
    subprocess.run(
        [mosquitto_binary("mosquitto_passwd"), "-U", str(password_file)],
        check=True,
        capture_output=True,
        timeout=START_S,
    )
    broker = Broker(
        directory=directory,
        port=_free_port(),
        tls_port=_free_port(),
        ca_file=ca_file,
        password_file=password_file,
        log_file=directory / "mosquitto.log",
    )
    (directory / "mosquitto.conf").write_text(
        "\n".join(
            [
                "per_listener_settings true",
                "persistence false",
                f"log_dest file {broker.log_file}",
                "log_type all",
                # As root, the broker would otherwise drop to a 'mosquitto' user that cannot
                # read the test's files.
                f"user {getpass.getuser()}",
                f"listener {broker.port} 127.0.0.1",
                "allow_anonymous true",
                f"listener {broker.tls_port} 127.0.0.1",
                f"certfile {ca_file}",
                f"keyfile {directory / 'broker.key'}",
                "allow_anonymous false",
                f"password_file {password_file}",
                "",
            ]
        )
    )
    return broker


@contextlib.asynccontextmanager
async def running_broker(directory: Path) -> AsyncIterator[Broker]:
    broker = write_broker_files(directory)
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()
