"""Put a data set's input files in S3 once, addressed by their content, for a SageMaker channel.

The files go to ``s3://BUCKET/dlx/data/<dataset>/<sha>/`` where <sha> hashes the files' names and
sha256s, so changed data gets a new prefix and a staged prefix never changes under a running job.
Each object carries its file's sha256 in its metadata (and S3 checks the upload against the same
hash): a file whose object already holds that hash is not uploaded again, so relaunching costs
nothing. The files are found by the same lookup the loaders use (--data-dir, $DLX_DATA_DIR, cache,
download) and loaded once before staging, so a corrupt file fails here, not on a paid instance.
Bundled data sets (digits) have nothing to stage; a file data set (``ratings-file:PATH``) must
already name an s3:// object, which the job reads itself.
"""
from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from components.data import get_dataset, parse_options
from components.data.corpus import SHAKESPEARE_FILE, SHAKESPEARE_FOLDER, SHAKESPEARE_SHA256, SHAKESPEARE_URL
from components.data.fetch import locate
from components.data.images import MNIST_FILES, MNIST_SHA256, MNIST_URL
from components.data.ratings import ML100K_SHA256, ML100K_URL, ML_LATEST_URL
from components.data.storage import is_s3_uri
from components.data.text import SENTIMENT_SHA256, SENTIMENT_URL
from components.errors import DlxError
from components.files import file_sha256
from infra.aws import aws_errors

PREFIX = "dlx/data"

# dataset -> (folder, file names, download mirror, sha256 of the downloads), as its loader looks
# them up; every file any of the data set's options reads, so one staged prefix serves them all
_SOURCES = {
    "mnist": ("mnist", tuple(name for pair in MNIST_FILES.values() for name in pair), MNIST_URL, MNIST_SHA256),
    "movielens-100k": ("movielens-100k", tuple(ML100K_SHA256), ML100K_URL, ML100K_SHA256),
    "movielens-latest-small": ("movielens-latest-small", ("ratings.csv", "movies.csv"), ML_LATEST_URL, {}),
    "sentiment-sentences": ("sentiment-sentences", tuple(SENTIMENT_SHA256), SENTIMENT_URL, SENTIMENT_SHA256),
    "tiny-shakespeare": (SHAKESPEARE_FOLDER, (SHAKESPEARE_FILE,), SHAKESPEARE_URL, SHAKESPEARE_SHA256),
}


@dataclass(frozen=True)
class StagedFile:
    name: str
    sha256: str
    size: int
    present: bool
    """True when S3 already held this content (nothing uploaded)."""


@dataclass(frozen=True)
class Staging:
    uri: str
    """The prefix the job's data channel reads, ending in '/'."""
    files: tuple[StagedFile, ...]


def check_bucket(s3: Any, bucket: str, region: str) -> None:
    """The bucket must exist and be in ``region``: SageMaker reads and writes only same-region S3."""
    with aws_errors(f"bucket {bucket}", {
        "NoSuchBucket": f"does not exist; create it with `dlx aws bootstrap --bucket {bucket}` or check the name",
    }):
        location = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
    where = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, location)
    if where != region:
        raise DlxError(f"bucket {bucket} is in {where} but the job would run in {region}; "
                       f"pass --region {where} or use a bucket in {region}")


def stage(s3: Any, bucket: str, dataset: str, data_dir: str | None, *, tags: Mapping[str, str],
          options: Mapping[str, str] | None = None, dry_run: bool = False) -> Staging | None:
    """Upload the data set's files that S3 lacks (none with ``dry_run``); None when the job
    needs no channel (bundled data, or a file data set naming an s3:// object)."""
    spec = get_dataset(dataset)
    if not spec.needs_location:
        if data_dir:
            raise DlxError(f"dataset {dataset!r} is bundled or names its file, and takes no data dir; drop --data-dir")
        family, _, path = dataset.partition(":")
        if path and not is_s3_uri(path):
            raise DlxError(f"{path}: a SageMaker job cannot read a file on this machine; upload it "
                           f"(aws s3 cp {path} s3://BUCKET/...) and pass --dataset {family}:s3://BUCKET/...")
        return None
    if dataset not in _SOURCES:
        raise DlxError(f"dataset {dataset!r} cannot be staged for SageMaker yet; stageable: {', '.join(_SOURCES)}")
    folder, names, base_url, checksums = _SOURCES[dataset]
    chosen = parse_options(dataset, options)
    spec.load(data_dir, 0, 0.1, *([chosen] if chosen else []))
    with locate(folder, names, data_dir=data_dir, base_url=base_url, checksums=checksums) as located:
        paths = sorted(located.files.values(), key=lambda p: p.name)
        hashes = {path.name: file_sha256(path) for path in paths}
        prefix = f"{PREFIX}/{dataset}/{_prefix_hash(hashes)}/"
        files = []
        for path in paths:
            key = prefix + path.name
            present = _holds(s3, bucket, key, hashes[path.name])
            if not present and not dry_run:
                _upload(s3, bucket, key, path, hashes[path.name], tags)
            files.append(StagedFile(path.name, hashes[path.name], path.stat().st_size, present))
    return Staging(f"s3://{bucket}/{prefix}", tuple(files))



def _prefix_hash(hashes: Mapping[str, str]) -> str:
    listing = "".join(f"{name}\0{sha}\n" for name, sha in sorted(hashes.items()))
    return hashlib.sha256(listing.encode()).hexdigest()[:16]


def _holds(s3: Any, bucket: str, key: str, sha256: str) -> bool:
    from botocore.exceptions import ClientError

    with aws_errors(f"s3://{bucket}/{key}"):
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
    return head.get("Metadata", {}).get("sha256") == sha256


def _upload(s3: Any, bucket: str, key: str, path: Path, sha256: str, tags: Mapping[str, str]) -> None:
    checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
    with aws_errors(f"s3://{bucket}/{key}"), path.open("rb") as body:
        s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"sha256": sha256},
                      ChecksumSHA256=checksum, Tagging=urlencode(tags))
