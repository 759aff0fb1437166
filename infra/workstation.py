"""An EC2 GPU instance for interactive work: JupyterLab on 127.0.0.1, reached through an SSH tunnel.

Everything `up` creates (instance, root volume, spot request, security group, key pair) carries
the tags project=dlx and dlx:workstation=NAME, and every other command finds its resources by
those tags alone, so `down` removes what `up` made and nothing else. AWS resources are regional,
so the local files carry the region too: KEY_DIR/dlx-NAME-REGION.pem (the private key) and
KEY_DIR/dlx-NAME-REGION.jupyter-token, both readable by their owner only.

SSH is the only way in: the security group admits 22/tcp from the caller's address alone, and
JupyterLab listens on localhost with a token, so nothing on the instance faces the internet. The
token is made on the instance at first boot (never in user data, which anything on the instance
reaching the metadata service, and anyone allowed ec2:DescribeInstanceAttribute, can read) and
fetched once over SSH into the local token file.
"""
from __future__ import annotations

import ipaddress
import os
import re
import shlex
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError, WaiterError

from components.errors import DlxError
from infra.aws import aws_errors, session
from infra.config import load_settings

DLAMI_PARAMETER = "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id"
"""Public SSM parameter AWS moves to each new "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04)"."""
CHECKIP_URL = "https://checkip.amazonaws.com"
SSH_USER = "ubuntu"
JUPYTER_PORT = 8888
_LIVE_STATES = ["pending", "running", "stopping", "stopped"]
_WAIT = {"Delay": 5, "MaxAttempts": 120}

_SETUP_SCRIPT = r"""
# Runs once, as root, on the first boot. Progress: /var/log/dlx-setup.log on the instance.
set -euo pipefail
exec >>/var/log/dlx-setup.log 2>&1
install -d -m 755 /etc/dlx
(umask 077 && printf 'JUPYTER_TOKEN=%s\n' "$(openssl rand -hex 32)" >/etc/dlx/jupyter.env)
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update
apt-get -o DPkg::Lock::Timeout=600 install -y python3.11 python3.11-venv
install -d -o ubuntu -g ubuntu /home/ubuntu/work
sudo -u ubuntu -H python3.11 -m venv /home/ubuntu/dlx-venv
sudo -u ubuntu -H /home/ubuntu/dlx-venv/bin/pip install --upgrade pip
sudo -u ubuntu -H /home/ubuntu/dlx-venv/bin/pip install "$DLX_SOURCE" jupyterlab==4.6.6 ipykernel==7.4.0
cat >/etc/systemd/system/dlx-jupyter.service <<'UNIT'
[Unit]
Description=JupyterLab for dlx on 127.0.0.1 only (reach it through an SSH tunnel)
Wants=network-online.target
After=network-online.target

[Service]
User=ubuntu
WorkingDirectory=/home/ubuntu/work
EnvironmentFile=/etc/dlx/jupyter.env
ExecStart=/home/ubuntu/dlx-venv/bin/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.port=8888 --ServerApp.port_retries=0 --ServerApp.open_browser=False
Restart=on-failure

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable --now dlx-jupyter.service
echo "dlx workstation ready"
"""


@dataclass(frozen=True)
class Workstation:
    """One workstation's identity: its name, region (via the session) and where its secrets live."""

    name: str
    key_dir: Path
    session: Any = field(repr=False, compare=False)

    @property
    def region(self) -> str:
        return self.session.region_name

    @property
    def resource_name(self) -> str:
        return f"dlx-{self.name}"

    @property
    def key_file(self) -> Path:
        return self.key_dir / f"dlx-{self.name}-{self.region}.pem"

    @property
    def token_file(self) -> Path:
        return self.key_dir / f"dlx-{self.name}-{self.region}.jupyter-token"

    @property
    def tags(self) -> list[dict[str, str]]:
        return [{"Key": "project", "Value": "dlx"}, {"Key": "dlx:workstation", "Value": self.name},
                {"Key": "Name", "Value": self.resource_name}]

    @property
    def tag_filters(self) -> list[dict[str, Any]]:
        return [{"Name": "tag:project", "Values": ["dlx"]}, {"Name": "tag:dlx:workstation", "Values": [self.name]}]

    def ec2(self):
        return self.session.client("ec2")


@dataclass(frozen=True)
class Instance:
    """The facts the commands print about the workstation's EC2 instance."""

    id: str
    state: str
    type: str
    public_dns: str
    launch_time: datetime
    spot: bool

    @classmethod
    def from_api(cls, item: dict) -> Instance:
        return cls(id=item["InstanceId"], state=item["State"]["Name"], type=item["InstanceType"],
                   public_dns=item.get("PublicDnsName") or item.get("PublicIpAddress") or "",
                   launch_time=item["LaunchTime"], spot=item.get("InstanceLifecycle") == "spot")


def open_workstation(name: str, region: str | None = None, key_dir: str | Path | None = None) -> Workstation:
    """The workstation ``name`` in ``region``; key_dir defaults to $DLX_KEY_DIR, then ~/.ssh."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,31}", name):
        raise DlxError(f"workstation name '{name}' is not allowed: use 1-32 lowercase letters, digits and dashes")
    directory = Path(key_dir or os.environ.get("DLX_KEY_DIR") or Path.home() / ".ssh").expanduser()
    return Workstation(name=name, key_dir=directory, session=session(region or load_settings().region))


def normalise_cidr(text: str) -> str:
    """A bare IPv4 address becomes /32; a network is kept; the whole internet is refused."""
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise DlxError(f"--my-ip {text}: not an IPv4 address or CIDR; pass your public address, e.g. 203.0.113.7") from None
    if network.prefixlen == 0:
        raise DlxError(f"--my-ip {text} would open SSH to the whole internet; pass your own address, e.g. 203.0.113.7")
    if network.version != 4:
        raise DlxError(f"--my-ip {text}: the default VPC reaches instances over IPv4; pass your public IPv4 address")
    return str(network)


def detect_public_ip() -> str:
    """The caller's public IPv4 address as AWS sees it (needs the internet)."""
    try:
        with urllib.request.urlopen(CHECKIP_URL, timeout=10) as response:
            return response.read().decode("ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise DlxError(f"could not detect your public IP address from {CHECKIP_URL} ({exc}); pass it with --my-ip") from None


def caller_cidr(my_ip: str | None) -> str:
    """The one network SSH is opened to: --my-ip, or the detected address as /32."""
    return normalise_cidr(my_ip or detect_public_ip())


def latest_dlami(ssm) -> str:
    """The current Deep Learning AMI in the client's region, from AWS's public SSM parameter."""
    with aws_errors("Deep Learning AMI lookup", {"ParameterNotFound": f"this region has no parameter {DLAMI_PARAMETER}; "
                                                 "pass an Ubuntu 22.04 GPU AMI with --ami"}):
        return ssm.get_parameter(Name=DLAMI_PARAMETER)["Parameter"]["Value"]


def up(ws: Workstation, *, cidr: str, source: str, instance_type: str = "g5.xlarge", spot: bool = False,
       volume_gb: int = 100, ami: str | None = None) -> Instance:
    """Launch the workstation, or return the running one (with SSH re-pointed at ``cidr``).

    ``source`` is the pip requirement the instance installs as dlx (a Git URL the instance can reach)."""
    ec2 = ws.ec2()
    with aws_errors(f"workstation {ws.name}"):
        existing = _find_instance(ec2, ws)
        if existing and existing.state in ("stopping", "stopped"):
            raise DlxError(f"workstation {ws.name} ({existing.id}) is {existing.state}; "
                           f"start it with `dlx workstation start --name {ws.name}`")
        if existing:
            group = _find_security_group(ec2, ws)
            if group:
                _allow_ssh_only_from(ec2, group, cidr)
            print(f"workstation {ws.name} already exists ({existing.id}, {existing.state}); not launching another")
            return _wait(ec2, existing.id, "instance_running")
        image = _image(ec2, ws, ami or latest_dlami(ws.session.client("ssm")))
        _check_instance_type(ec2, ws, instance_type, image["Architecture"])
        _check_volume(image, volume_gb)
        vpc_id = _default_vpc(ec2, ws)
        _ensure_key_pair(ec2, ws)
        group = _find_security_group(ec2, ws) or _create_security_group(ec2, ws, vpc_id)
        _allow_ssh_only_from(ec2, group, cidr)
        instance_id = _launch(ec2, ws, image=image, instance_type=instance_type, spot=spot, volume_gb=volume_gb,
                              group_id=group["GroupId"], user_data=user_data(source))
        ws.token_file.unlink(missing_ok=True)  # a new instance makes a new token
        print(f"launched {instance_id} ({instance_type}{', spot' if spot else ''}); waiting until it runs", flush=True)
        return _wait(ec2, instance_id, "instance_running")


def user_data(source: str) -> str:
    """The first-boot script: make the Jupyter token, install ``source`` and JupyterLab, run Jupyter
    as a systemd service. It holds no secret."""
    return f"#!/bin/bash\nDLX_SOURCE={shlex.quote(source)}\n" + _SETUP_SCRIPT


def status(ws: Workstation) -> Instance | None:
    ec2 = ws.ec2()
    with aws_errors(f"workstation {ws.name}"):
        return _find_instance(ec2, ws)


def stop(ws: Workstation) -> Instance:
    ec2 = ws.ec2()
    with aws_errors(f"workstation {ws.name}"):
        instance = _require_instance(ec2, ws)
        if instance.state != "stopped":
            ec2.stop_instances(InstanceIds=[instance.id])
        return _wait(ec2, instance.id, "instance_stopped")


def start(ws: Workstation) -> Instance:
    ec2 = ws.ec2()
    with aws_errors(f"workstation {ws.name}"):
        instance = _require_instance(ec2, ws)
        if instance.state == "stopping":
            _wait(ec2, instance.id, "instance_stopped")
        if instance.state in ("stopping", "stopped"):
            ec2.start_instances(InstanceIds=[instance.id])
        return _wait(ec2, instance.id, "instance_running")


def down(ws: Workstation) -> list[str]:
    """Terminate the instance, then delete the tagged spot request, security group, key pair and local files."""
    ec2 = ws.ec2()
    removed = []
    with aws_errors(f"workstation {ws.name}"):
        requests = ec2.describe_spot_instance_requests(
            Filters=ws.tag_filters + [{"Name": "state", "Values": ["open", "active", "disabled"]}])["SpotInstanceRequests"]
        if requests:  # a persistent request would relaunch the instance: cancel it first
            ids = [r["SpotInstanceRequestId"] for r in requests]
            ec2.cancel_spot_instance_requests(SpotInstanceRequestIds=ids)
            removed += [f"spot request {i}" for i in ids]
        instances = _instances(ec2, ws, _LIVE_STATES + ["shutting-down"])
        if instances:
            ids = [i.id for i in instances]
            print(f"terminating {', '.join(ids)}", flush=True)
            ec2.terminate_instances(InstanceIds=ids)
            for instance_id in ids:  # the security group can go only once its instances have
                _wait(ec2, instance_id, "instance_terminated")
            removed += [f"instance {i}" for i in ids]
        for group in ec2.describe_security_groups(Filters=ws.tag_filters)["SecurityGroups"]:
            _delete_security_group(ec2, group["GroupId"])
            removed.append(f"security group {group['GroupId']} ({group['GroupName']})")
        for pair in ec2.describe_key_pairs(Filters=ws.tag_filters)["KeyPairs"]:
            ec2.delete_key_pair(KeyName=pair["KeyName"])
            removed.append(f"key pair {pair['KeyName']}")
    for path in (ws.key_file, ws.token_file):
        if path.exists():
            path.unlink()
            removed.append(str(path))
    return removed


def ssh_command(ws: Workstation, instance: Instance, *options: str) -> str:
    """An ssh command line that logs in to the workstation, with ``options`` before the login."""
    return " ".join(["ssh", "-i", shlex.quote(str(ws.key_file)), *options, f"{SSH_USER}@{instance.public_dns}"])


def tunnel_command(ws: Workstation, instance: Instance) -> str:
    return ssh_command(ws, instance, "-N", "-L", f"{JUPYTER_PORT}:localhost:{JUPYTER_PORT}")


TOKEN_COMMAND = "sudo cat /etc/dlx/jupyter.env"


def fetch_token(ws: Workstation, instance: Instance) -> str | None:
    """The instance's Jupyter token over SSH, kept in the local token file; None when SSH cannot
    get it yet (the instance still booting, the key refused)."""
    command = ["ssh", "-i", str(ws.key_file), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new",
               "-o", "ConnectTimeout=10", f"{SSH_USER}@{instance.public_dns}", TOKEN_COMMAND]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"^JUPYTER_TOKEN=([0-9a-f]{64})$", done.stdout, re.MULTILINE) if done.returncode == 0 else None
    if not found:
        return None
    _write_secret(ws.token_file, found.group(1) + "\n")
    return found.group(1)


def jupyter_url(ws: Workstation, instance: Instance) -> str | None:
    """The tunnelled JupyterLab URL with its token (fetched over SSH the first time), or None."""
    token = ws.token_file.read_text().strip() if ws.token_file.exists() else fetch_token(ws, instance)
    return f"http://localhost:{JUPYTER_PORT}/lab?token={token}" if token else None


def _instances(ec2, ws: Workstation, states: list[str]) -> list[Instance]:
    filters = ws.tag_filters + [{"Name": "instance-state-name", "Values": states}]
    return [Instance.from_api(item) for page in ec2.get_paginator("describe_instances").paginate(Filters=filters)
            for reservation in page["Reservations"] for item in reservation["Instances"]]


def _find_instance(ec2, ws: Workstation) -> Instance | None:
    found = _instances(ec2, ws, _LIVE_STATES)
    if len(found) > 1:
        raise DlxError(f"{len(found)} instances are tagged dlx:workstation={ws.name} in {ws.region} "
                       f"({', '.join(i.id for i in found)}); terminate the extra ones in the EC2 console")
    return found[0] if found else None


def _require_instance(ec2, ws: Workstation) -> Instance:
    instance = _find_instance(ec2, ws)
    if instance is None:
        raise DlxError(f"no workstation named {ws.name} in {ws.region}; create one with "
                       f"`dlx workstation up --name {ws.name}` (or pass the right --region)")
    return instance


def _wait(ec2, instance_id: str, waiter: str) -> Instance:
    try:
        ec2.get_waiter(waiter).wait(InstanceIds=[instance_id], WaiterConfig=_WAIT)
    except WaiterError as exc:
        raise DlxError(f"{instance_id} did not reach the state {waiter} waits for ({exc.kwargs.get('reason')}); "
                       "see `dlx workstation status` and the EC2 console") from None
    return Instance.from_api(ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0])


def _image(ec2, ws: Workstation, ami: str) -> dict:
    missing = (f"not found in {ws.region}; AMI ids are regional: pass one from {ws.region} with --ami, "
               "or leave --ami out for the current Deep Learning AMI")
    with aws_errors(f"AMI {ami}", {"InvalidAMIID.NotFound": missing, "InvalidAMIID.Malformed": missing}):
        images = ec2.describe_images(ImageIds=[ami])["Images"]
    if not images:
        raise DlxError(f"AMI {ami}: {missing}")
    return images[0]


def _check_instance_type(ec2, ws: Workstation, instance_type: str, architecture: str) -> None:
    with aws_errors(f"instance type {instance_type}", {"InvalidInstanceType": f"unknown in {ws.region}; GPU types "
                                                       "include g4dn.xlarge, g5.xlarge, g6.xlarge, g6e.xlarge"}):
        info = ec2.describe_instance_types(InstanceTypes=[instance_type])["InstanceTypes"][0]
    supported = info["ProcessorInfo"]["SupportedArchitectures"]
    if architecture not in supported:
        raise DlxError(f"instance type {instance_type} runs {'/'.join(supported)} but the AMI is {architecture}; "
                       f"pick an {architecture} instance type (e.g. g5.xlarge) or a matching --ami")


def _check_volume(image: dict, volume_gb: int) -> None:
    root = next((m for m in image.get("BlockDeviceMappings", []) if m.get("DeviceName") == image["RootDeviceName"]), {})
    minimum = root.get("Ebs", {}).get("VolumeSize", 1)
    if volume_gb < minimum:
        raise DlxError(f"--volume-gb {volume_gb} is smaller than the AMI's {minimum} GB snapshot; pass at least {minimum}")


def _default_vpc(ec2, ws: Workstation) -> str:
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    if not vpcs:
        raise DlxError(f"{ws.region} has no default VPC; create one with "
                       f"`aws ec2 create-default-vpc --region {ws.region}`, or pass another --region")
    return vpcs[0]["VpcId"]


def _ensure_key_pair(ec2, ws: Workstation) -> None:
    """Reuse the key pair when its private key is here; otherwise create it and save the key (0600)."""
    pairs = ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": [ws.resource_name]}])["KeyPairs"]
    if pairs and {"Key": "dlx:workstation", "Value": ws.name} not in pairs[0].get("Tags", []):
        raise DlxError(f"key pair {ws.resource_name} in {ws.region} was not made by dlx; pass another --name")
    if pairs and ws.key_file.exists():
        print(f"key pair {ws.resource_name}: reusing, private key {ws.key_file}")
        return
    if pairs:
        raise DlxError(f"key pair {ws.resource_name} exists in {ws.region} but its private key {ws.key_file} is missing; "
                       f"copy the key back there (or pass its folder with --key-dir), or run "
                       f"`dlx workstation down --name {ws.name}` (deletes the workstation and its key pair) and `up` again")
    if ws.key_file.exists():
        raise DlxError(f"{ws.key_file} exists but {ws.region} has no key pair {ws.resource_name}; "
                       "move that file away (it may be another key) and run `up` again")
    pair = ec2.create_key_pair(KeyName=ws.resource_name, KeyType="ed25519",
                               TagSpecifications=[{"ResourceType": "key-pair", "Tags": ws.tags}])
    _write_secret(ws.key_file, pair["KeyMaterial"].rstrip("\n") + "\n")  # OpenSSH rejects a key without it
    print(f"key pair {ws.resource_name}: created, private key saved to {ws.key_file} (mode 600)")


def _write_secret(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only, never visible half-written."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp creates 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _find_security_group(ec2, ws: Workstation) -> dict | None:
    groups = ec2.describe_security_groups(Filters=ws.tag_filters)["SecurityGroups"]
    return groups[0] if groups else None


def _create_security_group(ec2, ws: Workstation, vpc_id: str) -> dict:
    group_id = ec2.create_security_group(
        GroupName=ws.resource_name, VpcId=vpc_id, Description=f"dlx workstation {ws.name}: SSH from one address",
        TagSpecifications=[{"ResourceType": "security-group", "Tags": ws.tags}])["GroupId"]
    return {"GroupId": group_id, "IpPermissions": []}


def _allow_ssh_only_from(ec2, group: dict, cidr: str) -> None:
    """Make 22/tcp from ``cidr`` the group's one and only ingress rule."""
    current = group.get("IpPermissions", [])
    ssh = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22}
    if (len(current) == 1 and all(current[0].get(k) == v for k, v in ssh.items())
            and [r["CidrIp"] for r in current[0].get("IpRanges", [])] == [cidr]
            and not any(current[0].get(k) for k in ("Ipv6Ranges", "PrefixListIds", "UserIdGroupPairs"))):
        print(f"security group {group['GroupId']}: SSH from {cidr} only (unchanged)")
        return
    if current:
        ec2.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=current)
    ec2.authorize_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[
        {**ssh, "IpRanges": [{"CidrIp": cidr, "Description": "dlx: SSH from the workstation's user"}]}])
    print(f"security group {group['GroupId']}: SSH from {cidr} only")


def _launch(ec2, ws: Workstation, *, image: dict, instance_type: str, spot: bool, volume_gb: int,
            group_id: str, user_data: str) -> str:
    resources = ["instance", "volume"] + (["spot-instances-request"] if spot else [])
    request: dict[str, Any] = dict(
        ImageId=image["ImageId"], InstanceType=instance_type, MinCount=1, MaxCount=1,
        KeyName=ws.resource_name, SecurityGroupIds=[group_id], UserData=user_data,
        BlockDeviceMappings=[{"DeviceName": image["RootDeviceName"], "Ebs": {
            "VolumeSize": volume_gb, "VolumeType": "gp3", "DeleteOnTermination": True, "Encrypted": True}}],
        MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"},
        TagSpecifications=[{"ResourceType": r, "Tags": ws.tags} for r in resources])
    if spot:  # persistent + stop on interruption: the only kind of spot instance that can be stopped and started
        request["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": {
            "SpotInstanceType": "persistent", "InstanceInterruptionBehavior": "stop"}}
    with aws_errors(f"workstation {ws.name}: launch failed (its key pair and security group stay for the next `up`; "
                    f"`dlx workstation down --name {ws.name}` removes them)"):
        return ec2.run_instances(**request)["Instances"][0]["InstanceId"]


def _delete_security_group(ec2, group_id: str, attempts: int = 24, delay: float = 5.0) -> None:
    """Delete the group, retrying while a just-terminated instance's network interface lets go of it."""
    for attempt in range(attempts):
        try:
            ec2.delete_security_group(GroupId=group_id)
            return
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "DependencyViolation" or attempt == attempts - 1:
                raise
            time.sleep(delay)
