"""Clients of the gateway and the relay: what a phone app, the owner and the CLI use."""
