"""Pebble (Let's Encrypt's test ACME server) and its challenge test server on loopback.

``pebble-challtestsrv`` is the DNS: its management API takes the relay's TXT records
(``cloud.dns_publisher.ChallengeTestServer``) and its DNS-01 server answers Pebble's
validation queries (``pebble -dnsserver``). Both come from Debian's ``pebble`` package;
a test that needs them fails with the install hint when they are missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from tests.support.remote import LoopbackCa

INSTALL_HINT = (
    "Pebble is not installed: run ./scripts/setup.sh --test (Debian package 'pebble', which"
    " ships pebble and pebble-challtestsrv)"
)
START_S = 20.0


def _binary(name: str) -> str:
    found = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/bin")
    if found is None:
        raise RuntimeError(INSTALL_HINT)
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _text(path: Path) -> str:
    return path.read_text(errors="replace")


@dataclass
class Pebble:
    directory_url: str
    management_url: str
    challenge_dns_url: str
    ca_file: Path
    processes: tuple[subprocess.Popen[bytes], ...]
    tls: ssl.SSLContext

    async def root_pem(self) -> str:
        """Pebble's root (it makes a new one each start)."""
        return await self._management("/roots/0")

    async def intermediate_pem(self) -> str:
        """Pebble's issuing intermediate (new each start too)."""
        return await self._management("/intermediates/0")

    async def _management(self, path: str) -> str:
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.management_url + path, ssl=self.tls) as response,
        ):
            assert response.status == 200
            return await response.text()


async def _wait_for(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    async with asyncio.timeout(START_S):
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args} exited at start:\n{_text(log)}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)  # still binding
                continue
            writer.close()
            await writer.wait_closed()
            return


def _write_config(directory: Path) -> tuple[tuple[int, int, int, int], Path]:
    directory.mkdir(parents=True, exist_ok=True)
    ca = LoopbackCa.new()
    cert, key = ca.issue("localhost", directory)
    ca_file = ca.ca_file(directory)
    acme, management, dns, challenge_api = (_free_port() for _ in range(4))
    (directory / "pebble.json").write_text(
        json.dumps(
            {
                "pebble": {
                    "listenAddress": f"127.0.0.1:{acme}",
                    "managementListenAddress": f"127.0.0.1:{management}",
                    "certificate": str(cert),
                    "privateKey": str(key),
                    "httpPort": _free_port(),
                    "tlsPort": _free_port(),
                    "ocspResponderURL": "",
                    "externalAccountBindingRequired": False,
                }
            }
        )
    )
    return (acme, management, dns, challenge_api), ca_file


@asynccontextmanager
async def running_pebble(directory: Path) -> AsyncIterator[Pebble]:
    """pebble-challtestsrv and pebble on free loopback ports; both stopped at the end."""
    pebble_bin, challtest_bin = _binary("pebble"), _binary("pebble-challtestsrv")
    ports, ca_file = _write_config(directory)
    acme, management, dns, challenge_api = ports
    # No reused authorizations: every order is validated through the relay's DNS record.
    env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0", PEBBLE_AUTHZREUSE="0")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        dns_log = directory / "challtestsrv.log"
        with dns_log.open("wb") as out:
            processes.append(
                subprocess.Popen(  # noqa: ASYNC220 (returns at once)
                    [
                        challtest_bin,
                        "-management",
                        f"127.0.0.1:{challenge_api}",
                        "-dns01",
                        f"127.0.0.1:{dns}",
                        "-http01",
                        "",
                        "-https01",
                        "",
                        "-tlsalpn01",
                        "",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        await _wait_for(processes[-1], challenge_api, dns_log)
        pebble_log = directory / "pebble.log"
        with pebble_log.open("wb") as out:
            processes.append(
                subprocess.Popen(  # noqa: ASYNC220 (returns at once)
                    [
                        pebble_bin,
                        "-config",
                        str(directory / "pebble.json"),
                        "-dnsserver",
                        f"127.0.0.1:{dns}",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=directory,
                )
            )
        await _wait_for(processes[-1], acme, pebble_log)
        await _wait_for(processes[-1], management, pebble_log)
        yield Pebble(
            f"https://127.0.0.1:{acme}/dir",
            f"https://127.0.0.1:{management}",
            f"http://127.0.0.1:{challenge_api}",
            ca_file,
            tuple(processes),
            ssl.create_default_context(cafile=str(ca_file)),
        )
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(process.wait, 10)
            if process.poll() is None:
                process.kill()
                await asyncio.to_thread(process.wait)
