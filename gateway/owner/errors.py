"""The owner app's errors: one base, typed subclasses with stable codes (docs/owner-app.md).

Transport-neutral: the API layer (``gateway.api.owner_app``) maps each code to its status.
"""

from __future__ import annotations

from gateway.errors import GatewayError


class OwnerAppError(GatewayError):
    """Base of every refusal of the owner app."""

    code = "owner_app_error"


class BadAppRequest(OwnerAppError):
    code = "bad_request"


class EnrollmentRefused(OwnerAppError):
    """The enrollment link is unknown, expired or already used."""

    code = "enrollment_refused"


class AssertionRefused(OwnerAppError):
    """A WebAuthn ceremony failed: unknown or stale challenge, bad signature, no user
    verification, a revoked or foreign credential, a counter that went back."""

    code = "assertion_refused"


class NotSignedIn(OwnerAppError):
    """No session cookie, or its session ended (expired, signed out, device revoked)."""

    code = "not_signed_in"


class CsrfRefused(OwnerAppError):
    """A state-changing request without the session's CSRF token, or from another origin."""

    code = "csrf_refused"


class RoleForbidden(OwnerAppError):
    """The signed-in device's role may not do this (a member opening a door)."""

    code = "role_forbidden"


class DeviceUnknown(OwnerAppError):
    code = "device_unknown"


class MediaUnknown(OwnerAppError):
    """No clip or snapshot at that entry, or its file is gone."""

    code = "media_unknown"
