"""`dlx workstation` against moto's EC2: tags, SSH from one address only, key files, the whole lifecycle."""

import base64
import io
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest
from moto import mock_aws

from components.errors import DlxError
from dlx.cli import main
from infra import workstation

REGION = "eu-west-1"
MY_IP = "203.0.113.7"
STAND_IN_AMI = "ami-03cf127a"  # one of moto's built-in images (x86_64, 15 GB root); moto lacks the DLAMI parameter
REAL_DLAMI_LOOKUP = workstation.latest_dlami
OURS = [{"Name": "tag:project", "Values": ["dlx"]}, {"Name": "tag:dlx:workstation", "Values": ["main"]}]
TOKEN = "a" * 64


class FakeSsh:
    """Stands in for `ssh … sudo cat /etc/dlx/jupyter.env`: refused until ``ready``, then the token."""

    def __init__(self) -> None:
        self.ready = False
        self.commands: list[list[str]] = []

    def __call__(self, command, **kwargs):
        self.commands.append(command)
        out = f"JUPYTER_TOKEN={TOKEN}\n" if self.ready else ""
        return subprocess.CompletedProcess(command, 0 if self.ready else 255, out, "")


@pytest.fixture
def ec2(tmp_path, monkeypatch):
    """Moto's EC2 with fake credentials, keys under tmp_path/keys and the DLAMI lookup stubbed."""
    for var, value in [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                       ("AWS_DEFAULT_REGION", REGION), ("DLX_KEY_DIR", str(tmp_path / "keys")),
                       ("DLX_CONFIG", str(tmp_path / "dlx.toml")),
                       ("DLX_WORKSTATION_SOURCE", "git+https://example.org/dlx.git@main")]:
        monkeypatch.setenv(var, value)
    for var in ["AWS_PROFILE", "AWS_SESSION_TOKEN", "DLX_AWS_REGION"]:
        monkeypatch.delenv(var, raising=False)
    with mock_aws():
        import boto3

        monkeypatch.setattr(workstation, "latest_dlami", lambda ssm: STAND_IN_AMI)
        monkeypatch.setattr(workstation.subprocess, "run", FakeSsh())
        yield boto3.client("ec2", region_name=REGION)


def dlx(capsys, *argv):
    """Run `dlx workstation ARGV…`; (exit status, stdout, stderr)."""
    status = main(["workstation", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def keys(tmp_path, name="main"):
    return tmp_path / "keys" / f"dlx-{name}-{REGION}.pem", tmp_path / "keys" / f"dlx-{name}-{REGION}.jupyter-token"


def instances(ec2, filters=OURS, states=("pending", "running", "stopping", "stopped")):
    filters = filters + [{"Name": "instance-state-name", "Values": list(states)}]
    return [i for r in ec2.describe_instances(Filters=filters)["Reservations"] for i in r["Instances"]]


def ingress(ec2, filters=OURS):
    return [p for g in ec2.describe_security_groups(Filters=filters)["SecurityGroups"] for p in g["IpPermissions"]]


def assert_one_line_error(status, err, *fragments):
    assert status == 2
    assert err.startswith("dlx: error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err


def test_up_launches_a_tagged_instance_with_jupyter_behind_ssh(ec2, capsys, tmp_path):
    status, out, err = dlx(capsys, "up", "--my-ip", MY_IP)
    assert status == 0, err
    [instance] = instances(ec2)
    assert instance["InstanceType"] == "g5.xlarge" and instance["State"]["Name"] == "running"
    assert instance["ImageId"] == STAND_IN_AMI
    assert {"Key": "Name", "Value": "dlx-main"} in instance["Tags"]
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    [volume] = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [instance["InstanceId"]]}])["Volumes"]
    assert (volume["Size"], volume["VolumeType"], volume["Encrypted"]) == (100, "gp3", True)
    assert {"Key": "dlx:workstation", "Value": "main"} in volume["Tags"]

    key_file, token_file = keys(tmp_path)
    assert key_file.stat().st_mode & 0o777 == 0o600 and key_file.read_text().startswith("-----BEGIN")
    assert not token_file.exists()  # the instance makes its token; SSH could not fetch it while it boots
    [pair] = ec2.describe_key_pairs(Filters=OURS)["KeyPairs"]
    assert pair["KeyName"] == instance["KeyName"] == "dlx-main"

    script = base64.b64decode(ec2.describe_instance_attribute(
        InstanceId=instance["InstanceId"], Attribute="userData")["UserData"]["Value"]).decode()
    assert script.startswith("#!/bin/bash\n") and "openssl rand -hex 32" in script
    assert "JUPYTER_TOKEN=" not in script.replace("'JUPYTER_TOKEN=%s", "")  # no secret in user data
    assert "--ServerApp.ip=127.0.0.1 --ServerApp.port=8888" in script
    assert "systemctl enable --now dlx-jupyter.service" in script and "DLX_SOURCE=git+https://" in script

    [group] = ec2.describe_security_groups(Filters=OURS)["SecurityGroups"]
    assert [g["GroupId"] for g in instance["SecurityGroups"]] == [group["GroupId"]]
    assert [(p["IpProtocol"], p["FromPort"], p["ToPort"], [r["CidrIp"] for r in p["IpRanges"]], p["Ipv6Ranges"])
            for p in group["IpPermissions"]] == [("tcp", 22, 22, [f"{MY_IP}/32"], [])]

    dns = instance["PublicDnsName"]
    assert f"ssh -i {key_file} -N -L 8888:localhost:8888 ubuntu@{dns}" in out
    assert "SSH could not fetch it yet" in out and "?token=" not in out


def test_second_up_launches_nothing_and_moves_ssh_to_the_new_address(ec2, capsys):
    assert dlx(capsys, "up", "--my-ip", MY_IP)[0] == 0
    [first] = instances(ec2)
    status, out, _ = dlx(capsys, "up", "--my-ip", "198.51.100.4")
    assert status == 0 and "already exists" in out
    assert [i["InstanceId"] for i in instances(ec2)] == [first["InstanceId"]]
    assert [[r["CidrIp"] for r in p["IpRanges"]] for p in ingress(ec2)] == [["198.51.100.4/32"]]
    assert len(ec2.describe_key_pairs(Filters=OURS)["KeyPairs"]) == 1
    every_range = [r["CidrIp"] for g in ec2.describe_security_groups()["SecurityGroups"]
                   for p in g["IpPermissions"] for r in p["IpRanges"]]
    assert "0.0.0.0/0" not in every_range


def test_stop_start_status_and_tunnel(ec2, capsys, tmp_path):
    dlx(capsys, "up", "--my-ip", MY_IP)
    status, out, _ = dlx(capsys, "stop")
    assert status == 0 and instances(ec2)[0]["State"]["Name"] == "stopped" and "stopped" in out

    assert_one_line_error(*dlx(capsys, "up", "--my-ip", MY_IP)[::2], "is stopped", "dlx workstation start --name main")
    assert_one_line_error(*dlx(capsys, "tunnel")[::2], "is stopped", "dlx workstation start")
    assert len(instances(ec2)) == 1

    status, out, _ = dlx(capsys, "start")
    [instance] = instances(ec2)
    assert status == 0 and instance["State"]["Name"] == "running"
    assert f"ubuntu@{instance['PublicDnsName']}" in out

    status, out, _ = dlx(capsys, "status")
    assert status == 0
    assert f"{instance['InstanceId']}  running  g5.xlarge (on-demand)  {REGION}  launched " in out
    assert instance["PublicDnsName"] in out

    token_file = keys(tmp_path)[1]
    status, out, _ = dlx(capsys, "tunnel")
    assert status == 0 and "sudo cat /etc/dlx/jupyter.env" in out and "?token=" not in out
    ssh = workstation.subprocess.run
    ssh.ready = True  # first boot done: the token is fetched over SSH once, then read locally
    status, out, _ = dlx(capsys, "tunnel")
    assert status == 0 and f"http://localhost:8888/lab?token={TOKEN}" in out
    assert token_file.read_text() == TOKEN + "\n" and token_file.stat().st_mode & 0o777 == 0o600
    fetch = ssh.commands[-1]
    assert fetch[:3] == ["ssh", "-i", str(keys(tmp_path)[0])] and "BatchMode=yes" in fetch
    assert fetch[-2:] == [f"ubuntu@{instance['PublicDnsName']}", "sudo cat /etc/dlx/jupyter.env"]
    count = len(ssh.commands)
    assert dlx(capsys, "tunnel")[0] == 0 and len(ssh.commands) == count


def test_spot_workstation(ec2, capsys):
    assert dlx(capsys, "up", "--my-ip", MY_IP, "--spot", "--instance-type", "g4dn.xlarge", "--volume-gb", "60")[0] == 0
    [instance] = instances(ec2)
    assert instance["InstanceLifecycle"] == "spot" and instance["InstanceType"] == "g4dn.xlarge"
    assert "g4dn.xlarge (spot)" in dlx(capsys, "status")[1]


def test_down_removes_what_up_created_and_nothing_else(ec2, capsys, tmp_path):
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    bystander = ec2.create_security_group(GroupName="someone-else", Description="not dlx", VpcId=vpc)["GroupId"]
    ec2.create_key_pair(KeyName="someone-elses-key")
    workstation.subprocess.run.ready = True  # both tokens fetched: down must remove main's token file too
    dlx(capsys, "up", "--my-ip", MY_IP)
    dlx(capsys, "up", "--my-ip", MY_IP, "--name", "other")
    [main_instance] = instances(ec2)
    assert all(path.exists() for path in keys(tmp_path))

    status, out, _ = dlx(capsys, "down")
    assert status == 0 and f"removed instance {main_instance['InstanceId']}" in out
    assert instances(ec2) == [] and instances(ec2, states=("terminated",)) != []
    assert ec2.describe_security_groups(Filters=OURS)["SecurityGroups"] == []
    assert ec2.describe_key_pairs(Filters=OURS)["KeyPairs"] == []
    assert not any(path.exists() for path in keys(tmp_path))

    other = [{"Name": "tag:dlx:workstation", "Values": ["other"]}]
    assert len(instances(ec2, other)) == 1 and all(path.exists() for path in keys(tmp_path, "other"))
    assert len(ec2.describe_security_groups(Filters=other)["SecurityGroups"]) == 1
    assert {p["KeyName"] for p in ec2.describe_key_pairs()["KeyPairs"]} == {"someone-elses-key", "dlx-other"}
    assert ec2.describe_security_groups(GroupIds=[bystander])["SecurityGroups"]

    assert "no workstation named main" in dlx(capsys, "status")[1]
    assert "nothing removed" in dlx(capsys, "down")[1]


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0"])
def test_ssh_from_the_whole_internet_is_refused(ec2, capsys, cidr):
    assert_one_line_error(*dlx(capsys, "up", "--my-ip", cidr)[::2], "whole internet")
    assert ec2.describe_security_groups(Filters=[{"Name": "tag:project", "Values": ["dlx"]}])["SecurityGroups"] == []
    assert instances(ec2, filters=[]) == []


def test_addresses_are_normalised():
    assert workstation.normalise_cidr(" 203.0.113.7 ") == "203.0.113.7/32"
    assert workstation.normalise_cidr("198.51.100.0/24") == "198.51.100.0/24"
    for bad in ["2001:db8::1", "my-laptop", "0.0.0.0/0"]:
        with pytest.raises(DlxError, match="--my-ip"):
            workstation.normalise_cidr(bad)


def test_address_detection(monkeypatch):
    monkeypatch.setattr("urllib.request.urlopen", lambda url, timeout: io.BytesIO(b"203.0.113.9\n"))
    assert workstation.caller_cidr(None) == "203.0.113.9/32"
    assert workstation.caller_cidr("198.51.100.4") == "198.51.100.4/32"


def test_failed_address_detection_asks_for_my_ip(ec2, capsys, monkeypatch):
    def offline(url, timeout):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    assert_one_line_error(*dlx(capsys, "up")[::2], "could not detect your public IP", "pass it with --my-ip")
    assert instances(ec2, filters=[]) == []


@pytest.mark.parametrize("args, message", [
    (["--instance-type", "g5.huge"], "instance type g5.huge: unknown in eu-west-1"),
    (["--instance-type", "g5g.xlarge"], "runs arm64 but the AMI is x86_64"),
    (["--ami", "ami-0000000000000000f"], "AMI ami-0000000000000000f: not found in eu-west-1"),
    (["--volume-gb", "1"], "--volume-gb 1 is smaller than the AMI's"),
    (["--name", "My_Box"], "workstation name 'My_Box' is not allowed"),
])
def test_bad_requests_fail_before_anything_is_created(ec2, capsys, args, message):
    assert_one_line_error(*dlx(capsys, "up", "--my-ip", MY_IP, *args)[::2], message)
    tagged = [{"Name": "tag:project", "Values": ["dlx"]}]
    assert ec2.describe_key_pairs(Filters=tagged)["KeyPairs"] == []
    assert ec2.describe_security_groups(Filters=tagged)["SecurityGroups"] == []
    assert instances(ec2, filters=[]) == []


def test_the_ami_comes_from_the_public_ssm_parameter_unless_given(ec2, capsys, monkeypatch):
    monkeypatch.setattr(workstation, "latest_dlami", REAL_DLAMI_LOOKUP)  # moto has no such public parameter
    assert_one_line_error(*dlx(capsys, "up", "--my-ip", MY_IP)[::2], workstation.DLAMI_PARAMETER, "--ami")
    assert instances(ec2, filters=[]) == []
    assert dlx(capsys, "up", "--my-ip", MY_IP, "--ami", STAND_IN_AMI)[0] == 0
    assert [i["ImageId"] for i in instances(ec2)] == [STAND_IN_AMI]


def test_no_default_vpc(ec2, capsys):
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]:
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    ec2.delete_vpc(VpcId=vpc)
    assert_one_line_error(*dlx(capsys, "up", "--my-ip", MY_IP)[::2], "eu-west-1 has no default VPC",
                          "aws ec2 create-default-vpc")


def test_key_pair_whose_private_key_is_gone(ec2, capsys, tmp_path):
    tags = [{"Key": "project", "Value": "dlx"}, {"Key": "dlx:workstation", "Value": "main"}]
    ec2.create_key_pair(KeyName="dlx-main", TagSpecifications=[{"ResourceType": "key-pair", "Tags": tags}])
    assert_one_line_error(*dlx(capsys, "up", "--my-ip", MY_IP)[::2], "its private key", str(keys(tmp_path)[0]),
                          "dlx workstation down --name main")
    assert instances(ec2, filters=[]) == []


def test_missing_credentials(no_aws_credentials, tmp_path, capsys, monkeypatch):
    for var, value in [("AWS_DEFAULT_REGION", REGION), ("DLX_KEY_DIR", str(tmp_path / "keys")),
                       ("DLX_WORKSTATION_SOURCE", "git+https://example.org/dlx.git@main")]:
        monkeypatch.setenv(var, value)
    assert_one_line_error(*dlx(capsys, "up", "--my-ip", MY_IP)[::2], "no AWS credentials found")
    assert not (tmp_path / "keys").exists()


def test_security_group_deletion_waits_for_the_terminated_instance_to_let_go(monkeypatch):
    from botocore.exceptions import ClientError

    class EC2:
        calls = 0

        def delete_security_group(self, GroupId):
            self.calls += 1
            if self.calls < 3:
                raise ClientError({"Error": {"Code": "DependencyViolation", "Message": "in use"}}, "DeleteSecurityGroup")

    monkeypatch.setattr(workstation.time, "sleep", lambda seconds: None)
    fake = EC2()
    workstation._delete_security_group(fake, "sg-1")
    assert fake.calls == 3


def test_the_cli_loads_no_aws_code_until_an_aws_command_runs():
    code = "import sys, dlx.cli; print([m for m in ('boto3', 'botocore', 'infra.workstation', 'infra.bootstrap') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"


def test_up_without_a_source_says_how_to_give_one(ec2, capsys, monkeypatch):
    monkeypatch.delenv("DLX_WORKSTATION_SOURCE")
    assert_one_line_error(*dlx(capsys, "up", "--my-ip", MY_IP)[::2], "no workstation source given", "--source",
                          "DLX_WORKSTATION_SOURCE")
    assert instances(ec2) == []
