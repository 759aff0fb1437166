"""A trained model directory's manifest: every file's sha256, recorded when training ends and
checked before the model is loaded again.

A model file that changed after training (truncated by a full disk or an interrupted copy,
damaged in transit from S3, edited by hand) would otherwise reach Keras, PyTorch, skops or the
JSON reader and fail there with their own traceback, or load something else than what was
evaluated. With the manifest every reader (evaluation, promotion's re-scoring, `dlx predict`,
`dlx generate`) refuses it in one line naming the file. A model directory written before
manifests existed has none and is loaded unchecked.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from components.errors import DlxError
from components.files import file_sha256

MANIFEST = "manifest.json"


def _files(model_dir: Path) -> list[Path]:
    return sorted(p for p in model_dir.rglob("*") if p.is_file() and p.name != MANIFEST)


def write_manifest(model_dir: str | Path) -> None:
    """Record every file under ``model_dir`` (written in one rename, so it is whole or absent)."""
    model_dir = Path(model_dir)
    manifest = {p.relative_to(model_dir).as_posix(): file_sha256(p) for p in _files(model_dir)}
    tmp = model_dir / f".{MANIFEST}.partial"
    tmp.write_text(json.dumps({"sha256": manifest}, indent=2) + "\n")
    os.replace(tmp, model_dir / MANIFEST)


def verify(model_dir: str | Path) -> None:
    """Refuse, in one line, a model directory whose files differ from its manifest."""
    model_dir = Path(model_dir)
    path = model_dir / MANIFEST
    if not path.is_file():
        return
    try:
        recorded = json.loads(path.read_text())["sha256"]
        if not isinstance(recorded, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise DlxError(f"{path} is damaged (not the manifest training wrote); retrain the model") from None
    for name, sha256 in recorded.items():
        file = model_dir / name
        if not file.is_file():
            raise DlxError(f"{file} is missing from the trained model; restore the whole model directory or retrain")
        if file_sha256(file) != sha256:
            raise DlxError(f"{file} is damaged or truncated: its sha256 differs from the one recorded when the model "
                           "was trained; restore it from a good copy or retrain")
