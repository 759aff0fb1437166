"""`dlx sagemaker tune`: the CreateHyperParameterTuningJob request, checked under moto."""
import json
import re
from datetime import datetime

import pytest
from moto.sagemaker.models import sagemaker_backends
from test_sagemaker import ACCOUNT, BUCKET, IMAGE, REGION, ROLE, aws_env, calls, one_error_line, sent  # noqa: F401

from components.params import parameter_types
from components.registry import get_topic
from containers.entrypoint import HYPERPARAMETERS
from dlx.cli import main
from infra.sagemaker_tuning import tuning_name


def tune(topic, *extra):
    return main(["sagemaker", "tune", topic, "--role", ROLE, "--bucket", BUCKET, "--image", IMAGE, *extra])


def test_tune_sends_ranges_objective_and_the_training_jobs_definition(calls, tmp_path, capsys):
    assert tune("cf-regularized", "--param", "learning_rate=1e-4:1e-2:log", "--param", "factors=8:64",
                "--param", "optimizer=adam,momentum", "--fix", "epochs=5", "--max-jobs", "12",
                "--max-parallel", "3", "--seed", "4", "--instance-type", "ml.m5.xlarge") == 0
    [request] = sent(calls, "CreateHyperParameterTuningJob")
    name = request["HyperParameterTuningJobName"]
    assert re.fullmatch(r"dlx-cf-regularized-\d{10}", name) and len(name) <= 32
    config = request["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Bayesian" and config["RandomSeed"] == 4
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Minimize", "MetricName": "val_rmse"}
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 12, "MaxParallelTrainingJobs": 3}
    ranges = config["ParameterRanges"]
    assert ranges["ContinuousParameterRanges"] == [
        {"Name": "learning_rate", "MinValue": "0.0001", "MaxValue": "0.01", "ScalingType": "Logarithmic"}]
    assert ranges["IntegerParameterRanges"] == [{"Name": "factors", "MinValue": "8", "MaxValue": "64",
                                                 "ScalingType": "Auto"}]
    assert ranges["CategoricalParameterRanges"] == [{"Name": "optimizer", "Values": ["adam", "momentum"]}]

    definition = request["TrainingJobDefinition"]
    static = definition["StaticHyperParameters"]
    names = set(parameter_types(get_topic("cf-regularized").params))
    # Every hyperparameter the entrypoint reads, by name, except the three the tuner sets for each job.
    assert set(static) == {*HYPERPARAMETERS, *names} - {"learning_rate", "factors", "optimizer"}
    assert (static["topic"], static["epochs"], static["seed"]) == ("cf-regularized", "5", "4")
    spec = definition["AlgorithmSpecification"]
    assert spec["TrainingImage"] == IMAGE and spec["MetricDefinitions"] == [
        {"Name": "val_rmse", "Regex": r"dlx-metric val_rmse=([-+0-9.eE]+)"},
        {"Name": "test_rmse", "Regex": r"dlx-metric test_rmse=([-+0-9.eE]+)"}]
    assert definition["RoleArn"] == ROLE and definition["ResourceConfig"]["InstanceType"] == "ml.m5.xlarge"
    assert "CheckpointConfig" not in definition  # trials must not resume from each other
    assert definition["OutputDataConfig"]["S3OutputPath"] == f"s3://{BUCKET}/dlx/output/"
    assert {"Key": "dlx:topic", "Value": "cf-regularized"} in request["Tags"]

    stored = sagemaker_backends[ACCOUNT][REGION].hyper_parameter_tuning_jobs[name]
    assert stored.hyper_parameter_tuning_job_config["HyperParameterTuningJobObjective"]["MetricName"] == "val_rmse"
    out = capsys.readouterr().out
    assert f"started tuning job {name}: Bayesian, up to 12 training jobs (3 at a time)" in out
    assert "minimize val_rmse" in out


def test_staged_data_reaches_every_training_job(calls, fake_mnist):
    assert tune("mnist-mlp", "--dataset", "mnist", "--data-dir", str(fake_mnist),
                "--param", "dropout=0.1,0.2,0.3", "--strategy", "Grid", "--max-jobs", "3") == 0
    [request] = sent(calls, "CreateHyperParameterTuningJob")
    [channel] = request["TrainingJobDefinition"]["InputDataConfig"]
    assert channel["ChannelName"] == "data"
    assert re.fullmatch(rf"s3://{BUCKET}/dlx/data/mnist/[0-9a-f]{{16}}/", channel["DataSource"]["S3DataSource"]["S3Uri"])
    assert request["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"] == {
        "Type": "Maximize", "MetricName": "val_accuracy"}


def test_dry_run_prints_the_request_and_creates_nothing(calls, capsys):
    assert tune("text-gen", "--param", "learning_rate=1e-3:1e-2:log", "--dry-run") == 0
    assert not sent(calls, "CreateHyperParameterTuningJob")
    out = capsys.readouterr().out
    request = json.loads(out[out.index("{"):])
    assert request["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["MetricName"] == \
        "val_nats_per_char"


@pytest.mark.parametrize("args, message", [
    (["--param", "learning_rat=1:2"], "unknown parameter 'learning_rat' for cf-regularized"),
    (["--param", "optimizer=1:2"], "optimizer is not a number"),
    (["--param", "factors=0:8"], "factors"),  # a bound that makes no valid job
    (["--param", "factors=8.5:16"], "not a whole number"),
    (["--param", "learning_rate=1e-4:1e-2", "--strategy", "Grid"], "Grid takes values only"),
    (["--param", "factors=8,16", "--max-jobs", "2", "--max-parallel", "3"], "max parallel <= max jobs"),
    ([], "at least one --param"),
])
def test_bad_searches_fail_before_any_aws_call(calls, capsys, args, message):
    assert tune("cf-regularized", *args) == 2
    assert message in one_error_line(capsys)
    assert not [name for name, _ in calls if name != "GetBucketLocation"]


def test_keras_topics_refuse_several_instances_per_job(calls, capsys):
    assert tune("mnist-mlp", "--param", "dropout=0.1,0.2", "--instance-count", "2") == 2
    assert "trains in one process" in one_error_line(capsys)


def test_tuning_names_fit_sagemakers_limit():
    assert tuning_name("catvar-homebrew", datetime(2026, 12, 2, 18, 30, 5)) == "dlx-catvar-homebrew-1202183005"
    assert len(tuning_name("x" * 80)) == 32
