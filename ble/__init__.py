"""Lock drivers: the ``LockDriver`` interface (``driver``), the vendor registry
(``vendors``), the vendor-neutral BLE link over bleak (``link``, with the pure ``exchange``
vocabulary), then one package per vendor (``nuki``, ``switchbot``), the virtual locks for
tests (``sim``) and a bleak backend on Google's Bumble stack (``bumble_backend``)."""
