"""Threshold's gateway: the CLI, configuration, tickets and policy (pure), access sessions,
the LAN API, sync, and the wiring that starts and stops it all (``gateway.app.wiring``)."""

__version__ = "0.1.0"
