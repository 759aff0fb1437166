"""The project's one door to S3.

boto3 is imported inside the functions so that code which never touches S3 never pays for it.
Every failure a user can cause (no credentials, wrong bucket, missing object, no access) becomes
a one-line DlxError naming the URI.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from components.errors import DlxError
from components.files import inside


def is_s3_uri(location: str) -> bool:
    return location.startswith("s3://")


def split_uri(uri: str) -> tuple[str, str]:
    """s3://bucket/some/key -> ("bucket", "some/key")."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not is_s3_uri(uri) or not bucket:
        raise DlxError(f"{uri}: not an S3 URI; write it as s3://BUCKET/PREFIX")
    return bucket, key


def upload_file(path: str | Path, uri: str) -> None:
    """Upload one local file to the object `uri` (s3://bucket/key)."""
    bucket, key = split_uri(uri)
    if not key or key.endswith("/"):
        raise DlxError(f"{uri}: needs an object key after the bucket, e.g. s3://{bucket}/data/{Path(path).name}")
    with _s3_errors(uri):
        _client().upload_file(str(path), bucket, key)


def upload_dir(path: str | Path, uri: str) -> None:
    """Upload every file under the directory ``path`` to the prefix ``uri``, keeping relative paths.

    Each object is whole or absent (a PUT is atomic, a failed multipart upload is aborted), but a
    failure part-way leaves some of the files: callers publish the prefix only afterwards (a
    champion record names its model's copy once the copy is complete)."""
    bucket, prefix = split_uri(uri)
    prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
    with _s3_errors(uri):
        client = _client()
        for file in sorted(p for p in Path(path).rglob("*") if p.is_file()):
            client.upload_file(str(file), bucket, prefix + file.relative_to(path).as_posix())


def download_prefix(uri: str, dest: str | Path, *, only: Collection[str] | None = None) -> list[Path]:
    """Download every object under the prefix `uri` into `dest`, keeping relative key paths.

    `only` restricts the download to these relative names, so a loader fetches just its files
    from a prefix that may hold much more. Returns the local paths written.
    """
    bucket, prefix = split_uri(uri)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    dest = Path(dest)
    written = []
    with _s3_errors(uri):
        client = _client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(prefix):]
                if not rel or rel.endswith("/") or (only is not None and rel not in only):
                    continue
                target = inside(dest, rel, f"s3://{bucket}/{obj['Key']}: key")
                target.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, obj["Key"], str(target))
                written.append(target)
    return written


def read_text(uri: str) -> str | None:
    """The UTF-8 content of the object `uri`, or None when there is no such object."""
    bucket, key = split_uri(uri)
    with _s3_errors(uri):
        client = _client()
        try:
            body = client.get_object(Bucket=bucket, Key=key)["Body"]
        except client.exceptions.NoSuchKey:
            return None
        return body.read().decode("utf-8")


def write_text(uri: str, text: str) -> None:
    """Write the object `uri` in one PUT, which S3 applies atomically: readers see old or new."""
    bucket, key = split_uri(uri)
    with _s3_errors(uri):
        _client().put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"))


MAX_ATTEMPTS = 5
"""botocore's standard retry mode: throttling and transient errors retried with back-off, this many tries in all."""


def _client():
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS}))


@contextmanager
def _s3_errors(uri: str) -> Iterator[None]:
    """Turn botocore's exceptions into one-line DlxErrors that say what to fix."""
    from boto3.exceptions import S3TransferFailedError, S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        yield
    except NoCredentialsError:
        raise DlxError(f"{uri}: no AWS credentials found; run `aws configure` or set AWS_PROFILE "
                       "(or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)") from None
    except ClientError as e:
        raise DlxError(f"{uri}: {_refusal(e, uri)}") from None
    except (S3UploadFailedError, S3TransferFailedError) as e:  # boto3's transfers wrap the answer
        cause = e.__context__
        reason = _refusal(cause, uri) if isinstance(cause, ClientError) else str(e)
        raise DlxError(f"{uri}: the transfer failed ({reason}); retry") from None
    except BotoCoreError as e:
        raise DlxError(f"{uri}: cannot reach S3 ({e}); check the network and AWS_DEFAULT_REGION") from None


def _refusal(e: Any, uri: str) -> str:
    """What an S3 error answer means, and the fix."""
    error = e.response.get("Error", {})
    code = str(error.get("Code", ""))
    if code == "NoSuchBucket":
        return f"bucket {split_uri(uri)[0]} does not exist; check the bucket name"
    if code in ("NoSuchKey", "404", "NotFound"):
        return "no such object; check the key"
    if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"):
        return f"access denied ({code}); check your AWS credentials and the bucket's policy"
    return f"S3 error {code}: {error.get('Message', e)}"
