"""Running the local pipeline's steps in the project's image: kfp.local's DockerRunner, checked first.

Each step runs as it would on a cluster, in the image, through the Docker API: Docker's own, or
Podman's (`podman system service`, with DOCKER_HOST pointing at its socket). Before the pipeline
starts, the API must answer and the image must be there, each failure one line naming the fix.

Three things make DockerRunner work the same everywhere:

- the image's ENTRYPOINT (SageMaker's training contract) is cleared for kfp's own command
  (``entrypoint=[""]``, which Docker and Podman 4 both honour; an empty list Podman ignores);
- the steps run as the caller's uid and gid, so what they write in the mounted pipeline root belongs
  to the caller, with HOME, KERAS_HOME and MPLCONFIGDIR under /tmp, writable by any user;
- kfp 2.17's ``run_docker_container`` starts containers with ``auto_remove=True`` and reads a
  container that is already gone as exit status 0 (or crashes on Podman's answer to it), so a
  failed step can pass for a good one: ``reliable_exit_codes`` replaces it, for the run, with one
  that waits for the container's real status before removing it.
"""
from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from components.errors import DlxError

CONTAINER_ENV = {"HOME": "/tmp", "KERAS_HOME": "/tmp/.keras", "MPLCONFIGDIR": "/tmp/matplotlib"}
"""Where the steps' libraries keep their files when the step runs as the caller's user."""
PODMAN_SOCKET = "unix:///run/podman/podman.sock"


def _where() -> str:
    return os.environ.get("DOCKER_HOST") or "the default socket (/var/run/docker.sock)"


def check_engine(image: str) -> None:
    """The Docker API answers and holds ``image``; else one line saying what to do."""
    try:
        import docker
    except ImportError:
        raise DlxError("the docker runner needs the Docker SDK for Python; pip install docker==7.2.0") from None
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        raise DlxError(f"no Docker API at {_where()} ({' '.join(str(exc).split())[:160]}); start Docker, or Podman's: "
                       f"`podman system service --time=0 {PODMAN_SOCKET} &` and export DOCKER_HOST={PODMAN_SOCKET}") \
            from None
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        raise DlxError(f"image {image} is not in the engine at {_where()}; build it with `make image IMAGE={image}` "
                       "(containers/README.md), or pass --image") from None
    finally:
        client.close()


def runner() -> Any:
    """kfp.local's DockerRunner as dlx runs it (see the module's docstring)."""
    from kfp import local

    return local.DockerRunner(entrypoint=[""], user=f"{os.getuid()}:{os.getgid()}")


def mounts(paths: dict[str, str]) -> dict[str, dict[str, str]]:
    """Host paths a step must see where they are (a data dir read-only, a champion's folder read-write)."""
    return {str(Path(path).resolve()): {"bind": str(Path(path).resolve()), "mode": mode} for path, mode in paths.items()}


def run_container(client: Any, image: str, command: list[str], volumes: dict, extra_volumes: dict | None = None,
                  **run_args: Any) -> int:
    """Run a step's container, stream its output, and return its real exit status, then remove it."""
    run_args.pop("auto_remove", None)
    container = client.containers.run(image=image, command=command, detach=True, stdout=True, stderr=True,
                                      volumes={**volumes, **(extra_volumes or {})}, **run_args)
    try:
        for line in container.logs(stream=True, follow=True):
            print(line.decode(errors="replace"), end="")
        return int(container.wait()["StatusCode"])
    finally:
        container.remove(force=True)


@contextlib.contextmanager
def reliable_exit_codes(extra_volumes: dict | None = None) -> Iterator[None]:
    """kfp.local's Docker task handler with ``run_container`` (mounting ``extra_volumes`` too) in place
    of its own, for the block."""
    from kfp.local import docker_task_handler

    original = docker_task_handler.run_docker_container
    docker_task_handler.run_docker_container = functools.partial(run_container, extra_volumes=extra_volumes)
    try:
        yield
    finally:
        docker_task_handler.run_docker_container = original
