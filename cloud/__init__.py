"""The reference cloud relay: it receives sealed audit entries, witnesses checkpoints and
relays owner-signed revocations and approvals. Small enough to self-host."""
