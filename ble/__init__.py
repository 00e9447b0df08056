"""Lock drivers: the ``LockDriver`` interface, one pure protocol module per vendor, the bleak
transport, a bleak backend on Google's Bumble stack, and a virtual Nuki lock for tests."""
