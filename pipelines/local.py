"""Run a topic's pipeline on this machine with kfp.local, one directory per run.

Each step runs as a subprocess of the current Python environment (SubprocessRunner without a
venv), exactly the component code a cluster would run. The run directory is assembled as
``.<id>.partial`` and renamed when the pipeline succeeds, so a directory without that suffix is
always complete; a failed run is kept as ``<id>.failed`` with its log.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from components.errors import DlxError
from components.files import read_json, write_json
from components.job import Job
from components.registry import Topic
from pipelines.build import build_pipeline

_DLX_ERROR = re.compile(r"DlxError: (.*)$", re.MULTILINE)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ConsoleFilter(io.TextIOBase):
    """Tee kfp.local's output: all of it to the log, to the console what a person wants.

    Dropped from the console: the executor's own chatter (its input JSON), the artifact dumps
    after each task, and the traceback of a step that failed with a DlxError (its message is
    raised again in this process instead).
    """

    def __init__(self, log: TextIO, console: TextIO, verbose: bool = False) -> None:
        self.log, self.console, self.verbose = log, console, verbose
        self.pending = ""
        self.mode = "show"
        self.traceback: list[str] = []

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.log.write(text)
        self.pending += text
        while "\n" in self.pending:
            line, self.pending = self.pending.split("\n", 1)
            self._line(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.log.flush()
        self.console.flush()

    def _line(self, line: str) -> None:
        if self.verbose:
            self.console.write(line)
            return
        body = line[4:] if line.startswith("    ") else line
        if self.mode == "executor_input":
            if line.rstrip() == "    }":
                self.mode = "show"
        elif self.mode == "outputs" and line.startswith(" "):
            pass
        elif self.mode == "traceback":
            self.traceback.append(line)
            if body and not body[0].isspace() and not body.startswith("Traceback"):
                if "DlxError" not in body:
                    self.console.writelines(self.traceback)
                self.traceback, self.mode = [], "show"
        elif "Got executor_input:" in line:
            self.mode = "executor_input"
        elif line.rstrip().endswith("outputs:"):
            self.mode = "outputs"
        elif body.startswith("Traceback (most recent call last)"):
            self.mode, self.traceback = "traceback", [line]
        elif "[KFP Executor" not in line:
            self.mode = "show"
            self.console.write(line)


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


def new_run_dir(root: Path, topic: Topic) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate, n = root / f"{topic.name}-{stamp}", 1
    while candidate.exists() or candidate.with_name(f".{candidate.name}.partial").exists():
        n += 1
        candidate = root / f"{topic.name}-{stamp}-{n}"
    return candidate


def run_local(job: Job, *, run_dir: Path, champion: str = "", margin: float = 0.0, verbose: bool = False) -> dict:
    """Run prepare → train → evaluate locally; returns metrics.json's content."""
    from kfp import local

    if run_dir.exists() and any(run_dir.iterdir()):
        raise DlxError(f"output directory {run_dir} already exists and is not empty; choose another --out")
    partial = run_dir.with_name(f".{run_dir.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "tmp").mkdir(parents=True)
    log_path = partial / "pipeline.log"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(partial / "kfp"), raise_on_error=True)
    pipeline = build_pipeline(job.topic)
    arguments = {**job.arguments(), "champion": champion, "margin": margin}
    started = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        tee = ConsoleFilter(log, sys.stdout, verbose)
        try:
            with _environment(TMPDIR=str(partial / "tmp"), TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")), \
                    contextlib.redirect_stdout(tee), warnings.catch_warnings():
                # The steps name the cluster image and the train step its cluster resources (CPU,
                # memory, GPUs); locally they run in this environment, on this machine, on purpose.
                warnings.filterwarnings("ignore", message=".*non-Python base image.*")
                warnings.filterwarnings("ignore", message=".*no effect in the current local runner.*")
                pipeline(**arguments)
        except RuntimeError as exc:
            tee.flush()
            failed = _keep_failed(partial, run_dir)
            found = _DLX_ERROR.findall((failed / "pipeline.log").read_text(encoding="utf-8"))
            reason = found[-1].strip() if found else _ANSI.sub("", str(exc))
            raise DlxError(f"{reason} (full log: {failed / 'pipeline.log'})") from None
    _assemble(partial)
    metrics = read_json(partial / "evaluate" / "evaluation" / "metrics.json")
    metrics["wall_seconds"] = round(time.perf_counter() - started, 2)
    write_json(partial / "metrics.json", metrics)
    partial.rename(run_dir)
    return metrics


def _keep_failed(partial: Path, run_dir: Path) -> Path:
    failed = run_dir.with_name(run_dir.name + ".failed")
    shutil.rmtree(failed, ignore_errors=True)
    shutil.rmtree(partial / "tmp", ignore_errors=True)
    partial.rename(failed)
    return failed


def _assemble(partial: Path) -> None:
    """Lift each task's directory to the run's top and put report.html there."""
    kfp_root = partial / "kfp"
    (pipeline_run,) = list(kfp_root.iterdir())
    for task_dir in pipeline_run.iterdir():
        task_dir.rename(partial / task_dir.name)
    shutil.rmtree(kfp_root)
    shutil.rmtree(partial / "tmp")
    shutil.copyfile(partial / "evaluate" / "evaluation" / "report.html", partial / "report.html")
