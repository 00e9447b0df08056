"""The SwitchBot Lock's GATT layout and advertising identifiers.

One service with two characteristics: commands are written to ``TX`` (without response) and
every reply, and every lock notification, arrives as a notification on ``RX``. The UUIDs are
SwitchBot's published ones (OpenWonderLabs/SwitchBotAPI-BLE, "UUID Update Notes"; the same
``cba20d00-224d-11e6-9fb8-0002a5d5c51b`` family every SwitchBot BLE client uses).
"""

from __future__ import annotations

SERVICE = "cba20d00-224d-11e6-9fb8-0002a5d5c51b"
TX = "cba20002-224d-11e6-9fb8-0002a5d5c51b"
RX = "cba20003-224d-11e6-9fb8-0002a5d5c51b"

# SwitchBotAPI-BLE README, "UUID Update Notes": the company ID of ADV_IND's manufacturer data
# and the 16-bit UUID of SCAN_RSP's service data.
COMPANY_ID = 0x0969
SERVICE_DATA_UUID16 = 0xFD3D
SERVICE_DATA_UUID = "0000fd3d-0000-1000-8000-00805f9b34fb"
