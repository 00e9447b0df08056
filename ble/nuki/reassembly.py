"""Reassembly of Nuki replies that arrive in one indication or in several.

Nuki BLE API §3 "Bluetooth GATT services": at the default ATT MTU of 23 a characteristic
value is at most 20 bytes, so a lock indicates a longer message in consecutive pieces; after
a larger MTU is negotiated, real locks (Smart Lock 2.0 to 4.0) send each message whole, up
to MTU - 3 bytes. The reassembler handles both: it collects bytes until a message is
complete, whatever the pieces. An encrypted message announces its
length in its header (§4); a plain one does not, so its length follows from its command
(the sizes in :data:`ble.nuki.messages.PLAIN_PAYLOAD_SIZES`).

Pure: bytes in, complete frames out.
"""

from __future__ import annotations

import enum
import struct

from ble.nuki.frames import (
    ADATA_BYTES,
    CRC_BYTES,
    Command,
    NukiProtocolError,
    command_of,
    crc16,
    encrypted_frame_length,
)
from ble.nuki.messages import PLAIN_PAYLOAD_SIZES

# A lock that cannot encrypt (unknown authorization id) answers on the encrypted
# characteristic with a plain Error Report: command, error code, command id, CRC.
PLAIN_ERROR_BYTES = 2 + 3 + CRC_BYTES


def is_plain_error_report(frame: bytes) -> bool:
    if len(frame) != PLAIN_ERROR_BYTES:
        return False
    (command,) = struct.unpack_from("<H", frame)
    (crc,) = struct.unpack_from("<H", frame, PLAIN_ERROR_BYTES - CRC_BYTES)
    return bool(command == Command.ERROR_REPORT and crc16(frame[:-CRC_BYTES]) == crc)


# No Nuki message is longer than this; a header announcing more is garbage.
MAX_FRAME_BYTES = 1024


class FrameKind(enum.Enum):
    PLAIN = "plain"
    ENCRYPTED = "encrypted"


def plain_frame_length(head: bytes) -> int:
    """Total length of a plain frame, from its first two bytes (the command)."""
    (command,) = struct.unpack_from("<H", head)
    size = PLAIN_PAYLOAD_SIZES.get(command_of(command))
    if size is None:
        raise NukiProtocolError("unknown_command", f"no plain form for 0x{command:04X}")
    return 2 + size + CRC_BYTES


class IndicationReassembler:
    """Collects indication pieces and returns each message once it is complete.

    After a :class:`NukiProtocolError` the buffer is dropped, so one garbled message does not
    poison the next.
    """

    def __init__(self, kind: FrameKind) -> None:
        self.kind = kind
        self._buffer = bytearray()

    def reset(self) -> None:
        self._buffer.clear()

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def feed(self, piece: bytes) -> list[bytes]:
        if self.kind is FrameKind.ENCRYPTED and not self._buffer and is_plain_error_report(piece):
            return [piece]
        self._buffer += piece
        frames: list[bytes] = []
        try:
            while True:
                needed = self._needed()
                if needed is None or len(self._buffer) < needed:
                    return frames
                frames.append(bytes(self._buffer[:needed]))
                del self._buffer[:needed]
        except NukiProtocolError:
            self._buffer.clear()
            raise

    def _needed(self) -> int | None:
        if self.kind is FrameKind.PLAIN:
            if len(self._buffer) < 2:
                return None
            return plain_frame_length(bytes(self._buffer[:2]))
        if len(self._buffer) < ADATA_BYTES:
            return None
        needed = encrypted_frame_length(bytes(self._buffer[:ADATA_BYTES]))
        if needed > MAX_FRAME_BYTES:
            raise NukiProtocolError("bad_length", f"announced length {needed} is too long")
        return needed
