"""Remote reach on loopback: a relay with an SNI front, gateways' TLS endpoints, a recording
TCP proxy (what the relay's side reads and writes), and a browser-like TLS client."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from nacl.signing import SigningKey

from cloud.relay import Relay, RelayServer
from cloud.remote_config import RemoteConfig
from cloud.remote_names import NameTable
from gateway.remote.relay_api import RelayAccess, RelayApi
from gateway.remote.tunnel import RemoteTunnel

DOMAIN = "relay.test"
WAIT_S = 15.0


@dataclass
class LoopbackCa:
    """A CA the test's client trusts, issuing server certificates for host names."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def new(cls) -> LoopbackCa:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "remote test CA")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    def server_context(self, host: str, directory: Path) -> ssl.SSLContext:
        cert_file, key_file = self.issue(host, directory)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
        return context

    def ca_file(self, directory: Path) -> Path:
        path = directory / "loopback-ca.pem"
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path

    def issue(self, host: str, directory: Path) -> tuple[Path, Path]:
        """A certificate for ``host`` (and 127.0.0.1): its PEM file and its key's."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName(host), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        cert_file, key_file = directory / f"{host}.crt", directory / f"{host}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert_file, key_file

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        context.load_verify_locations(
            cadata=self.cert.public_bytes(serialization.Encoding.PEM).decode()
        )
        return context


@dataclass
class TlsEndpoint:
    """A gateway's TLS listener: answers each line with ``<label>: <line>``; counts sessions."""

    label: str
    context: ssl.SSLContext
    sessions: int = 0
    server: asyncio.Server | None = None
    port: int = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.context)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self.port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sessions += 1
        try:
            while line := await reader.readline():
                writer.write(f"{self.label}: ".encode() + line)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 5)


@dataclass
class Gateway:
    gateway_id: str
    key: SigningKey
    owner: SigningKey = field(default_factory=SigningKey.generate)

    def tunnel(
        self, relay_url: str, name: str, endpoint_port: int, **kwargs: float
    ) -> RemoteTunnel:
        api = RelayApi(RelayAccess(relay_url, self.gateway_id, self.key))
        return RemoteTunnel(api, name, ("127.0.0.1", endpoint_port), **kwargs)


async def start_remote_relay(
    directory: Path,
    names: dict[str, Gateway],
    *,
    port: int = 0,
    front_port: int = 0,
    unassigned: tuple[Gateway, ...] = (),
    challenge_dns: str | None = None,
) -> tuple[RelayServer, str]:
    """A relay routing ``<name>.relay.test`` to each named gateway (all registered),
    publishing DNS-01 records through ``challenge_dns`` (pebble-challtestsrv) if given."""
    table = NameTable(DOMAIN, {name: gw.gateway_id for name, gw in names.items()})
    remote = RemoteConfig(table, "127.0.0.1", front_port, None, challenge_dns)
    relay = Relay(directory, remote=remote)
    for gateway in (*names.values(), *unassigned):
        await relay.register_gateway(
            gateway.gateway_id, bytes(gateway.key.verify_key), bytes(gateway.owner.verify_key)
        )
    server = RelayServer(relay)
    url = await server.start(port=port)
    return server, url


async def tls_exchange(
    front_port: int, server_name: str, context: ssl.SSLContext, line: bytes
) -> bytes:
    """What a browser does: TLS to the relay's front for ``server_name``, one line out, one
    back."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", front_port, ssl=context, server_hostname=server_name),
        WAIT_S,
    )
    try:
        writer.write(line + b"\n")
        await writer.drain()
        return await asyncio.wait_for(reader.readline(), WAIT_S)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


@dataclass
class Recording:
    """One connection through the proxy: what the relay's side read, and wrote."""

    to_relay: bytearray = field(default_factory=bytearray)
    from_relay: bytearray = field(default_factory=bytearray)


@dataclass
class RecordingProxy:
    """A TCP proxy in front of the relay's SNI front: every byte the relay's side reads from
    and writes to a browser, recorded per connection."""

    upstream_port: int
    connections: list[Recording] = field(default_factory=list)
    server: asyncio.Server | None = None
    port: int = 0

    @property
    def to_relay(self) -> bytes:
        return b"".join(bytes(c.to_relay) for c in self.connections)

    @property
    def from_relay(self) -> bytes:
        return b"".join(bytes(c.from_relay) for c in self.connections)

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self.port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        recording = Recording()
        self.connections.append(recording)

        async def pump(
            src: asyncio.StreamReader, dst: asyncio.StreamWriter, log: bytearray
        ) -> None:
            try:
                while data := await src.read(65536):
                    log.extend(data)
                    dst.write(data)
                    await dst.drain()
            except ConnectionError:
                pass
            finally:
                with contextlib.suppress(Exception):
                    dst.close()

        await asyncio.gather(
            pump(reader, up_writer, recording.to_relay),
            pump(up_reader, writer, recording.from_relay),
        )

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


def tls_records_only(stream: bytes, *, cut: bool = False) -> bool:
    """Whether one connection's ``stream`` parses as back-to-back TLS records (RFC 8446
    §5.1: content type 20-23, version 0x0301-0x0304, a length of at most 2^14 + 256), to its
    last byte; with ``cut``, the last record may be cut short (a connection the relay's
    restart closed mid-record)."""
    at = 0
    while at < len(stream):
        if at + 5 > len(stream):
            return cut
        kind, major, minor = stream[at], stream[at + 1], stream[at + 2]
        length = int.from_bytes(stream[at + 3 : at + 5], "big")
        if kind not in (20, 21, 22, 23) or major != 3 or not 1 <= minor <= 4:
            return False
        if length > 2**14 + 256:
            return False
        at += 5 + length
    return at == len(stream) or cut
