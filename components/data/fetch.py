"""Find a dataset's files: an explicit location, DLX_DATA_DIR, the cache, or a verified download.

Order: `data_dir` (a local directory or s3://bucket/prefix) -> $DLX_DATA_DIR -> the cache
$DLX_CACHE_DIR/<dataset>/ (default ~/.cache/dlx) -> download into the cache. A data dir or
DLX_DATA_DIR may hold the files directly or in a <dataset>/ subfolder, so one root such as the
shared data folder serves every dataset. An explicit data dir must hold every file (no silent
download behind the user's back); DLX_DATA_DIR is a shared root that may lack a dataset, which
then comes from the cache (an s3:// DLX_DATA_DIR is the exception: it must hold the files).
Downloads are checked against sha256 constants of the decompressed content (re-made .gz wrappers
still verify) and renamed into place only once verified, so the cache never holds a bad file;
cached files are checked again on every use, and one changed since (by hand, by a disk fault) is
downloaded again rather than trusted.
A `.gz` file may also be supplied decompressed, without the suffix. A `base_url` ending in
`.zip` is one archive: the missing files are extracted from it (matched by base name) and each is
verified like a plain download.
"""

from __future__ import annotations

import http.client
import os
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from components import progress
from components.data.idx import content_sha256
from components.data.storage import download_prefix, is_s3_uri
from components.errors import DlxError

DATA_DIR_ENV = "DLX_DATA_DIR"
CACHE_DIR_ENV = "DLX_CACHE_DIR"


@dataclass(frozen=True)
class Located:
    files: dict[str, Path]  # expected name -> the local file found for it
    source: str  # directory, s3 URI or download URL, recorded in the dataset's meta.json


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_DIR_ENV) or "~/.cache/dlx").expanduser()


@contextmanager
def locate(dataset: str, names: Sequence[str], *, data_dir: str | None, base_url: str,
           checksums: Mapping[str, str]) -> Iterator[Located]:
    """Yield local paths for `names`; files staged from S3 live only inside the `with` block."""
    env = os.environ.get(DATA_DIR_ENV)
    location = data_dir or (env if env and is_s3_uri(env) else None)
    if location and is_s3_uri(location):
        with tempfile.TemporaryDirectory(prefix=f"dlx-{dataset}-") as tmp:
            wanted = [a for n in names for a in _accepted(n)]
            download_prefix(location, tmp, only=[*wanted, *(f"{dataset}/{a}" for a in wanted)])
            located = _require(dataset, names, Path(tmp), shown=location.rstrip("/"))
            try:
                yield located
            except DlxError as e:  # name the S3 objects, not their temporary local copies
                raise DlxError(str(e).replace(tmp, location.rstrip("/"))) from None
    elif location:
        directory = Path(location).expanduser()
        if not directory.is_dir():
            raise DlxError(f"{dataset}: data dir {directory} is not a directory; "
                           f"pass --data-dir DIR holding {_expected(names)}")
        yield _require(dataset, names, directory, shown=str(directory))
    else:
        yield _from_env_or_cache(dataset, names, env, base_url, checksums)


def _from_env_or_cache(dataset: str, names: Sequence[str], env: str | None, base_url: str,
                       checksums: Mapping[str, str]) -> Located:
    roots = []
    if env:
        root = Path(env).expanduser()
        located, _ = _look(root, dataset, names, shown=str(root))
        if located:
            return located
        roots = [root / dataset, root]
    cache = cache_dir() / dataset
    found, missing = _find(cache, names)
    for name in [name for name, path in found.items() if not _matches(path, checksums[name])]:
        print(f"dlx: the cached {found[name]} no longer matches its known sha256 (changed after it was downloaded); "
              "downloading it again", file=sys.stderr)
        found.pop(name).unlink()
        missing.append(name)
    looked = ", ".join(str(d) for d in [*roots, cache])
    hint = (f"no local copy in {looked}; pass --data-dir DIR holding {_expected(names)}, "
            f"or set {DATA_DIR_ENV}=ROOT with them in ROOT/{dataset}/")
    if missing:
        print(f"dlx: downloading {dataset} from {base_url} into {cache}", file=sys.stderr)
        progress.note(f"downloading {dataset} from {base_url} into {cache}")
    if missing and base_url.endswith(".zip"):
        _download_zip(base_url, cache, missing, checksums, hint)
    else:
        for name in missing:
            _download(base_url.rstrip("/") + "/" + name, cache / name, checksums[name], hint)
    found.update({name: cache / name for name in missing})
    return Located(found, base_url)


@contextmanager
def local_file(path: str, family: str) -> Iterator[Path]:
    """The file a `FAMILY:PATH` data set names: `path` itself, or an s3:// object staged into a
    temporary directory for the block."""
    if not is_s3_uri(path):
        local = Path(path).expanduser()
        if not local.is_file():
            raise DlxError(f"{path}: no such file; write the dataset as {family}:PATH to an existing file")
        yield local
        return
    prefix, _, name = path.rpartition("/")
    with tempfile.TemporaryDirectory(prefix=f"dlx-{family}-") as tmp:
        if not download_prefix(prefix, tmp, only=[name]):
            raise DlxError(f"{path}: no such object; check the key")
        yield Path(tmp) / name


def _matches(path: Path, sha256: str) -> bool:
    """Whether a cached file still holds what was verified when it was downloaded."""
    try:
        return content_sha256(path) == sha256
    except (DlxError, OSError):  # unreadable or no longer decompresses
        return False


def _download(url: str, target: Path, sha256: str, hint: str) -> None:
    """Fetch `url` to a temp name beside `target`, verify, then rename; never leave a partial file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            _fetch(url, out, target.name, hint)
        try:
            actual = content_sha256(tmp)
        except DlxError as e:
            raise DlxError(f"{url}: the download is corrupt ({e}); it was discarded; retry, or {hint}") from None
        if actual != sha256:
            raise DlxError(f"{url}: the download has sha256 {actual}, expected {sha256}; it was discarded; "
                           f"retry, or {hint}")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _download_zip(url: str, cache: Path, names: Sequence[str], checksums: Mapping[str, str], hint: str) -> None:
    """Fetch the zip archive at `url` and extract `names` into `cache`, each verified against its
    sha256 before any is renamed into place (the archive itself is not kept)."""
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=cache) as tmp:
        archive = Path(tmp) / "archive.zip"
        with archive.open("wb") as out:
            _fetch(url, out, Path(url).name, hint)
        try:
            with zipfile.ZipFile(archive) as zipped:
                members = {Path(m).name: m for m in zipped.namelist() if not m.startswith("__MACOSX/")}
                for name in names:
                    if name not in members:
                        raise DlxError(f"{url}: the archive lacks {name}; {hint}")
                    (Path(tmp) / name).write_bytes(zipped.read(members[name]))
        except (zipfile.BadZipFile, OSError) as e:
            raise DlxError(f"{url}: the download is not a readable zip archive ({e}); it was discarded; "
                           f"retry, or {hint}") from None
        for name in names:
            actual = content_sha256(Path(tmp) / name)
            if actual != checksums[name]:
                raise DlxError(f"{url}: {name} in the archive has sha256 {actual}, expected {checksums[name]}; "
                               f"it was discarded; retry, or {hint}")
        for name in names:
            os.replace(Path(tmp) / name, cache / name)


def _fetch(url: str, out, label: str, hint: str) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            _copy_with_progress(response, out, label)
    except (OSError, http.client.HTTPException) as e:
        raise DlxError(f"cannot download {url} ({getattr(e, 'reason', e)}); {hint}") from None


def _copy_with_progress(response, out, label: str) -> None:
    total = int(response.headers.get("Content-Length") or 0)
    done = 0
    live = sys.stderr.isatty()
    while chunk := response.read(1 << 20):
        out.write(chunk)
        done += len(chunk)
        if live:
            of_total = f" of {total / 1e6:.1f} MB" if total else " MB"
            print(f"\r  {label}: {done / 1e6:.1f}{of_total}", end="", file=sys.stderr, flush=True)
    start = "\r" if live else ""
    print(f"{start}  {label}: {done / 1e6:.1f} MB done", file=sys.stderr)


def _accepted(name: str) -> list[str]:
    return [name, name.removesuffix(".gz")] if name.endswith(".gz") else [name]


def _find(directory: Path, names: Sequence[str]) -> tuple[dict[str, Path], list[str]]:
    found, missing = {}, []
    for name in names:
        path = next((directory / a for a in _accepted(name) if (directory / a).is_file()), None)
        if path is None:
            missing.append(name)
        else:
            found[name] = path
    return found, missing


def _look(directory: Path, dataset: str, names: Sequence[str], shown: str) -> tuple[Located | None, list[str]]:
    """All files from `directory`/<dataset>/ or else `directory` (called `shown` in the meta), or
    None and the names `directory` lacks."""
    found, missing = _find(directory / dataset, names)
    if not missing:
        return Located(found, f"{shown}/{dataset}"), []
    found, missing = _find(directory, names)
    return (None if missing else Located(found, shown)), missing


def _require(dataset: str, names: Sequence[str], directory: Path, shown: str) -> Located:
    located, missing = _look(directory, dataset, names, shown)
    if not located:
        raise DlxError(f"{dataset}: {shown} (and {shown}/{dataset}/) lacks {', '.join(missing)}; "
                       f"pass --data-dir DIR holding {_expected(names)}")
    return located


def _expected(names: Sequence[str]) -> str:
    listed = ", ".join(names)
    return f"{listed} (gzip or uncompressed without .gz)" if any(n.endswith(".gz") for n in names) else listed
