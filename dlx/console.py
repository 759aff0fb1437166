"""What `dlx run` shows while the steps run: a line per step with its time and status, the current
phase, and training progress (pipelines.local sends the events).

On a terminal a live display (rich) keeps one status line per running step, with a progress bar
for epochs; anywhere else (a file, a pipe, CI) plain lines, one per phase, epoch and step, with no
escape codes at all. rich honours NO_COLOR; TERM=dumb counts as no terminal.
"""
from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping
from typing import Any, TextIO

SHOWN_FIGURES = 5
"""At most this many figures of an epoch on its line (the learning rate is never one of them)."""


def figures_text(figures: Mapping[str, float]) -> str:
    shown = [(name, value) for name, value in figures.items() if name != "learning_rate"][:SHOWN_FIGURES]
    return "  ".join(f"{name} {value:.4g}" for name, value in shown)


def epoch_text(event: Mapping[str, Any]) -> str:
    label = f"{event['label']} " if event.get("label") else ""
    speed = f"  {event['speed']:,.0f} {event['unit']}/s" if event.get("speed") else ""
    return f"{label}epoch {event['done']}/{event['total']}  {figures_text(event['figures'])}{speed}"


def is_terminal(stream: TextIO) -> bool:
    return stream.isatty() and os.environ.get("TERM") != "dumb"


class PlainConsole:
    """One line per event: for files, pipes and CI logs."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.step, self.phase = "", ""
        self.lock = threading.Lock()

    def __enter__(self) -> PlainConsole:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stream.flush()

    def handle(self, event: Mapping[str, Any]) -> None:
        with self.lock:
            line = self._line(event)
            if line is not None:
                self.stream.write(line + "\n")
                self.stream.flush()

    def _line(self, event: Mapping[str, Any]) -> str | None:
        kind = event["kind"]
        if kind == "step":
            self.step = event["step"]
            if event["state"] == "started":
                return None
            return f"{self.step:<9} {'done' if event['state'] == 'finished' else 'FAILED'} in {event['seconds']:.1f} s"
        if kind == "log":
            return event["line"].rstrip("\n")
        if kind == "phase" and event["text"] == self.phase:  # e.g. one "drawing plots" per plot
            return None
        self.phase = event["text"] if kind == "phase" else ""
        text = epoch_text(event) if kind == "epoch" else event["text"]
        return f"{self.step:<9} {text}"


class LiveConsole(PlainConsole):
    """A status line per running step, a bar for its epochs, and a permanent line when it ends."""

    def __init__(self, stream: TextIO | None = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
        from rich.table import Column

        super().__init__(stream)
        self.console = Console(file=self.stream)
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.fields[step]}", table_column=Column(min_width=9, no_wrap=True)),
            BarColumn(bar_width=20), TimeElapsedColumn(),
            TextColumn("{task.description}", table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis")),
            console=self.console, transient=True, expand=True)
        self.task: Any = None

    def __enter__(self) -> LiveConsole:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def handle(self, event: Mapping[str, Any]) -> None:
        with self.lock:
            kind = event["kind"]
            if kind == "step" and event["state"] == "started":
                self.step = event["step"]
                self.task = self.progress.add_task("starting", step=self.step, total=None)
            elif kind == "step":
                if self.task is not None:
                    self.progress.remove_task(self.task)
                    self.task = None
                mark = "[green]✓[/]" if event["state"] == "finished" else "[red]✗[/]"
                self.console.print(f"{mark} {self.step:<9} {event['seconds']:.1f} s")
            elif kind == "epoch" and self.task is not None:
                self.progress.update(self.task, total=event["total"], completed=event["done"],
                                     description=epoch_text(event))
            elif kind == "phase" and self.task is not None:
                self.progress.update(self.task, description=event["text"])
            elif kind in ("note", "log"):
                self.console.print(event.get("text") or event["line"].rstrip("\n"), markup=False, highlight=False)


def open_console(stream: TextIO | None = None) -> PlainConsole:
    """The live console on a terminal, plain lines elsewhere."""
    stream = stream or sys.stdout
    return LiveConsole(stream) if is_terminal(stream) else PlainConsole(stream)
