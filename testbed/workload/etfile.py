"""Chakra ``.et`` files: a stream of length-prefixed protobuf messages.

Layout of one file: ``varint(len) message`` repeated, where the first message is a
``GlobalMetadata`` and every later one a ``Node`` (schema: ``vendor/et_def.proto``). A
file may be gzip-compressed (recognised by its magic bytes). The message classes come
from the vendored generated module ``vendor/et_def_pb2``; only ``protobuf`` is needed.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any, BinaryIO, Iterable

from testbed.workload.errors import WorkloadError

_GZIP_MAGIC = b"\x1f\x8b"
_MAX_VARINT_BYTES = 5  # a 32-bit length needs at most 5 bytes of 7 bits


def schema() -> Any:
    """The generated Chakra protobuf module (``et_def_pb2``)."""
    try:
        from .vendor import et_def_pb2
    except Exception as exc:  # ImportError without protobuf; protobuf's VersionError when older than
        # the generated code (its module raising it exists only in newer releases, so no narrower catch)
        raise WorkloadError(f"reading Chakra traces needs protobuf >= 6.31.1 (pip install 'protobuf>=6.31.1'): "
                            f"{exc}") from exc
    return et_def_pb2


def _open(path: Path) -> BinaryIO:
    try:
        f = open(path, "rb")
        magic = f.read(2)
        f.seek(0)
    except OSError as exc:
        raise WorkloadError(f"{path}: cannot read: {exc}") from exc
    return gzip.GzipFile(fileobj=f, mode="rb") if magic == _GZIP_MAGIC else f


def _read_length(stream: BinaryIO, path: Path, start: int) -> int | None:
    """Decode one base-128 varint; None at a clean end of file."""
    value = 0
    for i in range(_MAX_VARINT_BYTES):
        byte = stream.read(1)
        if not byte:
            if i == 0:
                return None
            raise WorkloadError(f"{path}: truncated (length prefix cut at byte {start})")
        value |= (byte[0] & 0x7F) << (7 * i)
        if not byte[0] & 0x80:
            return value
    raise WorkloadError(f"{path}: corrupt length prefix at byte {start} (longer than {_MAX_VARINT_BYTES} bytes)")


def _encode_length(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def read_et(path: str | Path) -> tuple[Any, list[Any]]:
    """Decode one ``.et`` file into ``(GlobalMetadata, [Node, ...])``.

    Raises WorkloadError naming the file and byte offset when the file is empty,
    truncated or holds a message that does not parse.
    """
    from google.protobuf.message import DecodeError

    path = Path(path)
    pb = schema()
    messages: list[Any] = []
    with _open(path) as stream:
        offset = 0
        try:
            while True:
                size = _read_length(stream, path, offset)
                if size is None:
                    break
                prefix_len = len(_encode_length(size))
                payload = stream.read(size)
                if len(payload) != size:
                    raise WorkloadError(f"{path}: truncated: message {len(messages)} at byte {offset} declares "
                                        f"{size} bytes, only {len(payload)} present")
                message = pb.GlobalMetadata() if not messages else pb.Node()
                try:
                    message.ParseFromString(payload)
                except DecodeError as exc:
                    raise WorkloadError(f"{path}: message {len(messages)} at byte {offset} is corrupt: {exc}") \
                        from exc
                messages.append(message)
                offset += prefix_len + size
        except (OSError, EOFError) as exc:  # e.g. a damaged gzip stream
            raise WorkloadError(f"{path}: cannot decode: {exc}") from exc
    if not messages:
        raise WorkloadError(f"{path}: empty trace (no GlobalMetadata)")
    return messages[0], messages[1:]


def write_et(path: str | Path, metadata: Any, nodes: Iterable[Any]) -> None:
    """Write ``metadata`` (a GlobalMetadata) then ``nodes`` as one ``.et`` file."""
    with open(path, "wb") as f:
        for message in (metadata, *nodes):
            data = message.SerializeToString()
            f.write(_encode_length(len(data)))
            f.write(data)
