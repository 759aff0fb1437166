"""`dlx workstation …` (an EC2 GPU instance with JupyterLab over SSH) and `dlx aws bootstrap`.

infra/ is imported inside the commands, so `dlx` never loads boto3 unless one of them runs.
"""
from __future__ import annotations

import argparse


def cmd_up(args: argparse.Namespace) -> None:
    from infra import workstation
    from infra.config import load_settings, require

    source = require(args.source or load_settings().workstation_source, "workstation_source", "--source")
    cidr = workstation.caller_cidr(args.my_ip)
    ws = workstation.open_workstation(args.name, args.region, args.key_dir)
    instance = workstation.up(ws, cidr=cidr, instance_type=args.instance_type, spot=args.spot,
                              volume_gb=args.volume_gb, ami=args.ami, source=source)
    _print_status(instance, ws.region)
    _print_tunnel(ws, instance)
    print(f"  JupyterLab answers once the first-boot setup ends (about 10 minutes); follow it with\n"
          f"    {workstation.ssh_command(ws, instance)} tail -f /var/log/dlx-setup.log")
    print("  billing runs until `dlx workstation stop` (the volume still costs while stopped) or `down`")


def cmd_status(args: argparse.Namespace) -> None:
    from infra import workstation

    ws = workstation.open_workstation(args.name, args.region, args.key_dir)
    instance = workstation.status(ws)
    if instance is None:
        print(f"no workstation named {args.name} in {ws.region}; create one with `dlx workstation up`")
        return
    _print_status(instance, ws.region)


def cmd_tunnel(args: argparse.Namespace) -> None:
    from components.errors import DlxError
    from infra import workstation

    ws = workstation.open_workstation(args.name, args.region, args.key_dir)
    instance = workstation.status(ws)
    if instance is None or instance.state != "running":
        state = "does not exist" if instance is None else f"is {instance.state}"
        raise DlxError(f"workstation {args.name} in {ws.region} {state}; run `dlx workstation "
                       f"{'up' if instance is None else 'start'} --name {args.name}` first")
    _print_tunnel(ws, instance)


def cmd_stop(args: argparse.Namespace) -> None:
    from infra import workstation

    ws = workstation.open_workstation(args.name, args.region, args.key_dir)
    _print_status(workstation.stop(ws), ws.region)
    print(f"  the root volume still costs while stopped; `dlx workstation down --name {args.name}` removes everything")


def cmd_start(args: argparse.Namespace) -> None:
    from infra import workstation

    ws = workstation.open_workstation(args.name, args.region, args.key_dir)
    instance = workstation.start(ws)
    _print_status(instance, ws.region)
    _print_tunnel(ws, instance)


def cmd_down(args: argparse.Namespace) -> None:
    from infra import workstation

    ws = workstation.open_workstation(args.name, args.region, args.key_dir)
    removed = workstation.down(ws)
    if not removed:
        print(f"nothing tagged dlx:workstation={args.name} in {ws.region}; nothing removed")
    for item in removed:
        print(f"removed {item}")


def _print_status(instance, region: str) -> None:
    market = "spot" if instance.spot else "on-demand"
    launched = instance.launch_time.strftime("%Y-%m-%d %H:%M %Z")
    print(f"{instance.id}  {instance.state}  {instance.type} ({market})  {region}  launched {launched}")
    print(f"  public DNS  {instance.public_dns or '-'}")


def _print_tunnel(ws, instance) -> None:
    from infra import workstation

    url = workstation.jupyter_url(ws, instance)
    print(f"  tunnel      {workstation.tunnel_command(ws, instance)}")
    if url:
        print(f"  JupyterLab  {url}")
    else:
        print(f"  JupyterLab  http://localhost:{workstation.JUPYTER_PORT}/lab  (the token is made on the instance at "
              f"first boot and SSH could not fetch it yet; once it is up, `dlx workstation tunnel` again, or: "
              f"{workstation.ssh_command(ws, instance)} {workstation.TOKEN_COMMAND})")


def cmd_bootstrap(args: argparse.Namespace) -> None:
    from infra.bootstrap import bootstrap, config_text, write_config
    from infra.config import config_path, load_settings, require

    bucket = require(args.bucket or load_settings().bucket, "bucket", "--bucket")
    values = bootstrap(bucket, region=args.region, role_name=args.role_name, repository=args.repository)
    print("\nsettings for dlx.toml:\n\n" + config_text(values))
    print("or as environment variables:\n")
    for name, key in [("DLX_AWS_REGION", "region"), ("DLX_BUCKET", "bucket"), ("DLX_ROLE_ARN", "role_arn"),
                      ("DLX_IMAGE_URI", "image_uri")]:
        print(f"  export {name}={values[key]}")
    if args.write_config:
        write_config(values, config_path())
        print(f"\nwrote them to [aws] in {config_path()}")
    registry = values["image_uri"].split("/")[0]
    print(f"\npush the training image there (where Docker runs):\n"
          f"  aws ecr get-login-password --region {values['region']} | docker login --username AWS --password-stdin {registry}\n"
          f"  make image-gpu IMAGE={values['image_uri']} && docker push {values['image_uri']}-gpu")


def register(sub: argparse._SubParsersAction) -> None:
    """Add `dlx workstation …` and `dlx aws …` to the `dlx` parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--name", default="main", help="workstation name; tags and resource names derive from it (default: main)")
    common.add_argument("--region", help="AWS region (default: $DLX_AWS_REGION, [aws] region in dlx.toml, then AWS_DEFAULT_REGION)")
    common.add_argument("--key-dir", help="folder for the private key and Jupyter token (default: $DLX_KEY_DIR or ~/.ssh)")

    workstation = sub.add_parser("workstation", help="an EC2 GPU instance with JupyterLab through an SSH tunnel")
    actions = workstation.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = actions.add_parser("up", parents=[common], help="launch the workstation (or show the one that runs)")
    up.add_argument("--instance-type", default="g5.xlarge", help="EC2 instance type (default: g5.xlarge, one NVIDIA A10G)")
    up.add_argument("--spot", action="store_true", help="a persistent spot instance that stops when interrupted")
    up.add_argument("--volume-gb", type=int, default=100, help="root volume size in GB, gp3 (default: 100)")
    up.add_argument("--ami", help="AMI id (default: the current Deep Learning Base OSS Nvidia Driver GPU AMI, Ubuntu 22.04)")
    up.add_argument("--my-ip", help="address or CIDR allowed to SSH in (default: your detected public address, /32)")
    up.add_argument("--source", help="pip requirement the instance installs as dlx, e.g. git+https://github.com/ORG/dlx.git@main "
                         "(default: $DLX_WORKSTATION_SOURCE or [workstation] source in dlx.toml)")
    up.set_defaults(func=cmd_up)
    for name, func, help_text in [
        ("status", cmd_status, "state, type, public DNS, launch time, spot or on-demand"),
        ("tunnel", cmd_tunnel, "print the SSH tunnel command and the JupyterLab URL"),
        ("stop", cmd_stop, "stop the instance (compute billing stops; the volume stays)"),
        ("start", cmd_start, "start a stopped workstation and print the new tunnel command"),
        ("down", cmd_down, "terminate the instance and delete everything tagged with its name"),
    ]:
        actions.add_parser(name, parents=[common], help=help_text).set_defaults(func=func)

    aws = sub.add_parser("aws", help="AWS account setup for the SageMaker target")
    aws_actions = aws.add_subparsers(dest="action", required=True, metavar="ACTION")
    boot = aws_actions.add_parser("bootstrap", help="create (or reuse) the S3 bucket, SageMaker role and ECR repository")
    boot.add_argument("--bucket", help="S3 bucket name, globally unique (default: [aws] bucket in dlx.toml)")
    boot.add_argument("--region", help="AWS region (default: $DLX_AWS_REGION, dlx.toml, then AWS_DEFAULT_REGION)")
    boot.add_argument("--role-name", default="dlx-sagemaker", help="IAM role SageMaker assumes (default: dlx-sagemaker)")
    boot.add_argument("--repository", default="dlx", help="ECR repository for the training image (default: dlx)")
    boot.add_argument("--write-config", action="store_true",
                      help="also write the values under [aws] in dlx.toml ($DLX_CONFIG), keeping its other keys")
    boot.set_defaults(func=cmd_bootstrap)
