"""pipelines.docker_runner without an engine: the checks against a small fake of the Docker API over
HTTP, the container run against a recording client. Real containers are `make image-test`'s part."""
from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from components.errors import DlxError
from pipelines import docker_runner


@pytest.fixture
def docker_api(monkeypatch) -> Iterator[set[str]]:
    """A Docker API on localhost answering version, ping and image lookups; yields the images it holds."""
    images: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path.endswith("/version"):
                self._answer(200, {"ApiVersion": "1.41", "Version": "fake"})
            elif path.endswith("/_ping"):
                self._answer(200, "OK")
            elif "/images/" in path and path.endswith("/json"):
                name = path.split("/images/", 1)[1].removesuffix("/json")
                self._answer(200, {"Id": "sha256:1"}) if name in images else self._answer(404, {"message": "no such image"})
            else:
                self._answer(404, {"message": f"not faked: {path}"})

        def _answer(self, status: int, body: object) -> None:
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{server.server_port}")
    yield images
    server.shutdown()


def test_an_engine_holding_the_image_passes(docker_api):
    docker_api.add("localhost/dlx:1")
    docker_runner.check_engine("localhost/dlx:1")


def test_a_missing_image_says_how_to_build_it(docker_api):
    with pytest.raises(DlxError) as error:
        docker_runner.check_engine("localhost/dlx:2")
    message = str(error.value)
    assert "image localhost/dlx:2 is not in the engine at tcp://127.0.0.1:" in message
    assert "make image IMAGE=localhost/dlx:2" in message and "\n" not in message


def test_no_engine_says_how_to_start_one(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    with pytest.raises(DlxError) as error:
        docker_runner.check_engine("localhost/dlx:1")
    message = str(error.value)
    assert message.startswith(f"no Docker API at unix://{tmp_path}/none.sock")
    assert "podman system service --time=0" in message and "\n" not in message


class Container:
    def __init__(self, status: int, lines: list[bytes], fail_logs: bool = False):
        self.status, self.lines, self.fail_logs, self.removed = status, lines, fail_logs, False

    def logs(self, stream: bool, follow: bool) -> Iterator[bytes]:
        assert stream and follow
        yield from self.lines
        if self.fail_logs:
            raise ConnectionError("the engine went away")

    def wait(self) -> dict:
        return {"StatusCode": self.status}

    def remove(self, force: bool) -> None:
        self.removed = force


class Client:
    def __init__(self, container: Container):
        self.container, self.runs = container, []
        self.containers = self

    def run(self, **kwargs: object) -> Container:
        self.runs.append(kwargs)
        return self.container


def test_a_failed_step_returns_its_real_status_and_its_container_is_removed(capsys):
    container = Container(3, [b"dlx: error: no data\n"])
    client = Client(container)
    status = docker_runner.run_container(client, "img:1", ["python", "-c", "x"], {"/a": {"bind": "/a"}},
                                         extra_volumes={"/data": {"bind": "/data", "mode": "ro"}},
                                         auto_remove=True, user="1000:1000")
    assert status == 3 and container.removed
    (run,) = client.runs
    assert "auto_remove" not in run and run["detach"] and run["user"] == "1000:1000"
    assert run["volumes"] == {"/a": {"bind": "/a"}, "/data": {"bind": "/data", "mode": "ro"}}
    assert capsys.readouterr().out == "dlx: error: no data\n"


def test_the_container_is_removed_when_its_logs_break():
    container = Container(0, [b"epoch 1\n"], fail_logs=True)
    with pytest.raises(ConnectionError):
        docker_runner.run_container(Client(container), "img:1", ["true"], {})
    assert container.removed


def test_kfps_handler_is_replaced_for_the_block_only():
    from kfp.local import docker_task_handler

    original = docker_task_handler.run_docker_container
    with docker_runner.reliable_exit_codes({"/data": {"bind": "/data", "mode": "ro"}}):
        patched = docker_task_handler.run_docker_container
        assert patched.func is docker_runner.run_container and patched.keywords["extra_volumes"]["/data"]["mode"] == "ro"
    assert docker_task_handler.run_docker_container is original


def test_the_runner_clears_the_entrypoint_and_runs_as_the_caller():
    runner = docker_runner.runner()
    assert runner.container_run_args == {"entrypoint": [""], "user": f"{os.getuid()}:{os.getgid()}"}


def test_mounts_are_absolute_and_where_they_are_on_the_host(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    assert docker_runner.mounts({"data": "ro"}) == {str(tmp_path / "data"): {"bind": str(tmp_path / "data"), "mode": "ro"}}
