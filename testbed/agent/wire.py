"""The agents' wire protocol: a handshake, then framed, verifiable transfers.

One TCP connection per pair of ranks; the higher rank connects to the lower one.

HELLO (both directions, once): magic ``LMHI``, protocol version, sender rank,
receiver rank, SHA-256 of the plan file. A rank refuses a peer that has another
plan, another rank than expected, or another protocol version.

DATA (one per transfer): magic ``LMDT``, sender rank, receiver rank, the plan's
transfer id ``xfer``, payload length, CRC-32 of the payload; then the payload.
The payload is deterministic: the pair's pattern block (``PATTERN_BYTES`` bytes from
a PRNG seeded with the plan seed and the two ranks) repeated to the length. The
receiver checks the header against its plan (sender, transfer id, length) and the
CRC-32 of the bytes it actually received against the CRC-32 of the expected
payload, so any lost, extra or altered byte fails the run.
"""

from __future__ import annotations

import hashlib
import random
import socket
import struct
import zlib
from dataclasses import dataclass

PROTOCOL_VERSION = 1
HELLO = struct.Struct("!4sHHII32s")
HELLO_MAGIC = b"LMHI"
DATA = struct.Struct("!4sIIQQI")
DATA_MAGIC = b"LMDT"
PATTERN_BYTES = 1 << 20  # also the largest single send/recv call


class ProtocolError(Exception):
    """The peer sent something the plan does not allow (or corrupted data)."""


@dataclass(frozen=True)
class Hello:
    version: int
    src: int
    dst: int
    plan_sha256: bytes

    def pack(self) -> bytes:
        return HELLO.pack(HELLO_MAGIC, self.version, 0, self.src, self.dst, self.plan_sha256)

    @classmethod
    def unpack(cls, raw: bytes) -> "Hello":
        magic, version, _, src, dst, digest = HELLO.unpack(raw)
        if magic != HELLO_MAGIC:
            raise ProtocolError(f"not a replay agent handshake (magic {magic!r})")
        return cls(version, src, dst, digest)


def pack_data_header(src: int, dst: int, xfer: int, length: int, crc: int) -> bytes:
    return DATA.pack(DATA_MAGIC, src, dst, xfer, length, crc)


def unpack_data_header(raw: bytes) -> tuple[int, int, int, int, int]:
    """(src, dst, xfer, length, crc32); raises ProtocolError on a bad magic."""
    magic, src, dst, xfer, length, crc = DATA.unpack(raw)
    if magic != DATA_MAGIC:
        raise ProtocolError(f"bad transfer header magic {magic!r} (stream out of sync or corrupted)")
    return src, dst, xfer, length, crc


_BASE: dict[int, bytes] = {}


class Pattern:
    """The deterministic payload of one direction (src -> dst) of a rank pair.

    All directions share one ``PATTERN_BYTES`` block per seed (memory stays flat with
    many peers); each direction starts it at its own offset, so payloads differ.
    """

    def __init__(self, seed: int, src: int, dst: int) -> None:
        if seed not in _BASE:
            digest = hashlib.sha256(f"lasermesh-payload:{seed}".encode()).digest()
            block = random.Random(int.from_bytes(digest[:8], "big")).randbytes(PATTERN_BYTES)
            _BASE[seed] = block + block
        offset = int.from_bytes(hashlib.sha256(f"{src}>{dst}".encode()).digest()[:4], "big") % PATTERN_BYTES
        self.view = memoryview(_BASE[seed])[offset:offset + PATTERN_BYTES]
        self._crc: dict[int, int] = {}

    def crc(self, length: int) -> int:
        """CRC-32 of the payload of ``length`` bytes (cached per length)."""
        if length not in self._crc:
            full, rest = divmod(length, PATTERN_BYTES)
            crc = 0
            for _ in range(full):
                crc = zlib.crc32(self.view, crc)
            self._crc[length] = zlib.crc32(self.view[:rest], crc)
        return self._crc[length]


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Read exactly ``n`` bytes; b"" if the peer closed before the first byte."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            if got == 0:
                return b""
            raise ProtocolError(f"connection closed in the middle of a {n}-byte header")
        got += k
    return bytes(buf)


def send_payload(sock: socket.socket, header: bytes, pattern: Pattern, length: int) -> None:
    """Send the header and ``length`` payload bytes (pattern repeated), without copies."""
    if length <= 65536:  # one segment for small transfers
        sock.sendall(header + pattern.view[:length].tobytes())
        return
    sock.sendall(header)
    sent = 0
    while sent < length:
        n = min(length - sent, PATTERN_BYTES)
        sock.sendall(pattern.view[:n])
        sent += n


def recv_payload(sock: socket.socket, length: int, buffer: memoryview) -> int:
    """Receive ``length`` payload bytes into ``buffer`` chunks; returns their CRC-32."""
    crc = 0
    left = length
    size = len(buffer)
    while left:
        k = sock.recv_into(buffer, min(left, size))
        if k == 0:
            raise ProtocolError(f"connection closed with {left} of {length} payload bytes missing")
        crc = zlib.crc32(buffer[:k], crc)
        left -= k
    return crc
