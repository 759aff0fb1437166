"""`dlx aws bootstrap` against moto: a private bucket, a least-privilege SageMaker role, an ECR repository."""

import json
import tomllib
from importlib.metadata import version

import pytest
from moto import mock_aws

from dlx.cli import main
from infra.config import load_settings

REGION = "eu-west-1"
BUCKET = "dlx-test-bucket"


@pytest.fixture
def aws(tmp_path, monkeypatch):
    """Moto with fake credentials; dlx.toml is tmp_path/dlx.toml; yields a client factory."""
    for var, value in [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                       ("AWS_DEFAULT_REGION", REGION), ("DLX_CONFIG", str(tmp_path / "dlx.toml"))]:
        monkeypatch.setenv(var, value)
    for var in ["AWS_PROFILE", "AWS_SESSION_TOKEN", "DLX_AWS_REGION", "DLX_BUCKET", "DLX_ROLE_ARN", "DLX_IMAGE_URI"]:
        monkeypatch.delenv(var, raising=False)
    with mock_aws():
        import boto3

        yield lambda service, region=REGION: boto3.client(service, region_name=region)


def bootstrap(capsys, *argv):
    """Run `dlx aws bootstrap ARGV…`; (exit status, stdout, stderr)."""
    status = main(["aws", "bootstrap", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def printed_settings(out: str) -> dict:
    """The [aws] table the command printed for dlx.toml."""
    block = out[out.index("[aws]\n"):].split("\n\n")[0]
    return tomllib.loads(block)["aws"]


def test_bucket_is_private_encrypted_and_versioned(aws, capsys):
    status, out, err = bootstrap(capsys, "--bucket", BUCKET)
    assert status == 0, err
    s3 = aws("s3")
    assert s3.get_bucket_location(Bucket=BUCKET)["LocationConstraint"] == REGION
    assert s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
    [rule] = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    assert {"Key": "project", "Value": "dlx"} in s3.get_bucket_tagging(Bucket=BUCKET)["TagSet"]
    [deny] = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])["Statement"]
    assert deny == {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                    "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


def test_role_trusts_sagemaker_and_reaches_only_its_bucket_repository_and_logs(aws, capsys):
    bootstrap(capsys, "--bucket", BUCKET)
    iam = aws("iam")
    role = iam.get_role(RoleName="dlx-sagemaker")["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole",
         "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"},
                       "ArnLike": {"aws:SourceArn": f"arn:aws:sagemaker:{REGION}:123456789012:*"}}}]
    assert iam.list_attached_role_policies(RoleName="dlx-sagemaker")["AttachedPolicies"] == []
    assert iam.list_role_policies(RoleName="dlx-sagemaker")["PolicyNames"] == ["dlx-sagemaker-access"]
    statements = iam.get_role_policy(RoleName="dlx-sagemaker", PolicyName="dlx-sagemaker-access")["PolicyDocument"]["Statement"]

    repo_arn = aws("ecr").describe_repositories(repositoryNames=["dlx"])["repositories"][0]["repositoryArn"]
    scoped = {f"arn:aws:s3:::{BUCKET}/*", f"arn:aws:s3:::{BUCKET}", repo_arn,
              f"arn:aws:logs:{REGION}:123456789012:log-group:/aws/sagemaker/*"}
    granted = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        resources = [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
        assert not any("*" in action for action in actions)
        if "*" in resources:
            assert (actions, resources) == (["ecr:GetAuthorizationToken"], ["*"])
        else:
            assert set(resources) <= scoped
        for action in actions:
            granted.setdefault(action, set()).update(resources)
    assert granted["s3:GetObject"] == granted["s3:PutObject"] == {f"arn:aws:s3:::{BUCKET}/*"}
    assert granted["s3:ListBucket"] == {f"arn:aws:s3:::{BUCKET}"}
    assert granted["ecr:BatchGetImage"] == granted["ecr:GetDownloadUrlForLayer"] == {repo_arn}
    assert granted["logs:PutLogEvents"] == {f"arn:aws:logs:{REGION}:123456789012:log-group:/aws/sagemaker/*"}


def test_repository_scans_on_push(aws, capsys):
    bootstrap(capsys, "--bucket", BUCKET, "--repository", "dlx-train")
    ecr = aws("ecr")
    repo = ecr.describe_repositories(repositoryNames=["dlx-train"])["repositories"][0]
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert {"Key": "project", "Value": "dlx"} in ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"]


def test_printed_settings_are_the_created_resources(aws, capsys, monkeypatch):
    status, out, _ = bootstrap(capsys, "--bucket", BUCKET)
    values = printed_settings(out)
    assert values == {
        "region": REGION, "bucket": BUCKET,
        "role_arn": aws("iam").get_role(RoleName="dlx-sagemaker")["Role"]["Arn"],
        "image_uri": aws("ecr").describe_repositories(repositoryNames=["dlx"])["repositories"][0]["repositoryUri"]
                     + f":{version('dlx')}",
    }
    for line in out.splitlines():
        if line.strip().startswith("export "):
            name, _, value = line.strip().removeprefix("export ").partition("=")
            monkeypatch.setenv(name, value)
    settings = load_settings()
    assert {key: getattr(settings, key) for key in values} == values


def test_second_run_reuses_everything(aws, capsys):
    aws("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    status, first, _ = bootstrap(capsys, "--bucket", BUCKET)
    assert status == 0
    assert (f"bucket      {BUCKET}: exists, reused, public access blocked, SSE-S3 encryption on, versioning on, "
            "TLS-only policy") in first
    status, second, _ = bootstrap(capsys, "--bucket", BUCKET)
    assert status == 0 and "created" not in second and "inline policy" not in second
    assert second.count("exists, reused\n") == 3
    assert printed_settings(second) == printed_settings(first)
    assert len(aws("iam").list_roles()["Roles"]) == 1
    assert len(aws("ecr").describe_repositories()["repositories"]) == 1


def test_us_east_1_bucket_has_no_location_constraint(aws, capsys):
    assert bootstrap(capsys, "--bucket", BUCKET, "--region", "us-east-1")[0] == 0
    assert aws("s3", "us-east-1").get_bucket_location(Bucket=BUCKET)["LocationConstraint"] is None
    assert aws("ecr", "us-east-1").describe_repositories(repositoryNames=["dlx"])["repositories"]


def test_write_config_keeps_the_other_keys(aws, capsys, tmp_path):
    config = tmp_path / "dlx.toml"
    config.write_text('# team settings\n[aws]\nregion = "us-west-2"  # old\nbucket = "old"\nprofile = "ml"\n\n'
                      '[kubeflow]\nhost = "https://kfp.example.com"\n')
    status, out, _ = bootstrap(capsys, "--bucket", BUCKET, "--write-config")
    assert status == 0 and f"wrote them to [aws] in {config}" in out
    written = tomllib.loads(config.read_text())
    assert written["aws"] == {**printed_settings(out), "profile": "ml"}
    assert written["kubeflow"] == {"host": "https://kfp.example.com"}
    assert config.read_text().startswith("# team settings\n")
    assert load_settings().role_arn == written["aws"]["role_arn"]


def test_bucket_in_another_region(aws, capsys):
    aws("s3", "us-west-2").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    status, _, err = bootstrap(capsys, "--bucket", BUCKET)
    assert status == 2 and err == f"dlx: error: bucket {BUCKET} is in us-west-2, not {REGION}; pass --region us-west-2 or another --bucket\n"


def test_bad_bucket_name_needs_no_aws(capsys):
    status, _, err = bootstrap(capsys, "--bucket", "My_Bucket")
    assert status == 2 and err.startswith("dlx: error: --bucket My_Bucket: not a valid S3 bucket name") and err.count("\n") == 1


def test_missing_credentials(no_aws_credentials, capsys, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    status, out, err = bootstrap(capsys, "--bucket", BUCKET)
    assert status == 2 and err.startswith("dlx: error: ") and "no AWS credentials found" in err and err.count("\n") == 1


def test_an_older_role_and_repository_are_tightened(aws, capsys):
    """A role that trusts SageMaker without conditions, a repository with mutable tags: made safe, kept."""
    iam, ecr = aws("iam"), aws("ecr")
    iam.create_role(RoleName="dlx-sagemaker", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    ecr.create_repository(repositoryName="dlx", imageTagMutability="MUTABLE")
    status, out, _ = bootstrap(capsys, "--bucket", BUCKET)
    assert status == 0
    assert "trust limited to this account's SageMaker jobs" in out and "tags made immutable" in out
    condition = iam.get_role(RoleName="dlx-sagemaker")["Role"]["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]
    assert condition["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    assert ecr.describe_repositories(repositoryNames=["dlx"])["repositories"][0]["imageTagMutability"] == "IMMUTABLE"
