"""`dlx sagemaker` under moto: the exact CreateTrainingJob request, S3 staging, waiting and fetching,
status/logs/stop, and the one-line errors. Requests are captured with a botocore
provide-client-params hook on the session the commands use.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from datetime import datetime

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws
from moto.sagemaker.models import sagemaker_backends

from components.errors import DlxError
from components.job import Job
from components.params import parameter_types
from components.registry import get_topic
from containers.entrypoint import HYPERPARAMETERS
from dlx.cli import main
from infra import aws
from infra import sagemaker as jobs
from pipelines.runs import list_runs

ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = "dlx-test-bucket"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/dlx-sagemaker"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/dlx:0.1.0"
MNIST_NAMES = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
               "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]


@pytest.fixture(autouse=True)
def aws_env(tmp_path, monkeypatch):
    """Fake credentials, no dlx.toml, no AWS config files or instance metadata from this machine."""
    empty = tmp_path / "empty-aws-file"
    empty.write_text("")
    for var, value in [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                       ("AWS_DEFAULT_REGION", REGION), ("SAGEMAKER_VALIDATE_ROLE", "false"),
                       ("AWS_EC2_METADATA_DISABLED", "true"), ("AWS_CONFIG_FILE", str(empty)),
                       ("AWS_SHARED_CREDENTIALS_FILE", str(empty)), ("DLX_CONFIG", str(tmp_path / "no-dlx.toml")),
                       ("DLX_RUNS_DIR", str(tmp_path / "runs"))]:
        monkeypatch.setenv(var, value)
    for var in ["AWS_PROFILE", "AWS_SESSION_TOKEN", "DLX_AWS_REGION", "DLX_BUCKET", "DLX_ROLE_ARN", "DLX_IMAGE_URI"]:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def calls(monkeypatch):
    """Moto with bucket BUCKET; yields the (operation, params) list of every call the commands make."""
    seen: list[tuple[str, dict]] = []

    def hooked(region, **options):
        session = real(region, **options)
        session.events.register("provide-client-params",
                                lambda params, model, **_: seen.append((model.name, dict(params))))
        return session

    real = aws.session
    monkeypatch.setattr(aws, "session", hooked)
    monkeypatch.setattr(jobs, "POLL_SECONDS", 0)
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield seen


def sent(calls, operation):
    return [params for name, params in calls if name == operation]


def train(*extra):
    return main(["sagemaker", "train", "mnist-cnn", "--role", ROLE, "--bucket", BUCKET, "--image", IMAGE, *extra])


def moto_job(name):
    return sagemaker_backends[ACCOUNT][REGION].training_jobs[name]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("dlx: error: ") and err.count("\n") == 1, err
    return err


def test_train_sends_the_request_the_entrypoint_and_spot_resume_need(calls, fake_mnist):
    assert train("--dataset", "mnist", "--data-dir", str(fake_mnist), "--spot", "--instance-type", "ml.g4dn.xlarge",
                 "--max-run", "1800", "--volume-gb", "50", "--param", "epochs=2", "--seed", "7") == 0
    [request] = sent(calls, "CreateTrainingJob")
    name = request["TrainingJobName"]
    assert re.fullmatch(r"dlx-mnist-cnn-\d{8}-\d{6}", name)
    assert request["ResourceConfig"] == {"InstanceType": "ml.g4dn.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50}
    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 1800, "MaxWaitTimeInSeconds": 3600}
    assert request["CheckpointConfig"] == {"S3Uri": f"s3://{BUCKET}/dlx/checkpoints/{name}/",
                                           "LocalPath": "/opt/ml/checkpoints"}
    [channel] = request["InputDataConfig"]
    uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
    assert channel["ChannelName"] == "data" and re.fullmatch(rf"s3://{BUCKET}/dlx/data/mnist/[0-9a-f]{{16}}/", uri)
    assert channel["DataSource"]["S3DataSource"]["S3DataType"] == "S3Prefix"
    hyper = request["HyperParameters"]
    # exactly what the container's entrypoint reads: the job's fields and every parameter by name
    assert set(hyper) == {*HYPERPARAMETERS, *parameter_types(get_topic("mnist-cnn").params)}
    assert json.loads(hyper["dataset_options"]) == {}
    assert (hyper["topic"], hyper["dataset"], hyper["seed"]) == ("mnist-cnn", "mnist", "7")
    assert (hyper["epochs"], hyper["filters"]) == ("2", "32,64")
    assert request["Tags"] == [{"Key": "project", "Value": "dlx"}, {"Key": "dlx:topic", "Value": "mnist-cnn"},
                               {"Key": "dlx:dataset", "Value": "mnist"}]
    assert request["AlgorithmSpecification"]["TrainingImage"] == IMAGE and request["RoleArn"] == ROLE
    assert request["AlgorithmSpecification"]["MetricDefinitions"] == [
        {"Name": "val_accuracy", "Regex": r"dlx-metric val_accuracy=([-+0-9.eE]+)"},
        {"Name": "test_accuracy", "Regex": r"dlx-metric test_accuracy=([-+0-9.eE]+)"}]
    assert request["OutputDataConfig"]["S3OutputPath"] == f"s3://{BUCKET}/dlx/output/"
    assert "Environment" not in request
    assert moto_job(name).input_data_config[0]["DataSource"]["S3DataSource"]["S3Uri"] == uri


def test_staging_uploads_each_file_once_and_checks_it_by_sha256(calls, fake_mnist, capsys):
    assert train("--dataset", "mnist", "--data-dir", str(fake_mnist)) == 0
    puts = sent(calls, "PutObject")
    assert sorted(p["Key"].rsplit("/", 1)[1] for p in puts) == MNIST_NAMES
    s3 = boto3.client("s3")
    for put in puts:
        local = hashlib.sha256((fake_mnist / put["Key"].rsplit("/", 1)[1]).read_bytes()).hexdigest()
        assert s3.head_object(Bucket=BUCKET, Key=put["Key"])["Metadata"] == {"sha256": local}
        tags = s3.get_object_tagging(Bucket=BUCKET, Key=put["Key"])["TagSet"]
        assert {"Key": "project", "Value": "dlx"} in tags and {"Key": "dlx:dataset", "Value": "mnist"} in tags
    first_uri = sent(calls, "CreateTrainingJob")[0]["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]

    calls.clear()
    assert train("--dataset", "mnist", "--data-dir", str(fake_mnist)) == 0
    assert sent(calls, "PutObject") == [] and len(sent(calls, "HeadObject")) == 4
    assert sent(calls, "CreateTrainingJob")[0]["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == first_uri
    assert "uploaded 0, 4 already there" in capsys.readouterr().out

    damaged = puts[0]["Key"]
    s3.put_object(Bucket=BUCKET, Key=damaged, Body=b"truncated", Metadata={"sha256": "0" * 64})
    calls.clear()
    assert train("--dataset", "mnist", "--data-dir", str(fake_mnist)) == 0
    assert [p["Key"] for p in sent(calls, "PutObject")] == [damaged]


def test_changed_data_is_staged_under_a_new_prefix(calls, fake_mnist, idx_bytes, write_file):
    import numpy as np

    assert train("--dataset", "mnist", "--data-dir", str(fake_mnist)) == 0
    write_file(fake_mnist / "t10k-labels-idx1-ubyte.gz", idx_bytes(np.arange(20)[::-1] % 10))
    assert train("--dataset", "mnist", "--data-dir", str(fake_mnist)) == 0
    first, second = (r["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] for r in sent(calls, "CreateTrainingJob"))
    assert first != second
    assert len(sent(calls, "PutObject")) == 8


def test_dry_run_prints_the_request_and_creates_nothing(calls, fake_mnist, capsys):
    assert train("--dataset", "mnist", "--data-dir", str(fake_mnist), "--dry-run") == 0
    assert {name for name, _ in calls} == {"GetBucketLocation", "HeadObject"}
    out = capsys.readouterr().out
    assert "would upload 4" in out
    request = json.loads(out[out.index("{"):])
    assert request["InputDataConfig"][0]["ChannelName"] == "data" and request["EnableManagedSpotTraining"] is False
    assert boto3.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []
    assert boto3.client("s3").list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0


def test_bundled_data_has_no_channel_and_on_demand_no_max_wait(calls):
    assert train("--max-run", "600") == 0
    [request] = sent(calls, "CreateTrainingJob")
    assert "InputDataConfig" not in request and sent(calls, "PutObject") == []
    assert request["HyperParameters"]["dataset"] == "digits"
    assert request["EnableManagedSpotTraining"] is False
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 600}


def test_movielens_files_are_staged_for_every_split_and_options_reach_the_job(calls, tmp_path):
    from test_ratings_data import _ml100k

    folder = _ml100k(tmp_path / "ml")
    assert main(["sagemaker", "train", "cf-regularized", "--role", ROLE, "--bucket", BUCKET, "--image", IMAGE,
                 "--dataset", "movielens-100k", "--dataset-option", "split=u1", "--data-dir", str(folder)]) == 0
    assert sorted(p["Key"].rsplit("/", 1)[1] for p in sent(calls, "PutObject")) == [
        "u.data", "u.genre", "u.item", "u1.base", "u1.test"]
    [request] = sent(calls, "CreateTrainingJob")
    assert "/dlx/data/movielens-100k/" in request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    assert json.loads(request["HyperParameters"]["dataset_options"]) == {"split": "u1"}


def test_tiny_shakespeare_is_staged_for_text_gen(calls, tmp_path):
    folder = tmp_path / "tinyshakespeare"
    folder.mkdir()
    (folder / "input.txt").write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n" * 20)
    assert main(["sagemaker", "train", "text-gen", "--role", ROLE, "--bucket", BUCKET, "--image", IMAGE,
                 "--dataset", "tiny-shakespeare", "--data-dir", str(tmp_path)]) == 0
    assert [p["Key"].rsplit("/", 1)[1] for p in sent(calls, "PutObject")] == ["input.txt"]
    [request] = sent(calls, "CreateTrainingJob")
    assert "/dlx/data/tiny-shakespeare/" in request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]


def test_a_local_file_data_set_is_refused_and_an_s3_one_needs_no_channel(calls, tmp_path, capsys):
    local = tmp_path / "ratings.csv"
    local.write_text("user,item,rating\n1,1,5\n")
    args = ["sagemaker", "train", "cf-regularized", "--role", ROLE, "--bucket", BUCKET, "--image", IMAGE, "--dataset"]
    assert main([*args, f"ratings-file:{local}"]) == 2
    assert "cannot read a file on this machine" in one_error_line(capsys)
    assert sent(calls, "CreateTrainingJob") == []
    assert main([*args, f"ratings-file:s3://{BUCKET}/ratings.csv"]) == 0
    [request] = sent(calls, "CreateTrainingJob")
    assert "InputDataConfig" not in request and request["HyperParameters"]["dataset"] == f"ratings-file:s3://{BUCKET}/ratings.csv"


def test_role_bucket_image_and_region_come_from_dlx_toml(calls, tmp_path, monkeypatch):
    config = tmp_path / "dlx.toml"
    config.write_text(f'[aws]\nregion = "{REGION}"\nbucket = "{BUCKET}"\nrole_arn = "{ROLE}"\nimage_uri = "{IMAGE}"\n')
    monkeypatch.setenv("DLX_CONFIG", str(config))
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert main(["sagemaker", "train", "mnist-mlp"]) == 0
    [request] = sent(calls, "CreateTrainingJob")
    assert (request["RoleArn"], request["AlgorithmSpecification"]["TrainingImage"]) == (ROLE, IMAGE)
    assert request["OutputDataConfig"]["S3OutputPath"] == f"s3://{BUCKET}/dlx/output/"


def test_wait_reports_each_transition_and_fetches_the_model_into_runs(calls, tmp_path, capsys, monkeypatch):
    steps = [("InProgress", "Starting", "Launching requested ML instances"),
             ("InProgress", "Downloading", "Downloading the training image"),
             ("InProgress", "Training", "Training image download completed. Training in progress."),
             ("Completed", "Completed", "Training job completed")]
    messages = [message for *_, message in steps]

    def created(job):
        job.training_job_status, job.secondary_status_transitions = "InProgress", []
        job.billable_time_in_seconds, job.training_time_in_seconds = 120, 300
        metrics = {"topic": "mnist-cnn", "dataset": "digits", "params": {}, "seed": 0,
                   "test": {"accuracy": 0.975, "loss": 0.08}, "baseline": {"random_forest": {"accuracy": 0.96}},
                   "train_seconds": 42.0}
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w:gz") as tar:
            for name, data in [("metrics.json", json.dumps(metrics).encode()), ("model/model.keras", b"weights")]:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        bucket, key = job.model_artifacts["S3ModelArtifacts"].removeprefix("s3://").split("/", 1)
        boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=archive.getvalue())

    def described(job):
        if steps:
            status, secondary, message = steps.pop(0)
            job.training_job_status, job.secondary_status = status, secondary
            job.secondary_status_transitions.append({"Status": secondary, "StatusMessage": message,
                                                     "StartTime": datetime.now()})

    script(monkeypatch, CreateTrainingJob=created, DescribeTrainingJob=described)
    assert train("--wait") == 0
    name = sent(calls, "CreateTrainingJob")[0]["TrainingJobName"]
    out = capsys.readouterr().out
    assert [out.count(message) for message in messages] == [1, 1, 1, 1]
    assert "billable 120 s of 300 s, managed spot saved 60%" in out
    assert "test accuracy 0.9750 beats the random_forest baseline (0.9600)" in out
    run_dir = tmp_path / "runs" / f"sagemaker-{name}"
    assert (run_dir / "model" / "model.keras").read_bytes() == b"weights"
    assert [run.id for run in list_runs(tmp_path / "runs")] == [f"sagemaker-{name}"]


def test_a_failed_job_shows_its_failure_reason_and_exits_non_zero(calls, capsys, monkeypatch):
    def failed(job):
        job.training_job_status, job.secondary_status = "Failed", "Failed"
        job.failure_reason = "AlgorithmError: mnist: t10k-labels-idx1-ubyte.gz: truncated\nsee logs"

    script(monkeypatch, CreateTrainingJob=failed)
    assert train("--wait") == 2
    err = one_error_line(capsys)
    assert "failed: AlgorithmError: mnist: t10k-labels-idx1-ubyte.gz: truncated see logs" in err


def script(monkeypatch, **after):
    """Play SageMaker's part: after each named call, move moto's job on (its state is all-or-nothing)."""
    real = aws.session

    def scripted(region, **options):
        session = real(region, **options)
        for operation, change in after.items():
            session.events.register(f"after-call.sagemaker.{operation}", lambda parsed, change=change, **_: change(
                moto_job(parsed.get("TrainingJobName") or parsed["TrainingJobArn"].rsplit("/", 1)[1])))
        return session

    monkeypatch.setattr(aws, "session", scripted)


def test_status_shows_the_job_and_stop_stops_only_a_running_one(calls, capsys, monkeypatch):
    assert train("--spot") == 0
    name = sent(calls, "CreateTrainingJob")[0]["TrainingJobName"]
    capsys.readouterr()
    assert main(["sagemaker", "status", name]) == 0
    out = capsys.readouterr().out
    assert f"{name}  Completed" in out and "mnist-cnn on digits, seed 0" in out
    assert "ml.g5.xlarge x1, managed spot" in out and "model.tar.gz" in out

    assert main(["sagemaker", "stop", name]) == 0
    assert "ended already" in capsys.readouterr().out and sent(calls, "StopTrainingJob") == []

    moto_job(name).training_job_status = "InProgress"
    real = aws.session

    def answering_stop(region, **options):
        """moto 5.2 lacks StopTrainingJob: answer it as SageMaker does (an empty 200) before moto sees it."""
        session = real(region, **options)
        session.events.register("before-call.sagemaker.StopTrainingJob",
                                lambda **_: (AWSResponse("https://sagemaker", 200, {}, None), {}))
        return session

    monkeypatch.setattr(aws, "session", answering_stop)
    assert main(["sagemaker", "stop", name]) == 0
    assert sent(calls, "StopTrainingJob") == [{"TrainingJobName": name}]
    assert "stopping" in capsys.readouterr().out


def test_logs_print_every_host_stream(calls, capsys):
    assert train() == 0
    name = sent(calls, "CreateTrainingJob")[0]["TrainingJobName"]
    logs = boto3.client("logs")
    assert main(["sagemaker", "logs", name]) == 2
    assert "no logs yet" in one_error_line(capsys)
    logs.create_log_group(logGroupName=jobs.LOG_GROUP)
    now_ms = int(datetime.now().timestamp() * 1000)  # CloudWatch drops events older than 14 days
    for host, lines in [("algo-1-1700000000", ["epoch 1/2", "epoch 2/2"]), ("algo-2-1700000000", ["ready"])]:
        logs.create_log_stream(logGroupName=jobs.LOG_GROUP, logStreamName=f"{name}/{host}")
        logs.put_log_events(logGroupName=jobs.LOG_GROUP, logStreamName=f"{name}/{host}",
                            logEvents=[{"timestamp": now_ms + i, "message": m} for i, m in enumerate(lines)])
    capsys.readouterr()
    assert main(["sagemaker", "logs", name]) == 0
    assert capsys.readouterr().out.splitlines() == ["== algo-1-1700000000 ==", "epoch 1/2", "epoch 2/2",
                                                     "== algo-2-1700000000 ==", "ready"]


@pytest.mark.parametrize("args, message", [
    (["--role", "dlx-sagemaker"], "bad role ARN 'dlx-sagemaker'"),
    (["--role", "arn:aws:iam::1234:role/x"], "bad role ARN"),
    (["--instance-count", "2"], "mnist-cnn is a keras topic and trains in one process; data-parallel training"),
    (["--spot", "--max-run", "600", "--max-wait", "300"], "shorter than --max-run 600"),
    (["--max-wait", "300"], "add --spot"),
    (["--param", "epochz=2"], "unknown parameter 'epochz'"),
])
def test_bad_requests_fail_before_any_aws_call(calls, capsys, args, message):
    assert train(*args) == 2
    assert message in one_error_line(capsys)
    assert calls == []


def test_missing_credentials_are_one_line(capsys, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert train() == 2
    assert "no AWS credentials found; run `aws configure`" in one_error_line(capsys)
    assert main(["sagemaker", "status", "dlx-mnist-cnn-20261128-104512"]) == 2
    assert "no AWS credentials found" in one_error_line(capsys)


def test_missing_settings_name_every_way_to_give_them(capsys):
    assert main(["sagemaker", "train", "mnist-cnn", "--bucket", BUCKET, "--image", IMAGE]) == 2
    assert "no role arn given: pass --role, set DLX_ROLE_ARN" in one_error_line(capsys)


def test_bucket_in_another_region_or_missing_is_one_line(calls, capsys):
    boto3.client("s3", region_name="eu-west-1").create_bucket(
        Bucket="dlx-eu-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert main(["sagemaker", "train", "mnist-cnn", "--role", ROLE, "--image", IMAGE, "--bucket", "dlx-eu-bucket"]) == 2
    assert "bucket dlx-eu-bucket is in eu-west-1 but the job would run in us-east-1; pass --region eu-west-1" \
        in one_error_line(capsys)
    assert main(["sagemaker", "train", "mnist-cnn", "--role", ROLE, "--image", IMAGE, "--bucket", "no-such-dlx-bucket"]) == 2
    assert "bucket no-such-dlx-bucket: does not exist" in one_error_line(capsys)
    assert sent(calls, "CreateTrainingJob") == []


def test_unknown_job_is_one_line(calls, capsys):
    assert main(["sagemaker", "status", "dlx-nope-20261128-104512"]) == 2
    assert "training job dlx-nope-20261128-104512: no such job in us-east-1" in one_error_line(capsys)


def test_several_instances_train_a_pytorch_topic_and_refuse_the_others(calls):
    spec = jobs.JobSpec(Job.create("mnist-mlp"), role=ROLE, bucket=BUCKET, image=IMAGE, instance_count=2)
    with pytest.raises(DlxError, match="mnist-mlp is a keras topic and trains in one process"):
        jobs.check(spec)
    assert calls == []
    assert main(["sagemaker", "train", "cf-regularized", "--role", ROLE, "--bucket", BUCKET, "--image", IMAGE,
                 "--instance-count", "2", "--instance-type", "ml.g5.12xlarge"]) == 0
    [request] = sent(calls, "CreateTrainingJob")
    assert request["ResourceConfig"]["InstanceCount"] == 2
    assert moto_job(request["TrainingJobName"]).resource_config["InstanceCount"] == 2
    # The image's entrypoint does the launching (containers/entrypoint.distribute): no SDK driver channel.
    assert "AlgorithmSpecification" in request and "ContainerEntrypoint" not in request["AlgorithmSpecification"]
    assert [c["ChannelName"] for c in request.get("InputDataConfig", [])] == []


def test_job_names_follow_sagemaker_rules():
    assert jobs.job_name("mnist-cnn", datetime(2026, 11, 28, 10, 45, 12)) == "dlx-mnist-cnn-20261128-104512"
    long = jobs.job_name("a_very_long_topic_name_" * 4, datetime(2026, 11, 28, 10, 45, 12))
    assert len(long) <= 63 and re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*", long)


def test_a_dry_run_with_nothing_to_stage_needs_no_aws_account(capsys, monkeypatch, fake_mnist):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert train("--dry-run") == 0  # digits is bundled: no channel, no bucket check, no call at all
    out = capsys.readouterr().out
    request = json.loads(out[out.index("{"):])
    assert request["HyperParameters"]["dataset"] == "digits" and "InputDataConfig" not in request
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    assert train("--dry-run", "--dataset", "mnist", "--data-dir", str(fake_mnist)) == 2  # staging reads S3
    assert "no AWS credentials found" in one_error_line(capsys)


def test_every_missing_setting_is_named_at_once(capsys):
    assert main(["sagemaker", "train", "mnist-cnn"]) == 2
    err = one_error_line(capsys)
    assert "missing settings role_arn, bucket, image_uri: pass --role, --bucket, --image" in err
    assert "DLX_ROLE_ARN, DLX_BUCKET, DLX_IMAGE_URI" in err and "dlx aws bootstrap --write-config" in err


def test_warm_pools_and_tracking_reach_the_request(calls, capsys):
    assert train("--keep-alive", "600", "--tracking-uri", "http://mlflow.internal:5000") == 0
    [request] = sent(calls, "CreateTrainingJob")
    assert request["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 600
    assert request["Environment"] == {"MLFLOW_TRACKING_URI": "http://mlflow.internal:5000", "DLX_TARGET": "sagemaker"}
    assert train("--keep-alive", "600", "--spot") == 2
    assert "warm pool) is for on-demand instances" in one_error_line(capsys)
    assert train("--keep-alive", "7200") == 2
    assert "0 to 3600 seconds" in one_error_line(capsys)


def test_logs_follow_prints_new_lines_until_the_job_ends(calls, capsys, monkeypatch):
    assert train() == 0
    name = sent(calls, "CreateTrainingJob")[0]["TrainingJobName"]
    logs = boto3.client("logs")
    stream = f"{name}/algo-1-1700000000"
    now_ms = int(datetime.now().timestamp() * 1000)
    script_lines = [[], ["epoch 1/2"], ["epoch 2/2", "evaluated"]]  # what appears before each poll
    states = ["InProgress", "InProgress", "Completed"]
    real = jobs.describe

    def described(session, job_name):
        lines = script_lines.pop(0)
        if lines:
            if not logs.describe_log_groups(logGroupNamePrefix=jobs.LOG_GROUP)["logGroups"]:
                logs.create_log_group(logGroupName=jobs.LOG_GROUP)
                logs.create_log_stream(logGroupName=jobs.LOG_GROUP, logStreamName=stream)
            logs.put_log_events(logGroupName=jobs.LOG_GROUP, logStreamName=stream,
                                logEvents=[{"timestamp": now_ms + len(m), "message": m} for m in lines])
        return {**real(session, job_name), "TrainingJobStatus": states.pop(0)}

    monkeypatch.setattr(jobs, "describe", described)
    monkeypatch.setattr(jobs, "LOG_POLL_SECONDS", 0)
    capsys.readouterr()
    assert main(["sagemaker", "logs", name, "--follow"]) == 0
    assert capsys.readouterr().out.splitlines() == ["== algo-1-1700000000 ==", "epoch 1/2", "epoch 2/2", "evaluated"]
    assert states == []  # it stopped once the job had ended


@pytest.mark.parametrize("failure, message", [
    ("client", "SageMaker training request for mnist-cnn: access denied (not allowed)"),
    ("validation", "the SageMaker SDK refused the training request: instance_count"),
])
def test_the_sdks_own_refusals_are_one_line(calls, capsys, monkeypatch, failure, message):
    """ModelTrainer calls AWS and validates its fields itself; both kinds of refusal end in one line."""
    from botocore.exceptions import ClientError
    from pydantic import BaseModel
    from sagemaker import train as sdk

    class Shape(BaseModel):
        instance_count: int

    def refusing(**kwargs):
        if failure == "client":
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "GetCallerIdentity")
        Shape(instance_count="many")

    monkeypatch.setattr(sdk, "ModelTrainer", refusing)
    assert train() == 2
    assert message in one_error_line(capsys)
    assert not sent(calls, "CreateTrainingJob")
