"""One job description: the CLI's flags, the pipeline's parameters, SageMaker's hyperparameters and the
entrypoint's reading of them are one Job, checked the same way everywhere."""
import pytest
from kfp.pipeline_spec.pipeline_spec_pb2 import ParameterType

from components.errors import DlxError
from components.job import ARGUMENTS, Job
from components.params import format_value, parameter_types
from containers.entrypoint import HYPERPARAMETERS
from infra.sagemaker import JobSpec, hyperparameters
from pipelines.build import build_pipeline


def test_arguments_read_back_as_the_same_job():
    job = Job.create("cf-regularized", "movielens-100k", options=["split=u1"], params=["epochs=3", "factors=8"], seed=7,
                     data_dir="s3://bucket/ml")
    again = Job.from_arguments("cf-regularized", job.arguments())
    assert again == job
    strings = {name: format_value(value) for name, value in job.arguments().items()}  # as SageMaker passes them
    assert Job.from_arguments("cf-regularized", strings) == job
    fields = job.arguments(params=False)
    assert Job.from_arguments("cf-regularized", {**fields, "factors": "8"}).params == \
        Job.create("cf-regularized", "movielens-100k", params=["factors=8"]).params  # the rest: the data set's defaults
    assert (job.params.epochs, job.params.factors, job.dataset_options) == (3, 8, {"split": "u1"})


def test_the_pipeline_and_the_sagemaker_job_take_exactly_the_job_arguments():
    job = Job.create("mnist-mlp")
    pipeline = build_pipeline(job.topic)
    inputs = pipeline.pipeline_spec.root.input_definitions.parameters
    names = list(parameter_types(job.topic.params))
    assert set(inputs) == {*ARGUMENTS, "champion", "margin", *names}
    kinds = {name: inputs[name].parameter_type for name in ("epochs", "learning_rate", "optimizer", "hidden_units")}
    assert kinds == {"epochs": ParameterType.NUMBER_INTEGER, "learning_rate": ParameterType.NUMBER_DOUBLE,
                     "optimizer": ParameterType.STRING, "hidden_units": ParameterType.LIST}
    assert inputs["epochs"].default_value.number_value == job.params.epochs
    spec = JobSpec(job, role="arn:aws:iam::123456789012:role/r", bucket="b", image="i")
    hyper = hyperparameters(spec)
    assert set(hyper) == {*HYPERPARAMETERS, *names} and set(HYPERPARAMETERS) == {"topic", *ARGUMENTS} - {"data_dir"}
    assert hyper["hidden_units"] == ",".join(map(str, job.params.hidden_units)) and hyper["epochs"] == str(job.params.epochs)


@pytest.mark.parametrize("values, message", [
    ({"epochs": "three"}, "bad value 'three' for parameter epochs"),
    ({"epochs": 2.5}, "bad value 2.5 for parameter epochs"),
    ({"epoch": "3"}, "epoch for mnist-mlp; valid: dataset, dataset_options"),
    ({"dataset_options": '["split"]'}, "must be a JSON object"),
    ({"dataset": "mnist", "dataset_options": '{"split": "u1"}'}, "takes no options"),
    ({"seed": "x"}, "seed must be a whole number"),
    ({"seed": "-1"}, "between 0 and 2**32 - 1"),
])
def test_bad_arguments_are_one_line_errors(values, message):
    with pytest.raises(DlxError, match=message.replace("*", r"\*")) as error:
        Job.from_arguments("mnist-mlp", values)
    assert "\n" not in str(error.value)


def test_create_checks_what_the_flags_say():
    with pytest.raises(DlxError, match="takes no data dir"):
        Job.create("mnist-mlp", "digits", data_dir="/data")
    with pytest.raises(DlxError, match="unknown parameter 'epoch'"):
        Job.create("mnist-mlp", params=["epoch=3"])
    assert Job.create("text-gen", "text-file:/x.txt").dataset_options == {"layout": "plain"}
