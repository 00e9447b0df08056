"""The pairing exchange ("Authorize app", Nuki BLE API §10 "Command usage examples"), client
side, as a sans-IO state machine.

Theory of operation. The lock must be in pairing mode (button held). Over the pairing
service's plain GDIO characteristic:

1. client -> Request Data(Public Key);      lock -> Public Key (PK_lock)
2. client -> Public Key (PK_client);        both derive K = crypto_box_beforenm;
                                            lock -> Challenge (n1)
3. client -> Authorization Authenticator = HMAC(K, PK_client | PK_lock | n1)
                                            lock -> Challenge (n2)
4. client -> Authorization Data(id type, app id, name, n_client),
             authenticated over those | n2; lock -> Authorization-ID(auth id, uuid, n3),
             authenticated over auth id | uuid | n3 | n_client
5. client -> Authorization-ID Confirmation = HMAC(K, auth id | n3) | auth id
                                            lock -> Status COMPLETE

Any Error Report ends the exchange. The lock's authenticator is checked, so a device that
answers with a key it does not hold is refused. Randomness is injected (``random_bytes``)
so that tests can replay the documentation's example.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable

from ble.exchange import SendFrame
from ble.nuki.events import Event, LockReportedError, Paired, PairingResult
from ble.nuki.frames import (
    NukiProtocolError,
    authenticator,
    authenticator_matches,
    decode_plain,
    encode_plain,
    public_key,
    shared_key,
)
from ble.nuki.messages import (
    AuthorizationAuthenticator,
    AuthorizationData,
    AuthorizationId,
    AuthorizationIdConfirmation,
    Challenge,
    ErrorReport,
    IdType,
    PublicKey,
    RequestData,
    Status,
    StatusCode,
    decode_message,
    encode_name,
)


class PairingPhase(enum.Enum):
    IDLE = "idle"
    AWAIT_PUBLIC_KEY = "await_public_key"
    AWAIT_FIRST_CHALLENGE = "await_first_challenge"
    AWAIT_SECOND_CHALLENGE = "await_second_challenge"
    AWAIT_AUTHORIZATION_ID = "await_authorization_id"
    AWAIT_COMPLETE = "await_complete"
    PAIRED = "paired"
    FAILED = "failed"


class PairingClient:
    """The client's side of pairing. ``start()`` gives the first frame; ``receive(frame)``
    takes each complete frame from the lock and returns the events it causes."""

    def __init__(
        self,
        client_private: bytes,
        name: str,
        app_id: int,
        id_type: IdType = IdType.BRIDGE,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._private = client_private
        self._public = public_key(client_private)
        self._name = encode_name(name)
        self._app_id = app_id
        self._id_type = id_type
        self._random = random_bytes
        self.phase = PairingPhase.IDLE
        self._lock_public = b""
        self._key = b""
        self._client_nonce = b""

    @property
    def done(self) -> bool:
        return self.phase in (PairingPhase.PAIRED, PairingPhase.FAILED)

    def start(self) -> list[Event]:
        self.phase = PairingPhase.AWAIT_PUBLIC_KEY
        request = RequestData(PublicKey.COMMAND)
        return [SendFrame(encode_plain(request.COMMAND, request.encode()))]

    def receive(self, frame: bytes) -> list[Event]:
        command, payload = decode_plain(frame)
        message = decode_message(command, payload)
        if isinstance(message, ErrorReport):
            self.phase = PairingPhase.FAILED
            return [LockReportedError(message)]
        phase = self.phase
        if phase is PairingPhase.AWAIT_PUBLIC_KEY and isinstance(message, PublicKey):
            self._lock_public = message.key
            self._key = shared_key(self._private, message.key)
            self.phase = PairingPhase.AWAIT_FIRST_CHALLENGE
            return [self._send(PublicKey(self._public))]
        if phase is PairingPhase.AWAIT_FIRST_CHALLENGE and isinstance(message, Challenge):
            tag = authenticator(self._key, self._public, self._lock_public, message.nonce)
            self.phase = PairingPhase.AWAIT_SECOND_CHALLENGE
            return [self._send(AuthorizationAuthenticator(tag))]
        if phase is PairingPhase.AWAIT_SECOND_CHALLENGE and isinstance(message, Challenge):
            self._client_nonce = self._random(32)
            unsigned = AuthorizationData(
                b"", self._id_type, self._app_id, self._name, self._client_nonce
            )
            tag = authenticator(self._key, unsigned.signed_part(), message.nonce)
            data = AuthorizationData(
                tag, self._id_type, self._app_id, self._name, self._client_nonce
            )
            self.phase = PairingPhase.AWAIT_AUTHORIZATION_ID
            return [self._send(data)]
        if phase is PairingPhase.AWAIT_AUTHORIZATION_ID and isinstance(message, AuthorizationId):
            expected = authenticator(self._key, message.signed_part(), self._client_nonce)
            if not authenticator_matches(expected, message.authenticator):
                self.phase = PairingPhase.FAILED
                raise NukiProtocolError("bad_authenticator", "the lock's authenticator is wrong")
            self._auth_id, self._uuid = message.auth_id, message.uuid
            confirm = authenticator(self._key, message.auth_id.to_bytes(4, "little"), message.nonce)
            self.phase = PairingPhase.AWAIT_COMPLETE
            return [self._send(AuthorizationIdConfirmation(confirm, message.auth_id))]
        if (
            phase is PairingPhase.AWAIT_COMPLETE
            and isinstance(message, Status)
            and message.status is StatusCode.COMPLETE
        ):
            self.phase = PairingPhase.PAIRED
            return [Paired(PairingResult(self._auth_id, self._key, self._uuid, self._app_id))]
        self.phase = PairingPhase.FAILED
        raise NukiProtocolError(
            "unexpected_message", f"{type(message).__name__} while {phase.value}"
        )

    @staticmethod
    def _send(
        message: PublicKey
        | AuthorizationAuthenticator
        | AuthorizationData
        | AuthorizationIdConfirmation,
    ) -> SendFrame:
        return SendFrame(encode_plain(message.COMMAND, message.encode()))
