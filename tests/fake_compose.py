"""A stand-in for `docker-compose` that runs SageMaker local mode's container as a process here.

The SageMaker SDK's local mode writes docker-compose.yaml (the image, its volumes under /opt/ml,
the environment) and runs `docker-compose -f FILE up --build --abort-on-container-exit`. This
script reads that file, records it (FAKE_COMPOSE_RECORD, JSON lines), lays the volumes out under a
folder of its own as the container would see them, and runs the image's entrypoint with its
default command (`train`) there, with DLX_SM_ROOT pointing at that folder. So the SDK's layout is
checked against the real entrypoint, without a container engine.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

CONTAINER_ROOT = "/opt/ml"


def main(argv: list[str]) -> int:
    if argv[:1] == ["version"]:
        print("docker-compose version 1.29.2 (fake)")
        return 0
    compose = yaml.safe_load(Path(argv[argv.index("-f") + 1]).read_text())
    ((host, service),) = compose["services"].items()
    with open(os.environ["FAKE_COMPOSE_RECORD"], "a", encoding="utf-8") as record:
        record.write(json.dumps({"argv": argv, "host": host, **service}) + "\n")
    with tempfile.TemporaryDirectory(prefix="fake-compose-") as work:
        root = Path(work) / "ml"
        volumes = [volume.removesuffix(":z").split(":", 1) for volume in service["volumes"]]
        for source, target in sorted(volumes, key=lambda pair: len(pair[1])):
            inside = root / Path(target).relative_to(CONTAINER_ROOT)
            inside.parent.mkdir(parents=True, exist_ok=True)
            if not inside.exists():
                inside.symlink_to(source, target_is_directory=True)
        env = dict(os.environ, DLX_SM_ROOT=str(root))
        for item in service["environment"]:
            name, _, value = item.partition("=")
            env[name] = value.replace(CONTAINER_ROOT, str(root), 1) if value.startswith(CONTAINER_ROOT) else value
        done = subprocess.run([sys.executable, "-m", "containers.entrypoint", "train"], env=env)
    print(f"{host} exited with code {done.returncode}")
    return 0  # as docker-compose up does whatever the container's status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
