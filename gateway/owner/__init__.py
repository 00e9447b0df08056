"""The owner's app on the gateway: devices with passkeys, signed-in sessions, acts, notices.

docs/owner-app.md. The root key never enters a browser: it authorises a device once (a
one-time enrollment link); the device then holds a passkey. Every act that opens a door needs
a fresh user-verified WebAuthn assertion whose challenge commits to that act, and the audit
log records which device did it.

Pure: :mod:`~gateway.owner.acts` (roles, acts, the challenge's commitment) and
:mod:`~gateway.owner.notices` (what an access event means to the owner) and
:mod:`~gateway.owner.history` (visits from audit entries). The shell:
:mod:`~gateway.owner.passkeys` (py_webauthn), :mod:`~gateway.owner.sessions`,
:mod:`~gateway.owner.feed` (the notifier fan-out and the live feed) and
:mod:`~gateway.owner.app` (:class:`~gateway.owner.app.OwnerApp`, the one entry point).
"""
