"""Run a topic's pipeline on this machine with kfp.local, one directory per run.

Each step runs as a subprocess of the current Python environment (SubprocessRunner without a
venv), exactly the component code a cluster would run. The run directory is assembled as
``.<id>.partial`` and renamed when the pipeline succeeds, so a directory without that suffix is
always complete; a failed run is kept as ``<id>.failed`` with its log.

Everything kfp.local and the steps print goes to the run's pipeline.log. The caller's ``on_event``
sees what a console shows instead: each step starting and ending (read from kfp's own log records,
through a filter on its logger), the steps' progress events (components.progress, read from a file
the steps append to), and with ``verbose`` every log line too.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import re
import shutil
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from components import leaderboard
from components.distributed import NPROC_ENV
from components.errors import DlxError
from components.files import read_json, write_json
from components.job import Job
from components.progress import PROGRESS_ENV
from components.registry import Topic
from components.report import write_report
from components.tracking import EXPERIMENT_ENV, RUN_NAME_ENV, TARGET_ENV, URI_ENV
from pipelines import docker_runner
from pipelines.build import build_pipeline
from pipelines.deployment import Deployment
from pipelines.suite import Suite, build_suite, task_topics
from pipelines.sweep import build_sweep
from pipelines.runs import write_index

Event = dict[str, Any]
_DLX_ERROR = re.compile(r"DlxError: (.*)$", re.MULTILINE)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TASK = re.compile(r"(?:Executing task|Task) '([\w-]+)'(?: finished with status (\w+))?")
POLL_SECONDS = 0.2
PROGRESS_FILE = ".progress.jsonl"
"""The steps' progress events, in the pipeline root so that a step's container can write them too."""


class _Tee(io.TextIOBase):
    """stdout during the run: all of it to the log, and with ``verbose`` each line as a "log" event."""

    def __init__(self, log: TextIO, on_event: Callable[[Event], None], verbose: bool) -> None:
        self.log, self.on_event, self.verbose, self.pending = log, on_event, verbose, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.log.write(text)
        if self.verbose:
            self.pending += text
            while "\n" in self.pending:
                line, self.pending = self.pending.split("\n", 1)
                self.on_event({"kind": "log", "line": line})
        return len(text)

    def flush(self) -> None:
        self.log.flush()


class _KfpRecords(logging.Filter):
    """On the root logger while the pipeline runs: kfp.local's records go to the log (and, with
    ``verbose``, on to its console handler); task starts and ends become "step" events."""

    def __init__(self, log: TextIO, on_event: Callable[[Event], None], verbose: bool) -> None:
        super().__init__()
        self.log, self.on_event, self.verbose = log, on_event, verbose
        self.started: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        message = _ANSI.sub("", record.getMessage())
        if not self.verbose:  # verbose: kfp's own handler writes it to stdout, which is the log's tee
            stamp = f"{time.strftime('%H:%M:%S', time.localtime(record.created))}.{int(record.msecs):03d}"
            self.log.write(f"{stamp} - {record.levelname} - {message}\n")
        found = _TASK.match(message)
        if found and found.group(2) is None and message.startswith("Executing"):
            self.started[found.group(1)] = time.perf_counter()
            self.on_event({"kind": "step", "step": found.group(1), "state": "started"})
        elif found and found.group(2):
            seconds = time.perf_counter() - self.started.get(found.group(1), time.perf_counter())
            state = "finished" if found.group(2) == "SUCCESS" else "failed"
            self.on_event({"kind": "step", "step": found.group(1), "state": state, "seconds": round(seconds, 2)})
        return self.verbose


@contextlib.contextmanager
def _progress_events(path: Path, on_event: Callable[[Event], None]) -> Iterator[None]:
    """Pass each JSON line the steps append to ``path`` to ``on_event``, as it arrives."""
    import json

    path.touch()
    done = threading.Event()

    def follow() -> None:
        with path.open(encoding="utf-8") as events:
            pending = ""
            while True:
                finished = done.is_set()  # read once more after the last step ends
                pending += events.read()
                *lines, pending = pending.split("\n")
                for line in lines:
                    with contextlib.suppress(ValueError):
                        on_event(json.loads(line))
                if finished:
                    return
                done.wait(POLL_SECONDS)

    reader = threading.Thread(target=follow, name="dlx-progress", daemon=True)
    reader.start()
    try:
        yield
    finally:
        done.set()
        reader.join()


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Set environment variables for the step subprocesses, restoring them afterwards."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def new_run_dir(root: Path, topic: Topic | Suite, prefix: str = "") -> Path:
    """A fresh ``[prefix]TOPIC-<time>`` under the runs root (a suffix when that one is taken)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate, n = root / f"{prefix}{topic.name}-{stamp}", 1
    while candidate.exists() or candidate.with_name(f".{candidate.name}.partial").exists():
        n += 1
        candidate = root / f"{prefix}{topic.name}-{stamp}-{n}"
    return candidate


def run_local(job: Job, *, run_dir: Path, champion: str = "", margin: float = 0.0, verbose: bool = False,
              on_event: Callable[[Event], None] = lambda event: None, image: str | None = None,
              processes: int = 1, trials: list[str] | None = None, parallel: int = 1, resume: bool = False) -> dict:
    """Run prepare → train → evaluate locally; returns metrics.json's content.

    Each step is a subprocess of this environment, or with ``image`` a container of that image
    (pipelines.docker_runner); with ``processes`` > 1 the train step runs that many under torchrun.
    With ``trials`` (each trial's params_json) it runs the sweep pipeline instead (pipelines.sweep),
    ``parallel`` trials at a time, and the run is the chosen trial's.

    A plain run (subprocess steps, no trials) records its job in the unfinished run directory and
    its train step checkpoints there after every epoch; with ``resume`` (`dlx resume`, see
    ``resumable``) the run of that directory whose process is gone starts again and its train step
    carries on after the last saved epoch."""
    from kfp import local

    if not resume:
        _check_empty(run_dir)
    volumes = {}
    if image:  # the steps' containers see the host's paths they need where they are
        docker_runner.check_engine(image)
        shared = {}
        if job.data_dir and "://" not in job.data_dir:
            job = dataclasses.replace(job, data_dir=str(Path(job.data_dir).resolve()))
            shared[job.data_dir] = "ro"
        if champion and "://" not in champion:
            champion = str(Path(champion).resolve())
            Path(champion).parent.mkdir(parents=True, exist_ok=True)
            shared[str(Path(champion).parent)] = "rw"
        volumes = docker_runner.mounts(shared)
    partial = reclaim(run_dir) if resume else claim(run_dir)
    settings = _start(partial, run_dir, processes)
    checkpoints = image is None and trials is None
    if checkpoints and not resume:
        write_json(partial / JOB_FILE, {"topic": job.topic.name, "arguments": job.arguments(), "champion": champion,
                                        "margin": margin, "processes": processes})
    if image:
        local.init(runner=docker_runner.runner(), pipeline_root=str((partial / "kfp").resolve()), raise_on_error=True)
        tracked = {name: os.environ[name] for name in (URI_ENV, EXPERIMENT_ENV) if os.environ.get(name)}
        deployment = Deployment(image=image, environment={**settings, **docker_runner.CONTAINER_ENV, **tracked,
                                                          TARGET_ENV: "docker"})
    else:
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(partial / "kfp"),
                   raise_on_error=True)
        deployment = Deployment(checkpoint_dir=str((partial / CHECKPOINTS).resolve()) if checkpoints else "")
        settings[TARGET_ENV] = "local"
    pipeline = build_pipeline(job.topic, deployment)
    arguments = {**job.arguments(), "champion": champion, "margin": margin}
    if trials is not None:
        pipeline = build_sweep(job.topic, parallel, deployment)
        arguments = job.arguments(params=False) | {"trials": trials}
    started = time.perf_counter()
    containers = docker_runner.reliable_exit_codes(volumes) if image else contextlib.nullcontext()
    _execute(pipeline, arguments, partial, run_dir, settings, on_event, verbose, containers)
    _assemble(partial, {})
    metrics = _topic_summary(partial, run_dir.name, started)
    shutil.rmtree(partial / CHECKPOINTS, ignore_errors=True)  # the run is whole: nothing left to resume
    (partial / JOB_FILE).unlink(missing_ok=True)
    _finish(partial, run_dir)
    return metrics


JOB_FILE = "job.json"
"""In an unfinished run's directory: what `dlx resume` needs to run it again."""
CHECKPOINTS = "checkpoints"
"""In an unfinished run's directory: the train step's checkpoints."""


def resumable(run_dir: Path) -> tuple[Job, str, float, int]:
    """The job, champion, margin and process count of the unfinished run ``run_dir`` names."""
    partial = run_dir.with_name(f".{run_dir.name}.partial")
    if run_dir.is_dir() and (run_dir / "metrics.json").is_file():
        raise DlxError(f"run {run_dir} finished; nothing to resume (see `dlx runs`)")
    if not (partial / JOB_FILE).is_file():
        raise DlxError(f"no unfinished run {run_dir.name} to resume in {run_dir.parent}/ (only `dlx run` with its "
                       "default runner keeps checkpoints; a failed run is kept as .failed, run it again)")
    try:
        saved = read_json(partial / JOB_FILE)
        job = Job.from_arguments(saved["topic"], saved["arguments"])
        return job, saved["champion"], float(saved["margin"]), int(saved["processes"])
    except (ValueError, KeyError, TypeError):
        raise DlxError(f"{partial / JOB_FILE} is damaged; the run cannot be resumed, start it again") from None


def reclaim(run_dir: Path) -> Path:
    """Take over the unfinished run directory of ``run_dir`` whose writer is gone, keeping its job
    and checkpoints and dropping what its steps left half-written."""
    partial = run_dir.with_name(f".{run_dir.name}.partial")
    if partial not in stale(run_dir.parent):
        raise DlxError(f"run {run_dir.name} is still running (process {(partial / OWNER_FILE).read_text()}); "
                       "wait for it, or stop it first")
    for name in ("kfp", "tmp"):
        shutil.rmtree(partial / name, ignore_errors=True)
    (partial / OWNER_FILE).write_text(str(os.getpid()))
    return partial


def run_suite_local(suite: Suite, *, run_dir: Path, seed: int = 0, champion: str = "", margin: float = 0.0,
                    verbose: bool = False, on_event: Callable[[Event], None] = lambda event: None) -> dict:
    """Run the suite pipeline (pipelines.suite) locally, each step a subprocess of this environment;
    returns the leaderboard (components.leaderboard).

    The run directory holds one folder per topic laid out as a topic's run (prepare/ train/
    evaluate/, metrics.json, report.html), the leaderboard (leaderboard.json and .html) and the
    summarize step's outputs. The console names each step with its topic."""
    from kfp import local

    _check_empty(run_dir)
    partial = claim(run_dir)
    settings = _start(partial, run_dir, 1) | {TARGET_ENV: "local"}
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(partial / "kfp"), raise_on_error=True)
    pipeline = build_suite(suite)
    steps = task_topics(pipeline)

    def relabel(event: Event) -> None:
        if event.get("kind") == "step":
            if event["step"] not in steps and event["step"] != "summarize":
                return  # a topic's nested pipeline as a whole: its steps have lines of their own
            topic, step = steps.get(event["step"], ("suite", event["step"]))
            event = {**event, "step": f"{topic} {step}"}
        on_event(event)

    started = time.perf_counter()
    _execute(pipeline, {"seed": seed, "champion": champion, "margin": margin}, partial, run_dir, settings, relabel,
             verbose, contextlib.nullcontext())
    _assemble(partial, {task: f"{topic}/{step}" for task, (topic, step) in steps.items()})
    rows = [leaderboard.row(_topic_summary(partial / topic.name, f"{run_dir.name}/{topic.name}", started,
                                          log="../pipeline.log"))
            for topic in suite.topics]
    board = leaderboard.write(rows, partial)
    _finish(partial, run_dir)
    return board


def _check_empty(run_dir: Path) -> None:
    if run_dir.exists() and any(run_dir.iterdir()):
        raise DlxError(f"output directory {run_dir} already exists and is not empty; choose another --out")


def _start(partial: Path, run_dir: Path, processes: int) -> dict[str, str]:
    """The claimed run's working folders; returns the environment its steps need."""
    (partial / "tmp").mkdir()
    (partial / "kfp").mkdir()
    progress = partial / "kfp" / PROGRESS_FILE
    return {PROGRESS_ENV: str(progress.resolve()), NPROC_ENV: str(processes), RUN_NAME_ENV: run_dir.name,
            "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}


def _execute(pipeline: Any, arguments: dict, partial: Path, run_dir: Path, settings: dict[str, str],
             on_event: Callable[[Event], None], verbose: bool, containers: contextlib.AbstractContextManager) -> None:
    """Run the pipeline with its output in pipeline.log and its events to ``on_event``; a failure
    keeps the run as ``<id>.failed`` and ends in one DlxError line."""
    root = logging.getLogger()
    with open(partial / "pipeline.log", "w", encoding="utf-8") as log:
        records = _KfpRecords(log, on_event, verbose)
        root.addFilter(records)
        try:
            with _environment(TMPDIR=str(partial / "tmp"), **settings), \
                    _progress_events(Path(settings[PROGRESS_ENV]), on_event), containers, \
                    contextlib.redirect_stdout(_Tee(log, on_event, verbose)), warnings.catch_warnings():
                # The steps name the cluster image and the train step its cluster resources (CPU,
                # memory, GPUs); locally they run in this environment, on this machine, on purpose.
                warnings.filterwarnings("ignore", message=".*non-Python base image.*")
                warnings.filterwarnings("ignore", message=".*no effect in the current local runner.*")
                pipeline(**arguments)
        except RuntimeError as exc:
            log.flush()
            failed = _keep_failed(partial, run_dir)
            raise DlxError(_failure(failed / "pipeline.log", exc)) from None
        finally:
            root.removeFilter(records)


def _topic_summary(folder: Path, run_id: str, started: float, log: str = "pipeline.log") -> dict:
    """A topic's metrics.json and report.html at the top of its run ``folder``; returns the metrics."""
    metrics = read_json(folder / "evaluate" / "evaluation" / "metrics.json")
    metrics |= {"run_id": run_id, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "wall_seconds": round(time.perf_counter() - started, 2)}
    write_json(folder / "metrics.json", metrics)
    write_report(metrics, folder / "evaluate" / "evaluation", folder / "report.html", log=log)
    return metrics


def _finish(partial: Path, run_dir: Path) -> None:
    """Publish the complete run under its name."""
    (partial / OWNER_FILE).unlink()
    partial.rename(run_dir)
    write_index(run_dir.parent)


OWNER_FILE = ".owner"
"""In a run's .partial directory: the pid of the process writing it (stale once that process is gone)."""


def claim(run_dir: Path) -> Path:
    """Create the run's ``.<id>.partial`` directory exclusively, so two runs never share or destroy
    one; its owner file names this process."""
    partial = run_dir.with_name(f".{run_dir.name}.partial")
    partial.parent.mkdir(parents=True, exist_ok=True)
    try:
        partial.mkdir()
    except FileExistsError:
        raise DlxError(f"another run is writing {run_dir} ({partial} exists); choose another --out, or remove a stale "
                       "one with `dlx runs --prune`") from None
    (partial / OWNER_FILE).write_text(str(os.getpid()))
    return partial


def stale(root: Path) -> list[Path]:
    """The ``.partial`` directories whose writer is gone, and the kept ``.failed`` runs, under ``root``."""
    found = []
    for path in sorted(root.glob(".*.partial")) if root.is_dir() else []:
        owner = path / OWNER_FILE
        try:
            os.kill(int(owner.read_text()), 0)
        except PermissionError:  # alive, another user's
            continue
        except (OSError, ValueError):  # no such process, or an unreadable or missing owner file
            found.append(path)
    return found + (sorted(root.glob("*.failed")) if root.is_dir() else [])


def _failure(log: Path, exc: Exception) -> str:
    """A failed step's reason in one line: its DlxError's message, else its exception's last line."""
    text = log.read_text(encoding="utf-8")
    found = _DLX_ERROR.findall(text)
    if found:
        reason = found[-1].strip()
    else:
        errors = re.findall(r"^\s*(\w+(?:\.\w+)*(?:Error|Exception)\b.*)$", text, re.MULTILINE)
        reason = f"a step failed: {errors[-1].strip()}" if errors else _ANSI.sub("", str(exc))
    return f"{reason} (full log: {log})"


def _keep_failed(partial: Path, run_dir: Path) -> Path:
    failed = run_dir.with_name(run_dir.name + ".failed")
    shutil.rmtree(failed, ignore_errors=True)
    shutil.rmtree(partial / "tmp", ignore_errors=True)
    partial.rename(failed)
    return failed


def _assemble(partial: Path, places: dict[str, str]) -> None:
    """Lift each task's directory to the run's top, or to where ``places`` puts it."""
    kfp_root = partial / "kfp"
    (pipeline_run,) = [path for path in kfp_root.iterdir() if path.is_dir()]
    for task_dir in pipeline_run.iterdir():
        target = partial / places.get(task_dir.name, task_dir.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        task_dir.rename(target)
    shutil.rmtree(kfp_root)
    shutil.rmtree(partial / "tmp")
    for name in ("evaluate/report", "evaluate/interactive", "summarize/board"):  # kfp names an HTML artifact's
        for artifact in [*partial.glob(name), *partial.glob(f"*/{name}")]:          # file as the output itself
            if artifact.is_file():
                artifact.rename(artifact.with_name(f"{artifact.name}.html"))
