"""Bytes to text for every loader, with one error that says where the bad byte is."""
from __future__ import annotations

from pathlib import Path

from components.errors import DlxError

ENCODING_HINT = "name the file's encoding with encoding=, e.g. encoding=latin-1"


def decode(content: bytes, encoding: str, shown: str | Path, hint: str) -> str:
    """``content`` as text; undecodable bytes are a DlxError naming the line and offset, then ``hint``."""
    try:
        return content.decode(encoding)
    except UnicodeDecodeError as e:
        line = content[:e.start].count(b"\n") + 1
        raise DlxError(f"{shown}: line {line} is not {encoding.upper()} text (byte {content[e.start]:#04x} at "
                       f"offset {e.start}); {hint}") from None
