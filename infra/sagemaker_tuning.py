"""SageMaker automatic model tuning of a dlx topic (`dlx sagemaker tune`).

The search space is `dlx sweep`'s (components.sweep): ``NAME=V1,V2`` becomes a categorical range,
``NAME=LO:HI[:log]`` a continuous or integer one (logarithmic with ``log``). The training jobs
are the ones `dlx sagemaker train` launches (infra.sagemaker.model_trainer: the same image,
hyperparameters by name, data channel and metric definitions); the tuner replaces the swept
hyperparameters and optimises the validation figure of the topic's main metric, which the
entrypoint prints after training (``val_<metric>``), never the test one. As for single jobs,
HyperparameterTuner (SDK 3) builds the request and dlx sends it with boto3, so --dry-run prints
exactly what a launch sends. Trials get no checkpoint prefix: one prefix shared by every trial
would let a trial resume from another's weights, so tuning does not take --spot.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from components.errors import DlxError
from components.sweep import Axis, check_axes
from infra.aws import aws_errors
from infra.sagemaker import DATA_CHANNEL, JobSpec, check, metric_definitions, model_trainer

if TYPE_CHECKING:
    from infra.staging import Staging

STRATEGIES = ("Bayesian", "Random", "Hyperband", "Grid")
NAME_LENGTH = 32
"""SageMaker's limit on a tuning job's name."""


@dataclass(frozen=True)
class Tuning:
    axes: list[Axis]
    strategy: str = "Bayesian"
    max_jobs: int = 10
    max_parallel: int = 2


@dataclass(frozen=True)
class TuningLaunch:
    name: str
    request: dict
    """The CreateHyperParameterTuningJob request, as sent (or, with --dry-run, as it would be sent)."""
    staging: Staging | None


def tuning_name(topic: str, now: datetime | None = None) -> str:
    """``dlx-<topic>-<mmddHHMMSS>`` within SageMaker's 32 characters."""
    stamp = (now or datetime.now()).strftime("%m%d%H%M%S")
    room = NAME_LENGTH - len("dlx--") - len(stamp)
    return f"dlx-{''.join(c if c.isalnum() else '-' for c in topic)[:room].strip('-')}-{stamp}"


def parameter_ranges(spec: JobSpec, tuning: Tuning) -> dict[str, Any]:
    """The SDK's parameter ranges for the axes, each value checked against the topic first."""
    from sagemaker.core.parameter import CategoricalParameter, ContinuousParameter, IntegerParameter

    job = spec.job
    if tuning.strategy not in STRATEGIES:
        raise DlxError(f"--strategy {tuning.strategy}: valid: {', '.join(STRATEGIES)}")
    if not tuning.axes:
        raise DlxError("tuning needs at least one --param NAME=V1,V2 or NAME=LO:HI axis")
    if tuning.max_jobs < 1 or not 1 <= tuning.max_parallel <= tuning.max_jobs:
        raise DlxError(f"--max-jobs {tuning.max_jobs} and --max-parallel {tuning.max_parallel}: need "
                       "1 <= max parallel <= max jobs")
    kinds = check_axes(job.topic, tuning.axes)
    ranges = {}
    for axis in tuning.axes:
        given = axis.values or (_number(axis.low, kinds[axis.name]), _number(axis.high, kinds[axis.name]))
        for value in given:  # each value or bound must make a valid job
            job.topic.params_for(job.dataset, [f"{axis.name}={value}"])
        if axis.values:
            ranges[axis.name] = CategoricalParameter(list(axis.values))
        elif tuning.strategy == "Grid":
            raise DlxError(f"--strategy Grid takes values only; give {axis.name}=V1,V2,... instead of a range")
        else:
            kind = IntegerParameter if kinds[axis.name] is int else ContinuousParameter
            ranges[axis.name] = kind(*given, scaling_type="Logarithmic" if axis.log else "Auto")
    return ranges


def _number(value: float, kind: type) -> str:
    if kind is int and not float(value).is_integer():
        raise DlxError(f"integer parameter range bound {value} is not a whole number")
    return str(int(value)) if kind is int else f"{value:g}"


def build_tuning_request(spec: JobSpec, session: Any, name: str, data_uri: str | None, tuning: Tuning) -> dict:
    """The CreateHyperParameterTuningJob request, as HyperparameterTuner builds it over ModelTrainer."""
    from sagemaker.core.apiutils._boto_functions import to_pascal_case
    from sagemaker.core.training.configs import InputData
    from sagemaker.core.utils.utils import serialize
    from sagemaker.train.tuner import HyperparameterTuner

    ranges = parameter_ranges(spec, tuning)
    topic = spec.job.topic.for_dataset(spec.job.dataset)
    tuner = HyperparameterTuner(
        model_trainer=model_trainer(spec, session, name, None, checkpoints=False),
        objective_metric_name=f"val_{topic.main_metric}",
        objective_type="Maximize" if topic.higher_is_better else "Minimize",
        hyperparameter_ranges=ranges, metric_definitions=metric_definitions(spec), strategy=tuning.strategy,
        max_jobs=tuning.max_jobs, max_parallel_jobs=tuning.max_parallel,
        random_seed=spec.job.seed or None,
    )
    tuner._prepare_for_tuning(job_name=name)
    request = {
        "hyper_parameter_tuning_job_name": name,
        "hyper_parameter_tuning_job_config": tuner._build_tuning_job_config(),
        # The channel goes in as the tuner's input: the SDK (1.27) copies a ModelTrainer's own
        # InputData into the definition unconverted, which its validation then rejects.
        "training_job_definition": tuner._build_training_job_definition(
            [InputData(channel_name=DATA_CHANNEL, data_source=data_uri)] if data_uri else None),
        "tags": [{"Key": tag["Key"], "Value": tag["Value"]} for tag in tuner.tags or []],
    }
    return serialize({to_pascal_case(key): value for key, value in request.items()})


def launch_tuning(spec: JobSpec, session: Any, tuning: Tuning, *, dry_run: bool = False) -> TuningLaunch:
    """Stage the data, build the request and (unless ``dry_run``) create the tuning job."""
    from infra.staging import check_bucket, stage

    check(spec)
    job = spec.job
    parameter_ranges(spec, tuning)  # every bad axis fails before any AWS call
    s3 = session.client("s3")
    check_bucket(s3, spec.bucket, session.region_name)
    staging = stage(s3, spec.bucket, job.dataset, job.data_dir or None,
                    tags={"project": "dlx", "dlx:dataset": job.dataset}, options=job.dataset_options, dry_run=dry_run)
    name = tuning_name(job.topic.name)
    request = build_tuning_request(spec, session, name, staging.uri if staging else None, tuning)
    if not dry_run:
        with aws_errors(f"tuning job {name}", {
            "ResourceLimitExceeded": f"the account's SageMaker quota for {spec.instance_type} training or for "
                                     "tuning jobs is too small; lower --max-parallel or request an increase in "
                                     "Service Quotas (SageMaker)",
            "ResourceInUse": "a tuning job with this name exists already; launch again in a second",
        }):
            session.client("sagemaker").create_hyper_parameter_tuning_job(**request)
    return TuningLaunch(name, request, staging)
