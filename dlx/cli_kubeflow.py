"""`dlx submit` and `dlx schedule create|list|enable|disable|delete`: the Kubeflow Pipelines target.

`schedule` takes an action first (``dlx schedule create TOPIC …``) so that a topic name and an
action can never be confused. Host, experiment and token come from the flags, else the
DLX_KFP_* variables, else dlx.toml's [kubeflow] table (infra.config); without any host, kfp
finds the server through the kubeconfig or the in-cluster config.
"""
from __future__ import annotations

import argparse
import time

from components.errors import DlxError
from components.image import DEFAULT_IMAGE
from components.registry import Topic
from components.tracking import EXPERIMENT_ENV, TARGET_ENV, URI_ENV
from components.model_registry import REGISTRY_PREFIX
from dlx.arguments import (add_champion_arguments, add_job_arguments, check_champion, check_no_topics, resolve_job,
                           resolve_suite, suite_champion, warn_if_unpublished)
from infra.config import kubernetes_settings, load_settings
from pipelines.deployment import Deployment
from pipelines.suite import NAME as SUITE, Suite

DEFAULT_EXPERIMENT = "dlx"


def register(sub: argparse._SubParsersAction) -> None:
    """Add this target's sub-commands to the `dlx` parser."""
    submit = sub.add_parser("submit", help="compile a topic's pipeline, or the suite, and run it on Kubeflow Pipelines")
    _pipeline_arguments(submit)
    submit.add_argument("--wait", action="store_true", help="follow the run's state; exit 2 unless it succeeds")
    submit.set_defaults(func=cmd_submit)

    schedule = sub.add_parser("schedule", help="recurring runs (scheduled retraining) on Kubeflow Pipelines")
    actions = schedule.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="run a topic's pipeline, or the suite, on a cron schedule")
    _pipeline_arguments(create)
    create.add_argument("--cron", required=True,
                        help="6 fields, seconds first: '0 0 3 * * *' is 03:00 every day (or @daily, @every 6h)")
    create.add_argument("--max-concurrency", type=int, default=1, help="runs of this schedule at once (default: 1)")
    create.add_argument("--name", help="display name (default: dlx-TOPIC-DATASET, or dlx-suite)")
    create.set_defaults(func=cmd_schedule_create)

    listing = actions.add_parser("list", help="recurring runs with their state and cron expression")
    connection_arguments(listing)
    listing.add_argument("--experiment", help="only this experiment's")
    listing.set_defaults(func=cmd_schedule_list)

    for action, text in (("enable", "resume"), ("disable", "pause"), ("delete", "remove")):
        change = actions.add_parser(action, help=f"{text} a recurring run")
        change.add_argument("id", help="recurring run id (see `dlx schedule list`)")
        connection_arguments(change)
        change.set_defaults(func=cmd_schedule_change)


def connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="Kubeflow Pipelines URL, e.g. https://kubeflow.example.com/pipeline "
                                       "(default: $DLX_KFP_HOST, dlx.toml, else kubeconfig)")
    parser.add_argument("--token", help="bearer token (default: $DLX_KFP_TOKEN or dlx.toml)")
    parser.add_argument("--namespace", help="the profile namespace on multi-user Kubeflow "
                                            "(default: $DLX_KFP_NAMESPACE or dlx.toml, else the server's default)")


def deployment_arguments(parser: argparse.ArgumentParser, *, placement: bool = True) -> None:
    """The Kubernetes settings of pipelines.deployment (defaults: [kubeflow] in dlx.toml)."""
    if placement:
        parser.add_argument("--gpus", type=int, default=0, help="nvidia.com/gpu for the train step (default: none)")
        parser.add_argument("--nodes", type=int, default=1, metavar="M",
                            help="train a PyTorch topic across M pods as a Kubeflow Trainer TrainJob, each with "
                                 "--gpus GPUs (default: 1, in the step's own pod); needs Kubeflow Trainer and an "
                                 "s3:// pipeline root")
        parser.add_argument("--retries", type=int, help="retries of a failed or preempted train pod (default: 0)")
        parser.add_argument("--checkpoint-pvc", metavar="PVC",
                            help="a PersistentVolumeClaim for the train step's checkpoints, so a retried pod resumes")
    parser.add_argument("--node-selector", action="append", metavar="KEY=VALUE",
                        help="a node label the train step needs (repeatable)")
    parser.add_argument("--toleration", action="append", metavar="KEY[=VALUE][:EFFECT]",
                        help="a taint the train step tolerates, e.g. nvidia.com/gpu:NoSchedule (repeatable)")
    parser.add_argument("--secret-env", action="append", metavar="SECRET=KEY[,KEY]",
                        help="a Kubernetes Secret's keys as every step's environment variables (repeatable)")
    parser.add_argument("--image-pull-secret", action="append", metavar="SECRET",
                        help="an image pull Secret for every step (repeatable)")
    parser.add_argument("--tracking-uri", help="MLflow tracking server every step logs to "
                                               "(default: $MLFLOW_TRACKING_URI or [mlflow] in dlx.toml)")


def deployment(args: argparse.Namespace, image: str) -> Deployment:
    """The Deployment the flags and [kubeflow] / [mlflow] in dlx.toml describe, checked."""
    from pipelines.deployment import parse_labels, parse_secret_env, parse_toleration

    table = kubernetes_settings()
    settings = load_settings()
    environment = {}
    tracking = args.tracking_uri or settings.tracking_uri
    if tracking:
        environment = {URI_ENV: tracking, TARGET_ENV: "kubeflow"}
        if settings.tracking_experiment:
            environment[EXPERIMENT_ENV] = settings.tracking_experiment
    retries = getattr(args, "retries", None)
    return Deployment(
        image=image, gpus=getattr(args, "gpus", 0), nodes=getattr(args, "nodes", 1), environment=environment,
        node_selector=parse_labels(args.node_selector if args.node_selector is not None else
                                   [f"{k}={v}" for k, v in table.get("node_selector", {}).items()], "--node-selector"),
        tolerations=tuple(parse_toleration(t) for t in (args.toleration if args.toleration is not None
                                                        else table.get("tolerations", []))),
        secret_env=parse_secret_env(args.secret_env if args.secret_env is not None else table.get("secret_env", [])),
        pull_secrets=tuple(args.image_pull_secret if args.image_pull_secret is not None
                           else table.get("image_pull_secrets", [])),
        retries=retries if retries is not None else table.get("retries", 0),
        checkpoint_pvc=getattr(args, "checkpoint_pvc", None) or table.get("checkpoint_pvc", ""),
    )


def _pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    add_job_arguments(parser, "s3://bucket/prefix holding the data set's files (the cluster reads it)", suite=True)
    add_champion_arguments(parser, "s3:// URI")
    connection_arguments(parser)
    parser.add_argument("--experiment", help=f"experiment, created if missing (default: $DLX_KFP_EXPERIMENT, "
                                             f"dlx.toml, else {DEFAULT_EXPERIMENT})")
    parser.add_argument("--image", help=f"image of every step (default: $DLX_KFP_IMAGE, dlx.toml, else {DEFAULT_IMAGE})")
    deployment_arguments(parser)


def connect(args: argparse.Namespace):
    from pipelines.submit import Kubeflow

    settings = load_settings()
    return Kubeflow(args.host or settings.kfp_host, args.token or settings.kfp_token,
                    args.namespace or settings.kfp_namespace), settings


def _run_arguments(args: argparse.Namespace) -> tuple[Topic | Suite, str, dict, Deployment]:
    """What runs (a topic or the suite), on what data set, with which pipeline arguments and
    deployment: checked here before anything reaches the cluster."""
    for flag, value in (("--data-dir", args.data_dir), ("--champion", args.champion)):
        if value and "://" not in value and not value.startswith(REGISTRY_PREFIX):
            raise DlxError(f"{flag} {value} is a path on this machine, which the cluster's steps cannot see; "
                           "upload it and pass an s3:// URI")
    if args.margin < 0:
        raise DlxError(f"--margin must be 0 or more, got {args.margin}")
    if args.topic == SUITE:
        target, dataset = resolve_suite(args), "their default data sets"
        arguments = {"seed": args.seed, "champion": suite_champion(args.champion), "margin": args.margin}
    else:
        check_no_topics(args)
        job = resolve_job(args, local_data=False)
        target, dataset = job.topic, job.dataset
        arguments = {**job.arguments(), "champion": args.champion or "", "margin": args.margin}
    image = args.image or load_settings().kfp_image or DEFAULT_IMAGE
    placed = deployment(args, image)
    check_champion(arguments["champion"], placed.environment.get(URI_ENV))
    warn_if_unpublished(image)
    return target, dataset, arguments, placed


def cmd_submit(args: argparse.Namespace) -> None:
    topic, dataset, arguments, placed = _run_arguments(args)
    kubeflow, settings = connect(args)
    experiment = args.experiment or settings.kfp_experiment or DEFAULT_EXPERIMENT
    run_name = f"dlx-{_label(topic, dataset)}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_id = kubeflow.submit(topic, arguments, experiment=experiment, run_name=run_name, deployment=placed)
    print(f"submitted {topic.name} on {dataset} to experiment {experiment}: run {run_id}", flush=True)
    link = kubeflow.link("runs", run_id)
    if link:
        print(f"  {link}", flush=True)
    if not args.wait:
        return
    state, error = kubeflow.wait(run_id, lambda state, seconds: print(f"  {state} ({seconds:.0f} s)", flush=True))
    if state not in ("SUCCEEDED", "SKIPPED"):
        raise DlxError(f"run {run_id} ended {state}" + (f": {error}" if error else "") + f"; see {link or 'the Kubeflow UI'}")


def cmd_schedule_create(args: argparse.Namespace) -> None:
    from pipelines.submit import check_cron

    topic, dataset, arguments, placed = _run_arguments(args)
    cron = check_cron(args.cron)
    if args.max_concurrency < 1:
        raise DlxError(f"--max-concurrency must be at least 1, got {args.max_concurrency}")
    kubeflow, settings = connect(args)
    experiment = args.experiment or settings.kfp_experiment or DEFAULT_EXPERIMENT
    name = args.name or f"dlx-{_label(topic, dataset)}"
    recurring_id = kubeflow.schedule(topic, arguments, experiment=experiment, name=name, cron=cron,
                                     max_concurrency=args.max_concurrency, deployment=placed)
    print(f"scheduled {topic.name} on {dataset} at '{cron}' in experiment {experiment}: recurring run {recurring_id}")
    link = kubeflow.link("recurringrun", recurring_id)
    if link:
        print(f"  {link}")


def _label(topic: Topic | Suite, dataset: str) -> str:
    """TOPIC-DATASET in run and schedule names; the suite is just suite."""
    return f"{topic.name}-{dataset}" if isinstance(topic, Topic) else topic.name


def cmd_schedule_list(args: argparse.Namespace) -> None:
    from pipelines.runs import format_table

    kubeflow, _ = connect(args)
    schedules = kubeflow.schedules(args.experiment)
    if not schedules:
        print(f"no recurring runs {kubeflow.where}; create one with `dlx schedule create TOPIC --cron ...`")
        return
    header = ("id", "name", "status", "cron", "max concurrent", "created")
    print(format_table(header, [(s.id, s.name, s.status, s.cron, s.max_concurrency, s.created) for s in schedules]))


def cmd_schedule_change(args: argparse.Namespace) -> None:
    kubeflow, _ = connect(args)
    kubeflow.change(args.action, args.id)
    print(f"{args.action}d recurring run {args.id}")
