"""Small file helpers: directories that appear complete or not at all, JSON in and out, remote names kept inside their destination."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from components.errors import DlxError


@contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``target``; rename it to ``target`` when the block succeeds.

    On any exception the temporary directory is removed, so a reader never sees half an
    artifact. ``target`` may exist only as an empty directory (KFP sometimes pre-creates it).
    """
    target = Path(target)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise FileExistsError(f"{target} already exists and is not empty")
    tmp = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        if target.exists():
            target.rmdir()
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def inside(root: str | Path, relative: str, what: str) -> Path:
    """``root``/``relative``, refused in one line unless it resolves inside ``root``: a remote name
    (an S3 key, an archive member, a job name) must never choose where a file lands."""
    base = Path(root).resolve()
    target = (base / relative).resolve()
    if target == base or base not in target.parents:
        raise DlxError(f"{what} '{relative}' would land outside {root}; refusing it (rename the remote object)")
    return target


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, read a megabyte at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_json(path: str | Path, data: Any) -> None:
    Path(path).write_text(json.dumps(data, indent=2) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())
