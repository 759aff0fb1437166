"""The AWS resources SageMaker runs need, made once per account and region.

An S3 bucket (public access blocked, default encryption, versioning, a policy that refuses any
request not made over TLS), the SageMaker execution role scoped to that bucket and to one ECR
repository, and that repository (scan on push, immutable tags: a pushed tag always names the
same image, so a job cannot silently run a different build; push each build under a new tag).
The role's trust policy lets SageMaker assume it only on behalf of this account's jobs in this
region (aws:SourceAccount, aws:SourceArn: the confused-deputy guard). Running it again reuses
what exists, turns on whatever protection is missing and resets the role's trust and inline
policies to the ones below; it never deletes anything.
"""
from __future__ import annotations

import json
import re
import tomllib
from importlib.metadata import version
from pathlib import Path

from botocore.exceptions import ClientError

from components.errors import DlxError
from infra.aws import aws_errors, session
from infra.config import load_settings

POLICY_NAME = "dlx-sagemaker-access"
TAGS = [{"Key": "project", "Value": "dlx"}]
TLS_SID = "DenyInsecureTransport"


def trust_policy(partition: str, region: str, account: str) -> dict:
    """SageMaker may assume the role, only for this account's SageMaker resources in this region."""
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": account},
                      "ArnLike": {"aws:SourceArn": f"arn:{partition}:sagemaker:{region}:{account}:*"}}}]}


def tls_statement(partition: str, bucket: str) -> dict:
    return {"Sid": TLS_SID, "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [f"arn:{partition}:s3:::{bucket}", f"arn:{partition}:s3:::{bucket}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_ALL_BLOCKED = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}


def role_policy(partition: str, region: str, account: str, bucket: str, repository: str) -> dict:
    """What a training job may do: its bucket's objects, its log groups, pulling its one image.

    ecr:GetAuthorizationToken is the one action on "*": AWS defines no resource for it.
    """
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "BucketObjects", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
         "Resource": f"arn:{partition}:s3:::{bucket}/*"},
        {"Sid": "Bucket", "Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
         "Resource": f"arn:{partition}:s3:::{bucket}"},
        {"Sid": "TrainingLogs", "Effect": "Allow",
         "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
         "Resource": f"arn:{partition}:logs:{region}:{account}:log-group:/aws/sagemaker/*"},
        {"Sid": "PullImage", "Effect": "Allow",
         "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
         "Resource": f"arn:{partition}:ecr:{region}:{account}:repository/{repository}"},
        {"Sid": "RegistryLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
    ]}


def bootstrap(bucket: str, *, region: str | None = None, role_name: str = "dlx-sagemaker",
              repository: str = "dlx") -> dict[str, str]:
    """Create or reuse the three resources; return the [aws] settings that point at them."""
    if not _BUCKET_NAME.fullmatch(bucket) or ".." in bucket:
        raise DlxError(f"--bucket {bucket}: not a valid S3 bucket name; use 3-63 lowercase letters, digits, "
                       "dots and dashes, starting and ending with a letter or digit")
    aws = session(region or load_settings().region)
    region = aws.region_name
    with aws_errors("dlx aws bootstrap"):
        identity = aws.client("sts").get_caller_identity()
        partition, account = identity["Arn"].split(":")[1], identity["Account"]
        print(f"bootstrapping account {account} in {region}")
        _ensure_bucket(aws.client("s3"), bucket, region, partition)
        uri = _ensure_repository(aws.client("ecr"), repository)
        role_arn = _ensure_role(aws.client("iam"), role_name, role_policy(partition, region, account, bucket, repository),
                                trust_policy(partition, region, account))
    return {"region": region, "bucket": bucket, "role_arn": role_arn, "image_uri": f"{uri}:{version('dlx')}"}


def _ensure_bucket(s3, bucket: str, region: str, partition: str) -> None:
    with aws_errors(f"bucket {bucket}", {"403": "exists but you may not read it: bucket names are global and another "
                                                "account may own it; pick another --bucket"}):
        head = _unless_missing(("404", "NoSuchBucket", "NotFound"), s3.head_bucket, Bucket=bucket)
    if head is None:
        location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **location)
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": TAGS})
        done = ["created"]
    elif head.get("BucketRegion", region) != region:
        raise DlxError(f"bucket {bucket} is in {head['BucketRegion']}, not {region}; "
                       f"pass --region {head['BucketRegion']} or another --bucket")
    else:
        done = ["exists, reused"]
    blocked = _unless_missing(("NoSuchPublicAccessBlockConfiguration",), s3.get_public_access_block, Bucket=bucket)
    if not all((blocked or {}).get("PublicAccessBlockConfiguration", {}).get(key) for key in _ALL_BLOCKED):
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=_ALL_BLOCKED)
        done.append("public access blocked")
    if _unless_missing(("ServerSideEncryptionConfigurationNotFoundError",), s3.get_bucket_encryption, Bucket=bucket) is None:
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]})
        done.append("SSE-S3 encryption on")
    if s3.get_bucket_versioning(Bucket=bucket).get("Status") != "Enabled":
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        done.append("versioning on")
    found = _unless_missing(("NoSuchBucketPolicy",), s3.get_bucket_policy, Bucket=bucket)
    policy = json.loads(found["Policy"]) if found else {"Version": "2012-10-17", "Statement": []}
    if not any(statement.get("Sid") == TLS_SID for statement in policy["Statement"]):
        policy["Statement"].append(tls_statement(partition, bucket))
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
        done.append("TLS-only policy")
    print(f"  bucket      {bucket}: {', '.join(done)}")


def _ensure_repository(ecr, name: str) -> str:
    found = _unless_missing(("RepositoryNotFoundException",), ecr.describe_repositories, repositoryNames=[name])
    if found is None:
        repo = ecr.create_repository(repositoryName=name, imageScanningConfiguration={"scanOnPush": True},
                                     imageTagMutability="IMMUTABLE", tags=TAGS)["repository"]
        done = ["created, scan on push, immutable tags"]
    else:
        repo, done = found["repositories"][0], ["exists, reused"]
        if not repo.get("imageScanningConfiguration", {}).get("scanOnPush"):
            ecr.put_image_scanning_configuration(repositoryName=name, imageScanningConfiguration={"scanOnPush": True})
            done.append("scan on push turned on")
        if repo.get("imageTagMutability") != "IMMUTABLE":
            ecr.put_image_tag_mutability(repositoryName=name, imageTagMutability="IMMUTABLE")
            done.append("tags made immutable")
    print(f"  repository  {repo['repositoryUri']}: {', '.join(done)}")
    return repo["repositoryUri"]


def _ensure_role(iam, name: str, policy: dict, trust: dict) -> str:
    found = _unless_missing(("NoSuchEntity",), iam.get_role, RoleName=name)
    if found is None:
        role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust), Tags=TAGS,
                               Description="SageMaker jobs run by dlx: one bucket, one ECR repository, their logs")["Role"]
        done = ["created"]
    elif "sagemaker.amazonaws.com" not in json.dumps(found["Role"]["AssumeRolePolicyDocument"]):
        raise DlxError(f"role {name} exists but SageMaker may not assume it; pass another --role-name")
    else:
        role, done = found["Role"], ["exists, reused"]
        if _document(role["AssumeRolePolicyDocument"]) != trust:
            iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
            done.append("trust limited to this account's SageMaker jobs")
    current = _unless_missing(("NoSuchEntity",), iam.get_role_policy, RoleName=name, PolicyName=POLICY_NAME)
    if current is None or current["PolicyDocument"] != policy:
        iam.put_role_policy(RoleName=name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(policy))
        done.append(f"inline policy {POLICY_NAME} {'set' if current is None else 'updated'}")
    print(f"  role        {role['Arn']}: {', '.join(done)}")
    return role["Arn"]


def _document(value: str | dict) -> dict:
    """A policy document as IAM returns it (a dict, or URL-encoded JSON text)."""
    from urllib.parse import unquote

    return value if isinstance(value, dict) else json.loads(unquote(value))


def _unless_missing(codes: tuple[str, ...], call, **kwargs) -> dict | None:
    """``call(**kwargs)``'s answer, or None when AWS says the thing is missing (one of ``codes``)."""
    try:
        return call(**kwargs)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in codes:
            raise
        return None


def config_text(values: dict[str, str]) -> str:
    """The [aws] table for dlx.toml."""
    return "[aws]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())


def write_config(values: dict[str, str], path: Path) -> None:
    """Set ``values`` under [aws] in the TOML file ``path``, leaving every other line as it was."""
    load_settings(path)  # refuses a file that is not valid TOML
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    header = re.compile(r"\s*\[\s*aws\s*\]\s*(#.*)?")
    start = next((i for i, line in enumerate(lines) if header.fullmatch(line)), None)
    if start is None:
        lines += ([""] if lines else []) + ["[aws]"]
        start = len(lines) - 1
    end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    pending = dict(values)
    for i in range(start + 1, end):
        key = lines[i].split("=", 1)[0].strip()
        if "=" in lines[i] and key in pending:
            lines[i] = f"{key} = {json.dumps(pending.pop(key))}"
    lines[end:end] = [f"{key} = {json.dumps(value)}" for key, value in pending.items()]
    text = "\n".join(lines) + "\n"
    try:
        table = tomllib.loads(text).get("aws", {})
    except tomllib.TOMLDecodeError:
        table = {}
    if any(table.get(key) != value for key, value in values.items()):
        raise DlxError(f"{path}: could not update its [aws] table automatically; add the printed values there yourself")
    path.write_text(text, encoding="utf-8")
