"""`dlx submit` and `dlx schedule` against a fake Kubeflow Pipelines server: what reaches the API."""
import socket
import time

import pytest
from fake_kfp import FakeKfp

import pipelines.submit
from components.registry import get_topic
from dlx.cli import main

RUNS = "/apis/v2beta1/runs"
RECURRING = "/apis/v2beta1/recurringruns"


@pytest.fixture(autouse=True)
def _no_user_settings(tmp_path, monkeypatch):
    """The developer's dlx.toml, DLX_KFP_* and kfp's own variables stay out of the tests."""
    monkeypatch.setenv("DLX_CONFIG", str(tmp_path / "absent.toml"))
    for var in ("DLX_KFP_HOST", "DLX_KFP_TOKEN", "DLX_KFP_EXPERIMENT", "DLX_KFP_IMAGE", "KF_PIPELINES_ENDPOINT",
                "KF_PIPELINES_UI_ENDPOINT", "KF_PIPELINES_DEFAULT_EXPERIMENT_NAME", "KF_PIPELINES_OVERRIDE_EXPERIMENT_NAME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(pipelines.submit, "POLL_SECONDS", 0)
    monkeypatch.setenv("DLX_KFP_IMAGE", "registry.example/dlx:test")


@pytest.fixture
def server():
    with FakeKfp() as fake:
        yield fake


def _spec(server: FakeKfp, body: dict) -> dict:
    """The compiled spec a run or recurring run references: the registered version's."""
    return server.versions[body["pipeline_version_reference"]["pipeline_version_id"]]["spec"]


def _one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.err.startswith("dlx: error: ") and captured.err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.out + captured.err
    return captured.err


def test_submit_sends_the_pipeline_with_gpu_resources_parameters_and_experiment(server, capsys):
    argv = ["submit", "mnist-cnn", "--host", server.url, "--gpus", "1", "--param", "epochs=3", "--seed", "7",
            "--experiment", "nightly", "--image", "registry.example/dlx:1"]
    assert main(argv) == 0

    (created,) = server.calls("POST", "/apis/v2beta1/experiments")
    assert created.body["display_name"] == "nightly"
    (experiment_id,) = server.experiments
    (run,) = server.calls("POST", RUNS)
    assert run.body["experiment_id"] == experiment_id

    assert "pipeline_spec" not in run.body  # the run references a registered version instead
    spec = _spec(server, run.body)
    assert spec["pipelineInfo"]["name"] == "dlx-mnist-cnn"
    assert set(spec["root"]["dag"]["tasks"]) == {"prepare", "train", "evaluate"}
    executors = spec["deploymentSpec"]["executors"]
    train = executors["exec-train"]["container"]
    topic = get_topic("mnist-cnn")
    assert train["resources"]["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert train["resources"]["accelerator"]["resourceCount"] == "1"
    assert (train["resources"]["resourceCpuRequest"], train["resources"]["resourceMemoryRequest"]) == (topic.cpu, topic.memory)
    assert "resources" not in executors["exec-prepare"]["container"]
    assert {e["container"]["image"] for e in executors.values()} == {"registry.example/dlx:1"}

    parameters = run.body["runtime_config"]["parameters"]
    assert (parameters["dataset"], parameters["data_dir"], parameters["seed"]) == ("digits", "", 7)
    assert (parameters["epochs"], parameters["filters"]) == (3, [32, 64])  # each parameter typed, by name
    assert (parameters["champion"], parameters["margin"]) == ("", 0.0)

    out = capsys.readouterr().out
    (run_id,) = server.runs
    assert f"run {run_id}" in out and f"{server.url}/#/runs/details/{run_id}" in out
    assert "Experiment details" not in out  # kfp.Client's own chatter stays off the console


def test_token_flag_is_sent_as_bearer_and_beats_the_environment(monkeypatch, capsys):
    monkeypatch.setenv("DLX_KFP_TOKEN", "stale")
    monkeypatch.setenv("DLX_KFP_EXPERIMENT", "from-env")
    with FakeKfp(token="s3cret") as fake:
        monkeypatch.setenv("DLX_KFP_HOST", fake.url)
        assert main(["submit", "mnist-mlp", "--token", "s3cret"]) == 0
    assert fake.requests and {r.headers["authorization"] for r in fake.requests} == {"Bearer s3cret"}
    assert fake.calls("POST", "/apis/v2beta1/experiments")[0].body["display_name"] == "from-env"


@pytest.mark.parametrize("states, code, shown", [
    (("PENDING", "RUNNING", "SUCCEEDED"), 0, "SUCCEEDED"),
    (("RUNNING", "FAILED"), 2, "ended FAILED: task train failed"),
])
def test_submit_wait_follows_the_run_and_fails_with_it(states, code, shown, capsys):
    with FakeKfp(run_states=states) as fake:
        assert main(["submit", "mnist-mlp", "--host", fake.url, "--wait"]) == code
        (run_id,) = fake.runs
    assert len(fake.calls("GET", f"{RUNS}/{run_id}")) == len(states)
    if code:
        assert shown in _one_line_error(capsys)
    else:
        out = capsys.readouterr().out
        assert out.index("PENDING") < out.index("RUNNING") < out.index(shown)


def test_schedule_create_sends_cron_concurrency_enabled_trigger_and_promotion(server, capsys):
    champion = "s3://models/champions/mnist-cnn.json"
    argv = ["schedule", "create", "mnist-cnn", "--host", server.url, "--cron", "0 0 3 * * *", "--max-concurrency", "2",
            "--name", "nightly-cnn", "--gpus", "2", "--champion", champion, "--margin", "0.005",
            "--dataset", "mnist", "--data-dir", "s3://data/mnist"]
    assert main(argv) == 0
    (created,) = server.calls("POST", RECURRING)
    body = created.body
    assert body["trigger"] == {"cron_schedule": {"cron": "0 0 3 * * *"}}
    assert int(body["max_concurrency"]) == 2
    assert (body["mode"], body["no_catchup"], body["display_name"]) == ("ENABLE", True, "nightly-cnn")
    assert body["experiment_id"] in server.experiments
    parameters = body["runtime_config"]["parameters"]
    assert (parameters["champion"], parameters["margin"]) == (champion, 0.005)
    assert (parameters["dataset"], parameters["data_dir"]) == ("mnist", "s3://data/mnist")
    train = _spec(server, body)["deploymentSpec"]["executors"]["exec-train"]["container"]
    assert train["resources"]["accelerator"]["resourceCount"] == "2"
    (recurring_id,) = server.recurring_runs
    assert f"recurring run {recurring_id}" in capsys.readouterr().out


def test_schedule_list_enable_disable_delete_address_the_right_ids(server, capsys):
    for name in ("first", "second"):
        assert main(["schedule", "create", "mnist-mlp", "--host", server.url, "--cron", "@daily", "--name", name]) == 0
    first, second = server.recurring_runs
    capsys.readouterr()

    assert main(["schedule", "disable", first, "--host", server.url]) == 0
    assert server.calls("POST", f"{RECURRING}/{first}:disable")
    assert (server.recurring_runs[first]["status"], server.recurring_runs[second]["status"]) == ("DISABLED", "ENABLED")
    assert main(["schedule", "delete", second, "--host", server.url]) == 0
    assert server.calls("DELETE", f"{RECURRING}/{second}") and set(server.recurring_runs) == {first}
    capsys.readouterr()
    assert main(["schedule", "list", "--host", server.url]) == 0
    listing = capsys.readouterr().out
    assert first in listing and "DISABLED" in listing and "@daily" in listing and second not in listing
    assert main(["schedule", "enable", first, "--host", server.url]) == 0
    assert server.recurring_runs[first]["status"] == "ENABLED"

    assert main(["schedule", "delete", "no-such-id", "--host", server.url]) == 2
    assert "no recurring run 'no-such-id'" in _one_line_error(capsys)


@pytest.mark.parametrize("argv, message", [
    (["schedule", "create", "mnist-cnn", "--cron", "0 3 * * *"], "has 5 fields; Kubeflow Pipelines wants 6"),
    (["schedule", "create", "mnist-cnn", "--cron", "0 0 3 * * * *"], "has 7 fields"),
    (["schedule", "create", "mnist-cnn", "--cron", "@daily", "--max-concurrency", "0"], "--max-concurrency must be at least 1"),
    (["submit", "mnist-cnn", "--param", "epoch=3"], "unknown parameter 'epoch' for mnist-cnn"),
    (["submit", "mnist-cnn", "--dataset", "cifar"], "does not take data set 'cifar'"),
    (["submit", "mnist-cnn", "--data-dir", "/data/mnist"], "--data-dir /data/mnist is a path on this machine"),
    (["submit", "mnist-cnn", "--champion", "champion.json"], "--champion champion.json is a path on this machine"),
    (["submit", "mnist-cnn", "--gpus", "-1"], "--gpus must be at least 0, got -1"),
    (["submit", "transformer"], "unknown topic 'transformer'"),
])
def test_user_errors_are_caught_before_the_server_is_contacted(argv, message, server, capsys):
    assert main([*argv, "--host", server.url]) == 2
    assert message in _one_line_error(capsys)
    assert server.requests == []


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("argv", [["submit", "mnist-mlp"], ["schedule", "list"], ["schedule", "delete", "some-id"]])
def test_unreachable_host_is_one_line_and_quick(argv, capsys):
    host = f"http://127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    assert main([*argv, "--host", host]) == 2
    assert time.monotonic() - started < 10  # kfp's own health probe would retry for 25 s
    assert f"cannot reach Kubeflow Pipelines at {host} (Connection refused); check --host" in _one_line_error(capsys)


@pytest.mark.parametrize("argv", [["submit", "mnist-mlp"], ["schedule", "list"]])
def test_rejected_credentials_are_one_line_and_quick(argv, capsys):
    with FakeKfp(token="right") as fake:
        started = time.monotonic()
        assert main([*argv, "--host", fake.url, "--token", "wrong"]) == 2
        assert time.monotonic() - started < 10
    assert fake.calls("GET", "/apis/v2beta1/healthz")[0].headers["authorization"] == "Bearer wrong"
    expected = f"Kubeflow Pipelines at {fake.url} refused the credentials (HTTP 401); pass --token or set DLX_KFP_TOKEN"
    assert expected in _one_line_error(capsys)


def test_the_unpublished_default_image_is_a_one_line_warning(server, monkeypatch, capsys):
    monkeypatch.delenv("DLX_KFP_IMAGE")
    assert main(["submit", "mnist-mlp", "--host", server.url]) == 0
    (warning,) = capsys.readouterr().err.splitlines()
    assert warning.startswith("dlx: warning: ghcr.io/dlx-project/dlx:0.1.0 is the project's default image name")
    monkeypatch.setenv("DLX_KFP_IMAGE", "r.example/dlx:2")  # or [kubeflow] image in dlx.toml
    assert main(["submit", "mnist-mlp", "--host", server.url]) == 0
    assert capsys.readouterr().err == ""
    executors = _spec(server, server.calls("POST", RUNS)[-1].body)["deploymentSpec"]["executors"]
    assert {e["container"]["image"] for e in executors.values()} == {"r.example/dlx:2"}


def test_a_topic_is_one_named_pipeline_with_a_version_per_distinct_spec(server):
    for gpus in ("1", "1", "2"):
        assert main(["submit", "mnist-cnn", "--host", server.url, "--gpus", gpus]) == 0
    assert main(["schedule", "create", "mnist-cnn", "--host", server.url, "--cron", "@daily", "--gpus", "2"]) == 0
    (pipeline,) = server.pipelines.values()
    assert pipeline["display_name"] == "dlx-mnist-cnn"
    names = [v["display_name"] for v in server.versions.values()]
    # upload_pipeline's own first version, then one per distinct compiled spec
    assert names[0] == "dlx-mnist-cnn" and len(names) == 3 and all(n.startswith("dlx-mnist-cnn-") for n in names[1:])
    runs = [r.body["pipeline_version_reference"]["pipeline_version_id"] for r in server.calls("POST", RUNS)]
    assert runs[0] == runs[1] != runs[2]  # the same spec reuses its version
    (recurring,) = server.calls("POST", RECURRING)
    assert recurring.body["pipeline_version_reference"]["pipeline_version_id"] == runs[2]


def test_kubernetes_settings_reach_the_platform_spec(server, tmp_path, monkeypatch):
    config = tmp_path / "dlx.toml"
    config.write_text('[kubeflow]\nnamespace = "team-a"\ntolerations = ["nvidia.com/gpu:NoSchedule"]\n'
                      'image_pull_secrets = ["regcred"]\nretries = 2\ncheckpoint_pvc = "dlx-checkpoints"\n'
                      '[mlflow]\ntracking_uri = "http://mlflow.team-a:5000"\n')
    monkeypatch.setenv("DLX_CONFIG", str(config))
    argv = ["submit", "cf-regularized", "--host", server.url, "--gpus", "1",
            "--node-selector", "nvidia.com/gpu.product=NVIDIA-A10G", "--toleration", "pool=gpu:NoExecute",
            "--secret-env", "aws-credentials=AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY"]
    assert main(argv) == 0
    (experiment,) = server.calls("POST", "/apis/v2beta1/experiments")
    assert experiment.body["namespace"] == "team-a"
    (run,) = server.calls("POST", RUNS)
    spec = _spec(server, run.body)
    executors = spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    train = executors["exec-train"]
    assert train["nodeSelector"] == {"labels": {"nvidia.com/gpu.product": "NVIDIA-A10G"}}
    assert train["tolerations"] == [{"key": "pool", "operator": "Equal", "value": "gpu", "effect": "NoExecute"}]
    [mount] = train["pvcMount"]
    assert (mount["mountPath"], mount["pvcNameParameter"]) == ("/dlx-checkpoints",
                                                               {"runtimeValue": {"constant": "dlx-checkpoints"}})
    assert "pvcMount" not in executors["exec-evaluate"] and "tolerations" not in executors["exec-prepare"]
    for name in ("exec-prepare", "exec-train", "exec-evaluate"):
        [secret] = executors[name]["imagePullSecret"]
        assert secret["secretNameParameter"] == {"runtimeValue": {"constant": "regcred"}}
        keys = {entry["envVar"] for item in executors[name]["secretAsEnv"] for entry in item["keyToEnv"]}
        assert keys == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert spec["root"]["dag"]["tasks"]["train"]["retryPolicy"]["maxRetryCount"] == 2
    tasks = spec["root"]["dag"]["tasks"]
    assert tasks["train"]["inputs"]["parameters"]["checkpoint_dir"]["runtimeValue"]["constant"] == "/dlx-checkpoints"
    env = {e["name"]: e["value"] for e in spec["deploymentSpec"]["executors"]["exec-evaluate"]["container"]["env"]}
    assert env == {"MLFLOW_TRACKING_URI": "http://mlflow.team-a:5000", "DLX_TARGET": "kubeflow"}


@pytest.mark.parametrize("flag, message", [
    (["--toleration", "nvidia.com/gpu:Sometimes"], "bad toleration 'nvidia.com/gpu:Sometimes'"),
    (["--node-selector", "gpu"], "bad --node-selector 'gpu'"),
    (["--secret-env", "aws-credentials"], "bad --secret-env 'aws-credentials'"),
    (["--image-pull-secret", "Reg_Cred"], "'Reg_Cred' is not a Kubernetes object name"),
    (["--retries", "-1"], "--retries must be at least 0"),
])
def test_bad_kubernetes_settings_are_one_line_before_any_call(flag, message, server, capsys):
    assert main(["submit", "mnist-mlp", "--host", server.url, *flag]) == 2
    assert message in _one_line_error(capsys)
    assert server.requests == []


def test_a_namespace_the_token_cannot_see_is_one_line(capsys, monkeypatch):
    with FakeKfp() as fake:
        monkeypatch.setattr(fake, "handle", lambda request: (403, {"error": "forbidden", "code": 7,
                                                                   "message": "no access to namespace team-b"}))
        assert main(["submit", "mnist-mlp", "--host", fake.url, "--namespace", "team-b"]) == 2
    assert "the token cannot see namespace team-b; check --namespace" in _one_line_error(capsys)
