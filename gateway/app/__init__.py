"""The gateway as a running service: its configuration, identity and provisioning, its
locks, supervised jobs, and the one place that wires everything (``gateway.app.wiring``)."""
