"""One boto3 session per command, and AWS failures as one-line DlxErrors.

Shared by every AWS command (SageMaker, workstation, bootstrap) so that they all find the region
and credentials the same way and word the same problems the same way. Credentials come from the
standard AWS chain (environment, profile, SSO, instance role); they are checked before the first
call, so a missing login is one clear line instead of a botocore traceback.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from components.errors import DlxError

NO_CREDENTIALS = ("no AWS credentials found; run `aws configure` (or `aws sso login`), set AWS_PROFILE, "
                  "or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
NO_REGION = ("no AWS region given: pass --region, set DLX_AWS_REGION (or AWS_DEFAULT_REGION), "
             "or put region under [aws] in dlx.toml")

_DENIED = {"AccessDenied", "AccessDeniedException", "403", "UnauthorizedOperation"}
_BAD_LOGIN = {"InvalidClientTokenId", "UnrecognizedClientException", "InvalidAccessKeyId",
              "SignatureDoesNotMatch", "AuthFailure"}
_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}


def session(region: str | None, *, credentials: bool = True) -> Any:
    """A boto3 session in ``region`` (else the AWS profile's region) whose credentials exist; with
    ``credentials`` false (a dry run that calls nothing), none are needed."""
    import boto3
    from botocore.exceptions import BotoCoreError, ProfileNotFound

    try:
        credentials_needed = credentials
        found = boto3.Session(region_name=region or None)
        credentials = found.get_credentials()
    except ProfileNotFound as exc:
        raise DlxError(f"{exc}; fix AWS_PROFILE or add the profile with `aws configure --profile NAME`") from None
    except BotoCoreError as exc:
        raise DlxError(f"cannot load AWS credentials ({_one_line(str(exc))}); log in again or run `aws configure`") from None
    if not found.region_name:
        raise DlxError(NO_REGION)
    if credentials is None and credentials_needed:
        raise DlxError(NO_CREDENTIALS)
    return found


@contextmanager
def aws_errors(what: str, hints: Mapping[str, str] | None = None) -> Iterator[None]:
    """Turn a botocore failure inside the block into ``DlxError("<what>: <problem and fix>")``.

    ``hints`` maps error codes the caller can explain better (NoSuchBucket, a missing job) to
    the text to show instead of AWS's message.
    """
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        yield
    except NoCredentialsError:
        raise DlxError(f"{what}: {NO_CREDENTIALS}") from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise DlxError(f"{what}: {_explain(str(error.get('Code', '')), str(error.get('Message', '')), hints or {})}") from None
    except BotoCoreError as exc:
        raise DlxError(f"{what}: cannot reach AWS ({_one_line(str(exc))}); check the network and the region") from None


def _explain(code: str, message: str, hints: Mapping[str, str]) -> str:
    if code in hints:
        return hints[code]
    if code in _DENIED:
        return f"access denied ({_one_line(message) or code}); grant your AWS identity that permission"
    if code in _BAD_LOGIN:
        return f"AWS rejected the credentials ({code}); check AWS_PROFILE or the access keys"
    if code in _EXPIRED:
        return "the AWS session has expired; log in again (`aws sso login`) or refresh the credentials"
    return f"{code}: {_one_line(message)}"


def _one_line(text: str) -> str:
    return " ".join(text.split())
