"""Web Push to the owner's devices (RFC 8030, encrypted by RFC 8291, signed by RFC 8292).

docs/owner-app.md, "Notifications": each notice the owner wants interrupts them on each
subscribed device, padded to one size so the push service learns only that and when.
"""
