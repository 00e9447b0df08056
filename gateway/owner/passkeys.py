"""The WebAuthn ceremonies, through py_webauthn (the ``webauthn`` package), never by hand.

:class:`Passkeys` knows the relying party (its ID, a host name, never an IP address, and the
one origin the app is served from) and turns a challenge into the options a browser's
``navigator.credentials`` takes, and a browser's answer into a verified credential or a
verified assertion. Every failure, malformed input included, is an
:class:`~gateway.owner.errors.AssertionRefused`: the library's exceptions never escape.

Policy: passkeys are discoverable (resident) credentials, so signing in needs no user name;
user verification is required at enrollment and at every assertion; algorithms are the
library's defaults (EdDSA, ES256, RS256); attestation is not asked for (a household's own
device, authorised by the root key's one-time link, is trusted by that link, not by a vendor
certificate).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from gateway.owner.errors import AssertionRefused
from gateway.trust.base64url import b64u_decode

CEREMONY_TIMEOUT_MS = 120_000


@dataclass(frozen=True, slots=True)
class NewCredential:
    credential_id: bytes
    public_key: bytes
    sign_count: int


class Passkeys:
    """The relying party: ``rp_id`` (a host name), the app's ``origin`` and, with remote
    reach, its other origin under the same name (``also``: the home network's port)."""

    def __init__(self, rp_id: str, origin: str, rp_name: str = "Threshold") -> None:
        self.rp_id = rp_id
        self.origin = origin
        self.also: tuple[str, ...] = ()
        self.rp_name = rp_name

    @property
    def origins(self) -> list[str]:
        """Every origin a ceremony may come from (all under ``rp_id``)."""
        return [self.origin, *self.also]

    def registration_options(
        self, challenge: bytes, user_id: bytes, user_name: str, exclude: list[bytes]
    ) -> dict[str, Any]:
        options = generate_registration_options(
            rp_id=self.rp_id,
            rp_name=self.rp_name,
            user_id=user_id,
            user_name=user_name,
            user_display_name=user_name,
            challenge=challenge,
            timeout=CEREMONY_TIMEOUT_MS,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                user_verification=UserVerificationRequirement.REQUIRED,
            ),
            exclude_credentials=[PublicKeyCredentialDescriptor(id=c) for c in exclude],
        )
        result: dict[str, Any] = json.loads(options_to_json(options))
        return result

    def assertion_options(self, challenge: bytes, allow: list[bytes]) -> dict[str, Any]:
        options = generate_authentication_options(
            rp_id=self.rp_id,
            challenge=challenge,
            timeout=CEREMONY_TIMEOUT_MS,
            allow_credentials=[PublicKeyCredentialDescriptor(id=c) for c in allow],
            user_verification=UserVerificationRequirement.REQUIRED,
        )
        result: dict[str, Any] = json.loads(options_to_json(options))
        return result

    def verify_registration(self, credential: Any, challenge: bytes) -> NewCredential:
        _a_json_object(credential)
        try:
            verified = verify_registration_response(
                credential=credential,
                expected_challenge=challenge,
                expected_rp_id=self.rp_id,
                expected_origin=self.origins,
                require_user_verification=True,
            )
        except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
            raise AssertionRefused(f"the new passkey does not verify ({exc})") from None
        return NewCredential(
            verified.credential_id, verified.credential_public_key, verified.sign_count
        )

    def verify_assertion(
        self, credential: Any, challenge: bytes, public_key: bytes, sign_count: int
    ) -> int:
        """Verify an assertion by the credential with ``public_key``; the new sign count."""
        _a_json_object(credential)
        try:
            verified = verify_authentication_response(
                credential=credential,
                expected_challenge=challenge,
                expected_rp_id=self.rp_id,
                expected_origin=self.origins,
                credential_public_key=public_key,
                credential_current_sign_count=sign_count,
                require_user_verification=True,
            )
        except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
            raise AssertionRefused(f"the passkey assertion does not verify ({exc})") from None
        return int(verified.new_sign_count)


def _a_json_object(credential: Any) -> None:
    """py_webauthn parses a dict or a JSON text and assumes one of them: anything else (a
    missing ``credential``, a number) raised AttributeError, a 500 (found by tests/fuzz)."""
    if not isinstance(credential, dict):
        raise AssertionRefused("the credential must be a JSON object")


def credential_id_of(credential: Any) -> bytes:
    """The raw credential id a browser's answer names (``rawId``), or AssertionRefused."""
    if not isinstance(credential, dict):
        raise AssertionRefused("the credential must be a JSON object")
    raw = credential.get("rawId") or credential.get("id")
    if not isinstance(raw, str) or not 0 < len(raw) <= 1400:
        raise AssertionRefused("the credential has no id")
    try:
        return b64u_decode(raw)
    except ValueError:
        raise AssertionRefused("the credential id is not base64url") from None
