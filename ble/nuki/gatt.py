"""The Nuki Smart Lock's GATT layout (Nuki BLE API §3 "Bluetooth GATT services").

Copied from the shared test vectors (tests/data/nuki-ble.json); a test checks they agree.
"""

from __future__ import annotations

# Advertised only by a lock that has never been set up.
INITIALIZATION_SERVICE = "a92ee000-5501-11e4-916c-0800200c9a66"
# Plain frames, pairing only.
PAIRING_SERVICE = "a92ee100-5501-11e4-916c-0800200c9a66"
PAIRING_GDIO = "a92ee101-5501-11e4-916c-0800200c9a66"
# Encrypted frames after pairing; commands go to the user-specific characteristic.
KEYTURNER_SERVICE = "a92ee200-5501-11e4-916c-0800200c9a66"
KEYTURNER_GDIO = "a92ee201-5501-11e4-916c-0800200c9a66"
KEYTURNER_USDIO = "a92ee202-5501-11e4-916c-0800200c9a66"

NUKI_SERVICES = (INITIALIZATION_SERVICE, PAIRING_SERVICE, KEYTURNER_SERVICE)
