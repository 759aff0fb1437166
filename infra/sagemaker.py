"""SageMaker training jobs for dlx topics: launch, watch, fetch the model, status, logs, stop.

A job runs the project's image, whose entrypoint (`python -m containers.entrypoint train`) reads
the hyperparameters (topic, dataset, dataset_options, seed and each topic parameter by name), the
``data`` channel (the staged files, absent for bundled data sets) and resumes from
/opt/ml/checkpoints, which SageMaker syncs with the job's own checkpoint prefix, so a spot job
that is interrupted carries on where it stopped.

ModelTrainer (SageMaker Python SDK 3) builds and validates the CreateTrainingJob request; dlx
sends that request with boto3 itself. ModelTrainer names a job (base name + timestamp) only as it
builds the request, yet the checkpoint prefix it is given must carry that name, so dlx names the
job first and sets it on the request; sending the request it built also means --dry-run prints
exactly what a launch sends, including what the SDK's own
defaults files (/etc/xdg/sagemaker/config.yaml, ~/.config/sagemaker/config.yaml: an admin's VPC
or KMS settings) add. ModelTrainer.train() is not used, so the SDK sends no usage telemetry.
"""
from __future__ import annotations

import re
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.distributed import check_parallel
from components.errors import DlxError
from components.files import atomic_dir
from components.image import METRIC_REGEX
from components.params import format_value
from infra.aws import aws_errors

if TYPE_CHECKING:
    from components.job import Job
    from infra.staging import Staging

DEFAULT_INSTANCE_TYPE = "ml.g5.xlarge"
DATA_CHANNEL = "data"
CHECKPOINT_DIR = "/opt/ml/checkpoints"
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
ENDED = ("Completed", "Failed", "Stopped")
POLL_SECONDS = 30.0
"""Seconds between DescribeTrainingJob calls while waiting."""
LOG_POLL_SECONDS = 5.0
"""Seconds between reads of the log streams while following them."""

_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")


@dataclass(frozen=True)
class JobSpec:
    """A job (components.job) and where SageMaker runs it; see `dlx sagemaker train --help` for each field."""

    job: Job
    role: str
    bucket: str
    image: str
    instance_type: str = DEFAULT_INSTANCE_TYPE
    instance_count: int = 1
    spot: bool = False
    max_run: int = 3600
    max_wait: int | None = None
    """Spot only: run time plus time waiting for capacity; defaults to twice max_run."""
    volume_gb: int = 30
    keep_alive: int = 0
    """Seconds a warm pool keeps the instances after the job, for the next job with the same settings."""
    environment: Mapping[str, str] = field(default_factory=dict)
    """Variables of the training container (the MLflow tracking server)."""


@dataclass(frozen=True)
class Launch:
    name: str
    request: dict
    """The CreateTrainingJob request, as sent (or, with --dry-run, as it would be sent)."""
    staging: Staging | None


def check(spec: JobSpec) -> None:
    """Reject a spec SageMaker would reject (or bill for nothing) before any AWS call."""
    if not _ROLE_ARN.fullmatch(spec.role):
        raise DlxError(f"bad role ARN {spec.role!r}: write it as arn:aws:iam::<12-digit account>:role/NAME "
                       "(`dlx aws bootstrap` prints it)")
    if not spec.instance_type.startswith("ml."):
        raise DlxError(f"instance type {spec.instance_type!r} is not a SageMaker type; SageMaker names carry "
                       f"an ml. prefix: ml.{spec.instance_type}")
    for flag, value in [("--instance-count", spec.instance_count), ("--max-run", spec.max_run),
                        ("--volume-gb", spec.volume_gb)]:
        if value < 1:
            raise DlxError(f"{flag} must be at least 1, got {value}")
    if not 0 <= spec.keep_alive <= 3600:
        raise DlxError(f"--keep-alive {spec.keep_alive}: SageMaker keeps a warm pool for 0 to 3600 seconds")
    if spec.keep_alive and spec.spot:
        raise DlxError("--keep-alive (a warm pool) is for on-demand instances; SageMaker refuses it with --spot")
    if spec.max_wait is not None and not spec.spot:
        raise DlxError("--max-wait applies to managed spot training only; add --spot or drop --max-wait")
    if spec.spot and spec.max_wait is not None and spec.max_wait < spec.max_run:
        raise DlxError(f"--max-wait {spec.max_wait} is shorter than --max-run {spec.max_run}; "
                       "SageMaker needs max wait >= max run")
    if spec.instance_count > 1:
        check_parallel(spec.job.topic.name, spec.job.topic.framework)


def job_name(topic: str, now: datetime | None = None) -> str:
    """``dlx-<topic>-<yyyymmdd-hhmmss>``: SageMaker's name rules (alphanumerics and '-', <= 63)."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^a-zA-Z0-9]+", "-", topic).strip("-")[: 63 - len("dlx--") - len(stamp)].rstrip("-")
    return f"dlx-{safe}-{stamp}"


def tags(spec: JobSpec) -> dict[str, str]:
    return {"project": "dlx", "dlx:topic": spec.job.topic.name, "dlx:dataset": spec.job.dataset}


def hyperparameters(spec: JobSpec) -> dict[str, str]:
    """The entrypoint's contract (containers/entrypoint.py): the topic, the job's fields and every
    topic parameter by its name, as the strings `--param` takes (the console lists each; a tuning
    job replaces some); the data comes as a channel, so no data_dir."""
    arguments = {k: format_value(v) for k, v in spec.job.arguments().items() if k != "data_dir"}
    return {"topic": spec.job.topic.name, **arguments}


def needs_staging(job: Job) -> bool:
    """Whether the job's data goes to S3 first (a dry run of one that does not calls AWS not at all)."""
    from components.data import get_dataset

    return get_dataset(job.dataset).needs_location


def launch(spec: JobSpec, session: Any, *, dry_run: bool = False) -> Launch:
    """Stage the data, build the request and (unless ``dry_run``) create the job.

    A dry run makes read-only calls only (bucket location, HEAD of the staged objects), and none
    when there is nothing to stage.
    """
    from infra.staging import check_bucket, stage

    check(spec)
    s3 = session.client("s3")
    job = spec.job
    if not dry_run or needs_staging(job):
        check_bucket(s3, spec.bucket, session.region_name)
    staging = stage(s3, spec.bucket, job.dataset, job.data_dir or None, tags={"project": "dlx", "dlx:dataset": job.dataset},
                    options=job.dataset_options, dry_run=dry_run)
    name = job_name(job.topic.name)
    request = build_request(spec, session, name, staging.uri if staging else None)
    if not dry_run:
        with aws_errors(f"training job {name}", {
            "ResourceLimitExceeded": f"the account's SageMaker quota for {spec.instance_type} "
                                     f"{'spot ' if spec.spot else ''}training is too small; request an increase "
                                     "in Service Quotas (SageMaker) or pick another --instance-type",
            "ResourceInUse": "a job with this name exists already; launch again in a second",
        }):
            session.client("sagemaker").create_training_job(**request)
    return Launch(name, request, staging)


def build_request(spec: JobSpec, session: Any, name: str, data_uri: str | None) -> dict:
    """The CreateTrainingJob request for ``spec``, named ``name``, as ModelTrainer builds it."""
    request = model_trainer(spec, session, name, data_uri)._create_training_job_args(boto3=True)
    request["TrainingJobName"] = name
    request["AlgorithmSpecification"]["MetricDefinitions"] = metric_definitions(spec)
    return request


def model_trainer(spec: JobSpec, session: Any, name: str, data_uri: str | None, *, checkpoints: bool = True) -> Any:
    """ModelTrainer for ``spec``: the image, compute, stopping condition, data channel, hyperparameters
    and tags; with ``checkpoints``, the job's own checkpoint prefix (named after ``name``). The
    SDK's refusals (an AWS answer, a field its models reject) end in one line like boto3's."""
    from pydantic import ValidationError
    from sagemaker.core.helper.iam_role_resolver import RoleValidationError
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.training.configs import (CheckpointConfig, Compute, InputData, OutputDataConfig,
                                                 StoppingCondition, Tag)
    from sagemaker.train import ModelTrainer

    max_wait = (spec.max_wait or 2 * spec.max_run) if spec.spot else None
    try:
        with aws_errors(f"SageMaker training request for {spec.job.topic.name}"):
            return ModelTrainer(
                sagemaker_session=Session(boto_session=session, default_bucket=spec.bucket, default_bucket_prefix="dlx"),
                role=spec.role,
                training_image=spec.image,
                base_job_name=f"dlx-{spec.job.topic.name}",
                compute=Compute(instance_type=spec.instance_type, instance_count=spec.instance_count,
                                volume_size_in_gb=spec.volume_gb, enable_managed_spot_training=spec.spot,
                                keep_alive_period_in_seconds=spec.keep_alive or None),
                environment=dict(spec.environment) or None,
                stopping_condition=StoppingCondition(max_runtime_in_seconds=spec.max_run,
                                                     max_wait_time_in_seconds=max_wait),
                checkpoint_config=CheckpointConfig(s3_uri=f"s3://{spec.bucket}/dlx/checkpoints/{name}/",
                                                   local_path=CHECKPOINT_DIR) if checkpoints else None,
                output_data_config=OutputDataConfig(s3_output_path=f"s3://{spec.bucket}/dlx/output/"),
                input_data_config=[InputData(channel_name=DATA_CHANNEL, data_source=data_uri)] if data_uri else None,
                hyperparameters=hyperparameters(spec),
                tags=[Tag(key=key, value=value) for key, value in tags(spec).items()],
            )
    except RoleValidationError as exc:
        first = str(exc).strip().splitlines()[0]
        raise DlxError(f"role {spec.role} cannot run SageMaker training ({first}); "
                       "fix its permissions and trust policy, or create one with `dlx aws bootstrap`") from None
    except ValidationError as exc:  # the SDK's own checks of a field (pydantic)
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem.get("loc", ()))
        raise DlxError(f"the SageMaker SDK refused the training request: {where}: {problem.get('msg')}; "
                       "check the flags that set it") from None


def metric_definitions(spec: JobSpec) -> list[dict]:
    """The validation and test figures of the topic's main metric, as the entrypoint prints them:
    shown in the job's console page and CloudWatch, and what a tuning job can optimise."""
    main = spec.job.topic.for_dataset(spec.job.dataset).main_metric
    return [{"Name": name, "Regex": METRIC_REGEX.format(name=name)} for name in (f"val_{main}", f"test_{main}")]


def describe(session: Any, name: str) -> dict:
    """DescribeTrainingJob, with an unknown job as one line that says where dlx looked."""
    with aws_errors(f"training job {name}", {
        "ValidationException": f"no such job in {session.region_name}; check the name "
                               "(`aws sagemaker list-training-jobs`) or pass --region",
    }):
        return session.client("sagemaker").describe_training_job(TrainingJobName=name)


def wait(session: Any, name: str, on_transition: Callable[[dict], None]) -> dict:
    """Poll until the job ends; report each new secondary-status transition; return the last description.

    A transition whose message changes in place (Training: "Downloading" -> "in progress") is
    reported again with its new message.
    """
    seen: set[tuple[str, str]] = set()
    while True:
        job = describe(session, name)
        for transition in job.get("SecondaryStatusTransitions", []):
            key = (transition.get("Status", ""), transition.get("StatusMessage", ""))
            if key not in seen:
                seen.add(key)
                on_transition(transition)
        if job["TrainingJobStatus"] in ENDED:
            return job
        time.sleep(POLL_SECONDS)


def fetch_model(session: Any, job: dict, run_dir: Path) -> Path:
    """Download the job's model.tar.gz and unpack it into ``run_dir`` (which must not exist yet)."""
    from components.data.storage import split_uri

    uri = job.get("ModelArtifacts", {}).get("S3ModelArtifacts")
    if not uri:
        raise DlxError(f"training job {job['TrainingJobName']} has no model artifacts "
                       f"(status {job['TrainingJobStatus']}); see `dlx sagemaker logs {job['TrainingJobName']}`")
    bucket, key = split_uri(uri)
    missing = "the job uploaded no model archive; see its logs"
    with tempfile.TemporaryDirectory(prefix="dlx-model-") as tmp:
        archive = Path(tmp) / "model.tar.gz"
        with aws_errors(uri, {"404": missing, "NoSuchKey": missing}):
            session.client("s3").download_file(bucket, key, str(archive))
        try:
            with atomic_dir(run_dir) as out, tarfile.open(archive) as tar:
                tar.extractall(out, filter="data")
        except FileExistsError:
            raise DlxError(f"{run_dir} already exists; remove it or pass another --runs-dir") from None
        except tarfile.TarError as exc:
            raise DlxError(f"{uri}: not a valid model archive ({exc})") from None
    return run_dir


def log_events(session: Any, name: str, *, follow: bool = False) -> Iterator[tuple[str, str]]:
    """(host, message) for every event of the job's CloudWatch log streams, oldest first per host;
    with ``follow``, new events as they come (streams appear as instances start) until the job ends."""
    logs = session.client("logs")
    not_yet = f"no logs yet; SageMaker writes them once the instances start (`dlx sagemaker status {name}`)"
    tokens: dict[str, str | None] = {}
    with aws_errors(f"logs of training job {name}", {"ResourceNotFoundException": not_yet}):
        while True:
            ended = describe(session, name)["TrainingJobStatus"] in ENDED if follow else True
            for stream in _streams(logs, name, tolerate_none=follow):
                tokens.setdefault(stream, None)
            if not tokens and not follow:
                raise DlxError(f"logs of training job {name}: {not_yet}")
            for stream in tokens:
                host = stream.split("/", 1)[1]
                while True:
                    token = tokens[stream]
                    page = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream, startFromHead=True,
                                               **({"nextToken": token} if token else {}))
                    for event in page.get("events", []):
                        yield host, event["message"]
                    if page.get("nextForwardToken") in (None, token):
                        break
                    tokens[stream] = page["nextForwardToken"]
            if ended:  # read once more after the end was seen, so nothing written last is missed
                return
            time.sleep(LOG_POLL_SECONDS)


def _streams(logs: Any, name: str, *, tolerate_none: bool) -> list[str]:
    from botocore.exceptions import ClientError

    try:
        pages = logs.get_paginator("describe_log_streams").paginate(logGroupName=LOG_GROUP,
                                                                    logStreamNamePrefix=f"{name}/")
        return [stream["logStreamName"] for page in pages for stream in page.get("logStreams", [])]
    except ClientError as exc:
        if tolerate_none and exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return []  # the log group appears with the first instance
        raise


def stop(session: Any, name: str) -> str | None:
    """Ask SageMaker to stop the job; returns the status it had, or None when it had ended already."""
    status = describe(session, name)["TrainingJobStatus"]
    if status in ENDED:
        return None
    with aws_errors(f"training job {name}"):
        session.client("sagemaker").stop_training_job(TrainingJobName=name)
    return status
