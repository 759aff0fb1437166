"""The image for real (`make image-test`): build it, run the pipeline's steps in it, run it as SageMaker's local mode does.

    python -m benchmarks.image [--image IMAGE] [--engine podman] [--host-pip] [--no-build]

1. Builds the base where no registry serves python:3.11-slim (`make base-image`), then the image
   (`make image`), and prints their build times and the image's size.
2. Runs mnist-mlp (digits) and cf-regularized (synthetic ratings) with `dlx run` twice, with the
   subprocess runner and with `--runner docker`, and checks that their metrics agree.
3. Runs mnist-mlp (Keras) and text-gen (PyTorch) with `dlx sagemaker train --local` twice: once
   straight through, once stopped (the container killed) after a finished epoch and started again
   on the same checkpoint folder; the rerun must resume and its metrics equal the straight run's.

Needs a container engine and docker-compose; with Podman and no DOCKER_HOST it starts Podman's
API service on a socket of its own for the run. Prints a table and merges it into --out.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks.common import merge_results
from components.files import read_json
from components.image import DEFAULT_IMAGE
from containers import build

TIMING = {"train_seconds", "samples_per_second", "wall_seconds", "run_id", "finished_at"}
"""metrics.json entries that differ between two runs of the same job by their nature."""
RUNNER_JOBS = [("mnist-mlp", []), ("cf-regularized", [])]
LOCAL_JOBS = [("mnist-mlp", ["--param", "epochs=12"]), ("text-gen", ["--param", "epochs=4"])]
DLX = str(Path(sys.executable).with_name("dlx"))


def _build(args: argparse.Namespace) -> dict:
    """Base (when no registry serves the default one) and image; their seconds and the image's size."""
    tool = build.engine(args.engine)
    figures: dict = {"engine": tool}
    env = build.environment(tool)
    if not build.has_image(tool, build.DEFAULT_BASE) and \
            subprocess.run([tool, "pull", build.DEFAULT_BASE], env=env, capture_output=True, timeout=120).returncode:
        print(f"== {build.DEFAULT_BASE} cannot be pulled here: building the Debian base", flush=True)
        started = time.perf_counter()
        _check(build.main(["--engine", tool, "base"]), "make base-image")
        figures |= {"base": build.DEBIAN_BASE, "base_build_seconds": round(time.perf_counter() - started)}
    print(f"== building {args.image}", flush=True)
    started = time.perf_counter()
    _check(build.main(["--engine", tool, "image", "--tag", args.image, *(["--host-pip"] if args.host_pip else [])]),
           "make image")
    return figures | {"image_build_seconds": round(time.perf_counter() - started),
                      "image_gb": round(build.image_size(tool, args.image) / 1e9, 2)}


def _check(code: int, what: str) -> None:
    if code:
        raise SystemExit(f"image-test: `{what}` failed; see its output above")


@contextlib.contextmanager
def docker_api(tool: str) -> Iterator[str]:
    """A Docker API for the runs: DOCKER_HOST's, Docker's own, else Podman's service started for the run."""
    import docker

    def answers() -> bool:
        try:
            docker.from_env().ping()
            return True
        except docker.errors.DockerException:
            return False

    if os.environ.get("DOCKER_HOST") or answers() or os.path.basename(tool) != "podman":
        yield os.environ.get("DOCKER_HOST", "the default socket")
        return
    socket = f"unix://{tempfile.gettempdir()}/dlx-image-test-{os.getpid()}.sock"
    service = subprocess.Popen([tool, "system", "service", "--time=0", socket], env=build.environment(tool))
    os.environ["DOCKER_HOST"] = socket
    try:
        for _ in range(60):
            if answers():
                break
            time.sleep(0.5)
        else:
            raise SystemExit(f"image-test: Podman's API service did not answer at {socket}")
        yield socket
    finally:
        service.terminate()
        service.wait(timeout=30)
        del os.environ["DOCKER_HOST"]


def _dlx(*arguments: str) -> tuple[int, str, float]:
    """Run the dlx command line, its output streamed and kept; (exit status, output, seconds)."""
    started, lines = time.perf_counter(), []
    with subprocess.Popen([DLX, *arguments], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as run:
        for line in run.stdout:
            sys.stdout.write(line)
            lines.append(line)
    return run.returncode, "".join(lines), round(time.perf_counter() - started, 1)


def differences(first: dict, second: dict) -> list[str]:
    """The metrics.json entries two runs of the same job disagree on, timings apart."""
    return sorted(key for key in set(first) | set(second) if key not in TIMING and first.get(key) != second.get(key))


def _main_figure(metrics: dict) -> str:
    from components.registry import get_topic

    name = get_topic(metrics["topic"]).main_metric
    return f"{name} {metrics['test'][name]:.4f}"


def compare_runners(image: str, work: Path) -> list[dict]:
    """Each job with the subprocess runner and in the image; the two runs' metrics must agree."""
    rows = []
    for topic, extra in RUNNER_JOBS:
        runs, seconds = {}, []
        for runner in ("subprocess", "docker"):
            out = work / f"{runner}-{topic}"
            flags = ["--runner", "docker", "--image", image] if runner == "docker" else []
            print(f"== dlx run {topic} --runner {runner}", flush=True)
            code, _, took = _dlx("run", topic, *extra, *flags, "--out", str(out))
            if code:
                raise SystemExit(f"image-test: dlx run {topic} --runner {runner} failed (exit {code})")
            runs[runner] = read_json(out / "metrics.json")
            seconds.append(took)
        diff = differences(runs["subprocess"], runs["docker"])
        rows.append({"topic": f"{topic} (dlx run)", "reference": _main_figure(runs["subprocess"]),
                     "compared_with": "--runner docker", "result": _main_figure(runs["docker"]),
                     "seconds": seconds,
                     "differences": diff, "equal": not diff})
    return rows


def _interrupt_when(checkpoints: Path, image: str, epochs: int, process: subprocess.Popen) -> int:
    """Kill the job's container once the epoch log shows ``epochs`` finished; the epochs done then."""
    import docker

    log = checkpoints / "epochs.json"
    while process.poll() is None:
        try:
            done = len(read_json(log)["elapsed"]) if log.is_file() else 0
        except ValueError:  # caught mid-replace
            done = 0
        if done >= epochs:
            client = docker.from_env()
            for container in client.containers.list(filters={"ancestor": image}):
                container.kill()
            return done
        time.sleep(0.2)
    raise SystemExit("image-test: the job ended before it could be interrupted; give it more epochs")


def local_mode(image: str, work: Path) -> list[dict]:
    """Each job straight through, and stopped after an epoch then resumed: the metrics must be equal."""
    rows = []
    for topic, extra in LOCAL_JOBS:
        command = ["sagemaker", "train", topic, "--local", "--image", image, *extra]
        print(f"== dlx sagemaker train {topic} --local, straight through", flush=True)
        straight_runs = work / f"local-{topic}-straight"
        code, _, seconds = _dlx(*command, "--runs-dir", str(straight_runs),
                                "--checkpoint-dir", str(work / f"ck-{topic}-straight"))
        if code:
            raise SystemExit(f"image-test: the local job {topic} failed (exit {code})")
        straight = read_json(next(straight_runs.glob("sagemaker-*/metrics.json")))

        print(f"== dlx sagemaker train {topic} --local, interrupted after epoch 2, then again", flush=True)
        resumed_runs, checkpoints = work / f"local-{topic}-resumed", work / f"ck-{topic}-resumed"
        arguments = [*command, "--runs-dir", str(resumed_runs), "--checkpoint-dir", str(checkpoints)]
        with subprocess.Popen([DLX, *arguments], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as job:
            stopped_after = _interrupt_when(checkpoints, image, 2, job)
            tail = job.stdout.read().strip().splitlines()[-1:]
        print(f"   killed the container after epoch {stopped_after}; the job said: {tail[0] if tail else ''}")
        if job.returncode == 0:
            raise SystemExit("image-test: the interrupted job reported success")
        code, output, _ = _dlx(*arguments)
        if code:
            raise SystemExit(f"image-test: the resumed local job {topic} failed (exit {code})")
        resumed = read_json(next(resumed_runs.glob("sagemaker-*/metrics.json")))
        diff = differences(straight, resumed)
        rows.append({"topic": f"{topic} (--local)", "reference": _main_figure(straight),
                     "compared_with": f"stopped after epoch {stopped_after}, resumed", "result": _main_figure(resumed),
                     "seconds": [seconds], "resumed": "resuming from the checkpoint after epoch" in output,
                     "differences": diff, "equal": not diff})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    parser.add_argument("--engine", default=os.environ.get("DOCKER") or None, help="docker or podman ($DOCKER)")
    parser.add_argument("--host-pip", action="store_true", help="hand this host's pip settings to the build")
    parser.add_argument("--no-build", action="store_true", help="use the image already built")
    parser.add_argument("--out", default="benchmarks/results/image.json")
    args = parser.parse_args(argv)
    if not shutil.which("docker-compose") and not shutil.which("docker"):
        raise SystemExit("image-test: SageMaker's local mode needs docker-compose; apt-get install docker-compose")

    figures = {} if args.no_build else _build(args)
    rows = []
    with docker_api(build.engine(args.engine)) as where, tempfile.TemporaryDirectory(prefix="dlx-image-test-") as tmp:
        print(f"== Docker API at {where}", flush=True)
        rows += compare_runners(args.image, Path(tmp))
        rows += local_mode(args.image, Path(tmp))
    size = figures.get("image_gb") or round(build.image_size(build.engine(args.engine), args.image) / 1e9, 2)
    print(f"\nimage {args.image}: {size:.2f} GB", end="")
    if figures:
        base = f"; base {figures['base']} built in {figures['base_build_seconds']} s" if "base" in figures else ""
        print(f", built in {figures['image_build_seconds']} s with {figures['engine']}{base}", end="")
    print("\n\n| job | reference run | compared with | its result | same metrics |\n| --- | --- | --- | --- | --- |")
    for row in rows:
        same = "yes" if row["equal"] else f"no: {', '.join(row['differences'])}"
        print(f"| {row['topic']} | {row['reference']} | {row['compared_with']} | {row['result']} | {same} |")
    merged = merge_results(args.out, "image", rows, **(figures | {"image": args.image, "image_gb": size}))
    print(f"merged into {merged}")
    if not all(row["equal"] and row.get("resumed", True) for row in rows):
        raise SystemExit("image-test: a run in the image did not match its reference; see the table")


if __name__ == "__main__":
    main()
