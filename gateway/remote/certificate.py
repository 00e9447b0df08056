"""The certificate for the gateway's remote name: ACME (RFC 8555) with DNS-01 through the
relay (docs/remote.md, "Certificates a browser trusts").

The ACME protocol is certbot's ``acme`` library (``ClientV2``), which is synchronous
(``requests``): its steps run in a worker thread. Between them, on the event loop, the
gateway asks the relay by a signed request to publish the challenge's TXT record at
``_acme-challenge.<name>.<domain>`` (RFC 8555 §8.4) and, whatever the outcome, to withdraw
it. The relay sees the record's value (a digest of the key authorization); the certificate's
private key is made here and never leaves the gateway.

Files in the gateway's directory, each written whole (``groundwork.files``):

* ``remote-acme-account.key``: the ACME account key (EC P-256, PEM), 0600, made once;
* ``remote.pem``: the certificate's private key (EC P-256) followed by the full chain, 0600,
  replaced atomically on each renewal, so a TLS listener loading it never sees a key that
  does not match its certificate.

:meth:`RemoteCertificate.ensure` obtains a certificate when there is none, or renews when
less than ``renew_fraction`` of its lifetime is left (``gateway.remote.schedule``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acme import challenges, client, crypto_util, errors, messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from josepy.jwa import ES256
from josepy.jwk import JWKEC
from requests.adapters import HTTPAdapter

from gateway.remote.errors import CertificateFailed, RemoteError
from gateway.remote.relay_api import RelayApi
from gateway.remote.schedule import renewal_due
from gateway.remote.settings import RemoteConfig
from groundwork.files import write_file

log = logging.getLogger("threshold.remote.acme")

ACCOUNT_KEY_FILE = "remote-acme-account.key"
CERTIFICATE_FILE = "remote.pem"
#: How long the ACME server may take to validate and issue.
ISSUE_TIMEOUT_S = 90.0
USER_AGENT = "threshold-gateway"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """The remote certificate on disk: its names and validity."""

    path: Path
    names: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime


def read_certificate(path: Path) -> CertificateInfo | None:
    """The leaf of ``remote.pem``, or None when there is none (or it does not parse)."""
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        leaf = x509.load_pem_x509_certificate(pem)
        names = tuple(
            leaf.extensions.get_extension_for_class(
                x509.SubjectAlternativeName
            ).value.get_values_for_type(x509.DNSName)
        )
    except (ValueError, x509.ExtensionNotFound):
        return None
    return CertificateInfo(path, names, leaf.not_valid_before_utc, leaf.not_valid_after_utc)


class _TrustedCa(HTTPAdapter):
    """A requests transport trusting one CA bundle (a private ACME server's)."""

    def __init__(self, ca_file: str) -> None:
        self._context = ssl.create_default_context(cafile=ca_file)
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass
class _Order:
    acme: client.ClientV2
    order: messages.OrderResource
    answers: list[tuple[messages.ChallengeBody, challenges.ChallengeResponse]]
    #: The TXT record's value; None when the server reused a valid authorization.
    value: str | None
    key_pem: bytes


class RemoteCertificate:
    """Obtains and renews ``remote.pem`` for ``settings.host_name``."""

    def __init__(
        self,
        api: RelayApi,
        settings: RemoteConfig,
        directory: Path,
        *,
        clock: Callable[[], dt.datetime] = _now,
    ) -> None:
        self._api = api
        self._settings = settings
        self.path = directory / CERTIFICATE_FILE
        self._account_path = directory / ACCOUNT_KEY_FILE
        #: The time renewal is judged by (a test moves it to the certificate's last days).
        self.clock = clock
        self._lock = asyncio.Lock()
        #: Set each time a new certificate is written (the TLS listeners reload on it).
        self.renewed = asyncio.Event()

    async def close(self) -> None:
        await self._api.close()

    @property
    def current(self) -> CertificateInfo | None:
        return read_certificate(self.path)

    def due(self) -> bool:
        info = self.current
        if info is None or self._settings.host_name not in info.names:
            return True
        return renewal_due(
            info.not_before, info.not_after, self.clock(), self._settings.renew_fraction
        )

    async def ensure(self) -> bool:
        """Obtain or renew the certificate if it is due; whether a new one was written."""
        async with self._lock:
            if not self.due():
                return False
            await self._obtain()
            self.renewed.set()
            return True

    async def _obtain(self) -> None:
        order = await asyncio.to_thread(self._order)
        if order.value is None:
            pem = await asyncio.to_thread(self._finish, order)
        else:
            pem = await self._validated(order, order.value)
        write_file(self.path, order.key_pem + pem.encode("ascii"), replace=True)
        info = self.current
        log.info(
            "remote certificate for %s valid until %s",
            self._settings.host_name,
            None if info is None else info.not_after.isoformat(),
        )

    async def _validated(self, order: _Order, value: str) -> str:
        name = self._settings.name
        await self._api.publish_challenge(name, value)
        try:
            return await asyncio.to_thread(self._finish, order)
        finally:
            # The record is withdrawn whatever happened; a failure to withdraw is logged only
            # (the record is useless without the account key, and the next order replaces it).
            try:
                await self._api.withdraw_challenge(name)
            except RemoteError as exc:
                log.warning("could not withdraw the DNS-01 record: %s", exc.message)

    # The blocking ACME steps (a worker thread) -----------------------------------------------

    def _account_key(self) -> JWKEC:
        if not self._account_path.exists():
            with contextlib.suppress(FileExistsError):
                write_file(
                    self._account_path, _private_pem(ec.generate_private_key(ec.SECP256R1()))
                )
        key = serialization.load_pem_private_key(self._account_path.read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise CertificateFailed(f"{self._account_path} is not an EC private key")
        return JWKEC(key=key)

    def _client(self) -> client.ClientV2:
        account_key = self._account_key()
        net = client.ClientNetwork(account_key, alg=ES256, user_agent=USER_AGENT)
        if self._settings.acme_ca_file is not None:
            net.session.mount("https://", _TrustedCa(self._settings.acme_ca_file))
        directory = client.ClientV2.get_directory(self._settings.acme_directory, net)
        acme = client.ClientV2(directory, net)
        registration = messages.NewRegistration.from_data(
            email=self._settings.acme_email, terms_of_service_agreed=True
        )
        try:
            net.account = acme.new_account(registration)
        except errors.ConflictError as exc:
            # The account key is already registered (a renewal): the server named its URL.
            net.account = messages.RegistrationResource(
                body=messages.Registration(), uri=exc.location
            )
        return acme

    def _order(self) -> _Order:
        try:
            acme = self._client()
            key = ec.generate_private_key(ec.SECP256R1())
            key_pem = _private_pem(key)
            csr = crypto_util.make_csr(key_pem, [self._settings.host_name])
            order = acme.new_order(csr)
        except (errors.Error, messages.Error, OSError) as exc:
            raise CertificateFailed(f"the ACME server refused the order: {exc}") from None
        answers: list[tuple[messages.ChallengeBody, challenges.ChallengeResponse]] = []
        values: set[str] = set()
        account_key = acme.net.key
        for authorization in order.authorizations:
            if authorization.body.status == messages.STATUS_VALID:
                continue  # the server reuses an authorization it validated recently
            for body in authorization.body.challenges:
                if isinstance(body.chall, challenges.DNS01):
                    response, value = body.response_and_validation(account_key)
                    answers.append((body, response))
                    values.add(value)
        if len(values) > 1:
            raise CertificateFailed("the ACME server asked for more than one DNS-01 record")
        pending = [a for a in order.authorizations if a.body.status != messages.STATUS_VALID]
        if pending and not answers:
            raise CertificateFailed("the ACME server offered no DNS-01 challenge")
        return _Order(acme, order, answers, values.pop() if values else None, key_pem)

    def _finish(self, order: _Order) -> str:
        deadline = dt.datetime.now() + dt.timedelta(seconds=ISSUE_TIMEOUT_S)
        try:
            for body, response in order.answers:
                order.acme.answer_challenge(body, response)
            finished = order.acme.poll_and_finalize(order.order, deadline)
        except (errors.Error, messages.Error, OSError) as exc:
            raise CertificateFailed(f"the ACME server did not issue: {exc}") from None
        return str(finished.fullchain_pem)
