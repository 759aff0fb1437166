"""Reader for IDX files (the MNIST format), gzip-compressed or plain.

Every way a file can be wrong -- not gzip, corrupt gzip, wrong magic number, truncated or padded
data -- becomes a one-line DlxError naming the file, because these files come from users'
directories and mirrors, not from us.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np

from components.errors import DlxError

_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08


def read_content(path: Path) -> bytes:
    """Return the file's bytes, decompressed when it is gzip (detected by content, not name)."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DlxError(f"{path}: cannot read ({e.strerror or e})") from None
    if not raw.startswith(_GZIP_MAGIC):
        if path.suffix == ".gz":
            raise DlxError(f"{path}: not a gzip file; replace it with the original download "
                           "(or drop the .gz suffix if it is uncompressed)")
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DlxError(f"{path}: corrupt gzip data ({e}); replace it with a fresh download") from None


def content_sha256(path: Path) -> str:
    """sha256 of the decompressed content: stable even when a .gz wrapper is re-made."""
    return hashlib.sha256(read_content(path)).hexdigest()


def read_images(path: Path) -> tuple[np.ndarray, str]:
    """Read an IDX uint8 image file (magic 2051) -> ((N, H, W) uint8 array, content sha256)."""
    return _read(path, ndim=3, what="images")


def read_labels(path: Path) -> tuple[np.ndarray, str]:
    """Read an IDX uint8 label file (magic 2049) -> ((N,) uint8 array, content sha256)."""
    return _read(path, ndim=1, what="labels")


def _read(path: Path, ndim: int, what: str) -> tuple[np.ndarray, str]:
    content = read_content(path)
    header_len = 4 + 4 * ndim
    if len(content) < header_len:
        raise DlxError(f"{path}: truncated IDX header ({len(content)} bytes, need {header_len}); "
                       "replace it with a fresh download")
    magic = int.from_bytes(content[:4], "big")
    expected = (_UBYTE << 8) | ndim
    if magic != expected:
        raise DlxError(f"{path}: wrong magic number {magic} (expected {expected} for IDX uint8 "
                       f"{what}); is this the right file?")
    dims = [int.from_bytes(content[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    shape = "x".join(map(str, dims))
    if 0 in dims:
        raise DlxError(f"{path}: IDX header declares an empty array ({shape}); is this the right file?")
    size = int(np.prod(dims))
    body = len(content) - header_len
    if body < size:
        raise DlxError(f"{path}: truncated data: the header declares {shape} {what} ({size} bytes) "
                       f"but only {body} bytes follow; replace it with a fresh download")
    if body > size:
        raise DlxError(f"{path}: {body - size} unexpected bytes after the {shape} {what} the header "
                       "declares; is this the right file?")
    array = np.frombuffer(content, dtype=np.uint8, offset=header_len).reshape(dims)
    return array, hashlib.sha256(content).hexdigest()
