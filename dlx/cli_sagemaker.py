"""`dlx sagemaker train|status|logs|stop|fetch`: a topic as a SageMaker training job.

Role, bucket, image and region default to dlx.toml / DLX_* variables (infra.config). Commands
talk to AWS only when run (boto3 and the SageMaker SDK load only then). dlx.cli is imported
inside the commands because it imports this module.
"""
from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.errors import DlxError
from components.files import inside
from components.image import DEFAULT_IMAGE
from components.registry import get_topic
from dlx.arguments import add_job_arguments, add_runs_dir, add_search_arguments, resolve_job, resolve_search, runs_root
from infra import aws
from infra import sagemaker as jobs
from components.tracking import EXPERIMENT_ENV, TARGET_ENV, URI_ENV
from infra.config import ENV_NAMES, config_path, load_settings, require

if TYPE_CHECKING:
    from infra.staging import Staging


def _session(args: argparse.Namespace) -> Any:
    return aws.session(args.region or load_settings().region)


def _spec(args: argparse.Namespace, job: Any) -> jobs.JobSpec:
    """The job spec from the flags and settings; every missing setting is named in one line."""
    settings = load_settings()
    given = {"role_arn": (args.role or settings.role_arn, "--role"), "bucket": (args.bucket or settings.bucket, "--bucket"),
             "image_uri": (args.image or settings.image_uri, "--image")}
    missing = [(name, flag) for name, (value, flag) in given.items() if not value]
    if len(missing) == 1:
        require(None, *missing[0])
    if missing:
        raise DlxError(f"missing settings {', '.join(name for name, _ in missing)}: pass "
                       f"{', '.join(flag for _, flag in missing)}, set "
                       f"{', '.join(ENV_NAMES[name] for name, _ in missing)}, or put them under [aws] in "
                       f"{config_path()} (`dlx aws bootstrap --write-config` writes them)")
    tracking_uri = args.tracking_uri or settings.tracking_uri
    environment = {URI_ENV: tracking_uri, TARGET_ENV: "sagemaker"} if tracking_uri else {}
    if tracking_uri and settings.tracking_experiment:
        environment[EXPERIMENT_ENV] = settings.tracking_experiment
    spec = jobs.JobSpec(
        job, role=given["role_arn"][0], bucket=given["bucket"][0], image=given["image_uri"][0],
        instance_type=args.instance_type, instance_count=args.instance_count, spot=args.spot,
        max_run=args.max_run, max_wait=args.max_wait, volume_gb=args.volume_gb, keep_alive=args.keep_alive,
        environment=environment,
    )
    jobs.check(spec)
    return spec


def _launch_session(args: argparse.Namespace, job: Any) -> Any:
    """The session a launch uses: a dry run with nothing to stage calls no AWS API, so it needs
    no credentials (and, without a region, shows the request for us-east-1)."""
    region = args.region or load_settings().region
    if args.dry_run and not jobs.needs_staging(job):
        return aws.session(region or "us-east-1", credentials=False)
    return aws.session(region)


def cmd_train(args: argparse.Namespace) -> None:
    settings = load_settings()
    job = resolve_job(args)
    if args.local:
        _train_locally(args, job, args.image or settings.image_uri or DEFAULT_IMAGE)
        return
    spec = _spec(args, job)
    session = _launch_session(args, job)
    launched = jobs.launch(spec, session, dry_run=args.dry_run)
    _print_staging(launched.staging, args.dry_run)
    if args.dry_run:
        print(f"dry run: nothing uploaded, no job created; CreateTrainingJob request:\n"
              f"{json.dumps(launched.request, indent=2)}")
        return
    region = session.region_name
    print(f"started training job {launched.name} ({spec.instance_type} x{spec.instance_count}"
          f"{', managed spot' if spec.spot else ''}) in {region}")
    print(f"  console  https://{region}.console.aws.amazon.com/sagemaker/home?region={region}#/jobs/{launched.name}")
    print(f"  follow   dlx sagemaker status|logs|stop {launched.name}")
    if args.wait:
        _wait_and_fetch(session, launched.name, runs_root(args))


def cmd_tune(args: argparse.Namespace) -> None:
    from infra.sagemaker_tuning import Tuning, launch_tuning

    job, axes = resolve_search(args)
    tuning = Tuning(axes, args.strategy, args.max_jobs, args.max_parallel)
    spec = _spec(args, job)
    session = _launch_session(args, job)
    launched = launch_tuning(spec, session, tuning, dry_run=args.dry_run)
    _print_staging(launched.staging, args.dry_run)
    if args.dry_run:
        print(f"dry run: nothing uploaded, no job created; CreateHyperParameterTuningJob request:\n"
              f"{json.dumps(launched.request, indent=2)}")
        return
    config = launched.request["HyperParameterTuningJobConfig"]
    region = session.region_name
    print(f"started tuning job {launched.name}: {tuning.strategy}, up to {tuning.max_jobs} training jobs "
          f"({tuning.max_parallel} at a time) on {spec.instance_type}, "
          f"{config['HyperParameterTuningJobObjective']['Type'].lower()} "
          f"{config['HyperParameterTuningJobObjective']['MetricName']} in {region}")
    print(f"  console  https://{region}.console.aws.amazon.com/sagemaker/home?region={region}"
          f"#/hyper-tuning-jobs/{launched.name}")
    print(f"  follow   aws sagemaker describe-hyper-parameter-tuning-job --hyper-parameter-tuning-job-name "
          f"{launched.name}; then `dlx sagemaker fetch JOB` for its best training job")


def _train_locally(args: argparse.Namespace, job: Any, image: str) -> None:
    """The SDK's local mode (infra/sagemaker_local.py): no AWS account, the image run here."""
    from infra.sagemaker_local import train_locally

    if args.dry_run or args.spot or args.wait:
        raise DlxError("--local runs the job here and waits for it; drop --dry-run, --spot and --wait")
    spec = jobs.JobSpec(job, role="", bucket="", image=image,
                        instance_type="local_gpu" if args.instance_type == "local_gpu" else "local_cpu")
    run_dir = train_locally(spec, runs_root(args), checkpoints=Path(args.checkpoint_dir) if args.checkpoint_dir else None)
    _print_outcome(run_dir)


def _print_outcome(run_dir: Path) -> None:
    from components.evaluate import verdict
    from components.files import read_json

    metrics_path = run_dir / "metrics.json"
    if metrics_path.is_file():
        metrics = read_json(metrics_path)
        print(f"  verdict   {verdict(metrics, get_topic(metrics['topic']))}")
    else:
        print("  the model archive holds no metrics.json at its top; `dlx runs` will not list it")
    print(f"  outputs   {run_dir}/  ({', '.join(sorted(p.name for p in run_dir.iterdir()))})")


def _print_staging(staging: Staging | None, dry_run: bool) -> None:
    if staging is None:
        print("data: bundled with the image; nothing to stage")
        return
    fresh = [f for f in staging.files if not f.present]
    verb = "would upload" if dry_run else "uploaded"
    print(f"data: {staging.uri} ({len(staging.files)} files; {verb} {len(fresh)}, "
          f"{len(staging.files) - len(fresh)} already there with the same sha256)")
    for f in staging.files:
        print(f"  {f.name}  {f.size / 1e6:.1f} MB  sha256 {f.sha256[:12]}  {'present' if f.present else verb}")


def _wait_and_fetch(session: Any, name: str, runs_root: Path) -> None:
    print(f"waiting for {name} (Ctrl-C stops waiting, not the job)", flush=True)
    try:
        job = jobs.wait(session, name, _print_transition)
    except KeyboardInterrupt:
        print(f"\nstopped waiting; {name} keeps running: `dlx sagemaker status {name}`, "
              f"`dlx sagemaker fetch {name}` when it is done", flush=True)
        raise
    _fetch(session, job, runs_root)


def _print_transition(transition: dict) -> None:
    start = transition.get("StartTime")
    stamp = start.astimezone().strftime("%H:%M:%S") if isinstance(start, datetime) else "--:--:--"
    print(f"  {stamp}  {transition.get('Status', '?'):<12} {transition.get('StatusMessage', '')}", flush=True)


def _fetch(session: Any, job: dict, runs_root: Path) -> None:
    name, status = job["TrainingJobName"], job["TrainingJobStatus"]
    if status != "Completed":
        reason = job.get("FailureReason") or f"secondary status {job.get('SecondaryStatus', '?')}"
        raise DlxError(f"training job {name} {status.lower()}: {' '.join(str(reason).split())}; "
                       f"see `dlx sagemaker logs {name}`")
    run_dir = jobs.fetch_model(session, job, inside(runs_root, f"sagemaker-{name}", "training job name"))
    print(f"{name}: Completed; {_billing(job)}")
    _print_outcome(run_dir)


def _billing(job: dict) -> str:
    billable, trained = job.get("BillableTimeInSeconds"), job.get("TrainingTimeInSeconds")
    if billable is None:
        return "billable time not reported"
    saved = f", managed spot saved {1 - billable / trained:.0%}" if trained and billable < trained else ""
    return f"billable {billable} s of {trained if trained is not None else '?'} s{saved}"


def cmd_status(args: argparse.Namespace) -> None:
    job = jobs.describe(_session(args), args.job)
    print(f"{job['TrainingJobName']}  {job['TrainingJobStatus']} ({job.get('SecondaryStatus', '?')})")
    hyper = job.get("HyperParameters", {})
    if hyper:
        print(f"  topic     {hyper.get('topic', '?')} on {hyper.get('dataset', '?')}, seed {hyper.get('seed', '?')}")
    resources = job.get("ResourceConfig", {})
    spot = ", managed spot" if job.get("EnableManagedSpotTraining") else ""
    print(f"  compute   {resources.get('InstanceType', '?')} x{resources.get('InstanceCount', '?')}{spot}")
    times = [(label, job.get(key)) for label, key in
             [("created", "CreationTime"), ("started", "TrainingStartTime"), ("ended", "TrainingEndTime")]]
    print("  times     " + "  ".join(f"{label} {value.astimezone():%Y-%m-%d %H:%M:%S}"
                                     for label, value in times if isinstance(value, datetime)))
    print(f"  billing   {_billing(job)}")
    if job.get("FailureReason"):
        print(f"  failure   {' '.join(job['FailureReason'].split())}")
    if job.get("ModelArtifacts", {}).get("S3ModelArtifacts") and job["TrainingJobStatus"] == "Completed":
        print(f"  model     {job['ModelArtifacts']['S3ModelArtifacts']}  (`dlx sagemaker fetch {args.job}`)")
    for transition in job.get("SecondaryStatusTransitions", []):
        _print_transition(transition)


def cmd_logs(args: argparse.Namespace) -> None:
    events = jobs.log_events(_session(args), args.job, follow=args.follow)
    hosts_seen: set[str] = set()
    for host, message in events:
        if host not in hosts_seen:
            hosts_seen.add(host)
            print(f"== {host} ==")
        print(message)


def cmd_stop(args: argparse.Namespace) -> None:
    was = jobs.stop(_session(args), args.job)
    if was is None:
        print(f"{args.job} has ended already; nothing to stop")
    else:
        print(f"stopping {args.job} (was {was}); its checkpoints stay in S3 and the job ends as Stopped")


def cmd_fetch(args: argparse.Namespace) -> None:
    session = _session(args)
    _fetch(session, jobs.describe(session, args.job), runs_root(args))


def _job_target_arguments(parser: argparse.ArgumentParser) -> None:
    """Where a training job (or each of a tuning job's) runs."""
    parser.add_argument("--role", help="SageMaker execution role ARN (default: role_arn from dlx.toml / DLX_ROLE_ARN)")
    parser.add_argument("--bucket", help="S3 bucket for data, checkpoints and output (default: bucket / DLX_BUCKET)")
    parser.add_argument("--image", help="training image URI in ECR (default: image_uri / DLX_IMAGE_URI)")
    parser.add_argument("--instance-type", default=jobs.DEFAULT_INSTANCE_TYPE,
                        help=f"SageMaker instance type (default: {jobs.DEFAULT_INSTANCE_TYPE}, one NVIDIA A10G)")
    parser.add_argument("--instance-count", type=int, default=1,
                        help="instances per job; more than one trains a PyTorch topic with torchrun across them")
    parser.add_argument("--max-run", type=int, default=3600, help="seconds of training before SageMaker stops a job")
    parser.add_argument("--volume-gb", type=int, default=30, help="EBS volume per instance in GB (default: 30)")
    parser.add_argument("--region", help="AWS region (default: region / DLX_AWS_REGION, then the AWS profile's)")
    parser.add_argument("--tracking-uri", help="MLflow tracking server the job logs to (default: "
                                               "$MLFLOW_TRACKING_URI or [mlflow] in dlx.toml; the job must reach it)")


def register(sub: argparse._SubParsersAction) -> None:
    """Add `dlx sagemaker ...` to the `dlx` parser."""
    group = sub.add_parser("sagemaker", help="run a topic as a SageMaker training job; status, logs, stop")
    commands = group.add_subparsers(dest="sagemaker_command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="stage the data and start a training job")
    add_job_arguments(train, "folder or s3://bucket/prefix holding the data set's files, staged to the bucket")
    _job_target_arguments(train)
    train.add_argument("--spot", action="store_true", help="managed spot training, resuming from S3 checkpoints")
    train.add_argument("--max-wait", type=int, help="spot: seconds of running plus waiting for capacity (default: 2x --max-run)")
    train.add_argument("--keep-alive", type=int, default=0, metavar="SECONDS",
                       help="keep the instances warm this long after the job (a warm pool, up to 3600 s): the next "
                            "job with the same settings starts without provisioning")
    train.add_argument("--wait", action="store_true", help="follow the job; when it ends, fetch the model into runs/")
    add_runs_dir(train, "where --wait puts the model")
    train.add_argument("--dry-run", action="store_true", help="print what would be staged and the request; create nothing")
    train.add_argument("--local", action="store_true",
                       help="run the job here in the SageMaker SDK's local mode (the image through docker compose); "
                            "no AWS account needed")
    train.add_argument("--checkpoint-dir", help="--local: the checkpoint folder (default: one per job under RUNS_DIR)")
    train.set_defaults(func=cmd_train)

    from infra.sagemaker_tuning import STRATEGIES

    tune = commands.add_parser("tune", help="search hyperparameters with a SageMaker automatic model tuning job")
    add_search_arguments(tune, "folder or s3://bucket/prefix holding the data set's files, staged to the bucket")
    tune.add_argument("--strategy", choices=STRATEGIES, default="Bayesian", help="search strategy (default: Bayesian)")
    tune.add_argument("--max-jobs", type=int, default=10, help="training jobs in all (default: 10)")
    tune.add_argument("--max-parallel", type=int, default=2, help="training jobs at once (default: 2)")
    _job_target_arguments(tune)
    tune.add_argument("--dry-run", action="store_true", help="print what would be staged and the request; create nothing")
    tune.set_defaults(func=cmd_tune, spot=False, max_wait=None, keep_alive=0)  # trials share no checkpoints: no spot

    for name, func, text in [("status", cmd_status, "state, times, billable seconds and failure reason of a job"),
                             ("logs", cmd_logs, "the job's CloudWatch logs"),
                             ("stop", cmd_stop, "stop a running job"),
                             ("fetch", cmd_fetch, "download a completed job's model into runs/sagemaker-JOB/")]:
        command = commands.add_parser(name, help=text)
        command.add_argument("job", help="training job name (printed by `dlx sagemaker train`)")
        command.add_argument("--region", help="AWS region (default: region / DLX_AWS_REGION, then the AWS profile's)")
        if name == "fetch":
            add_runs_dir(command, "where the model goes")
        if name == "logs":
            command.add_argument("--follow", action="store_true", help="keep printing new lines until the job ends")
        command.set_defaults(func=func)
