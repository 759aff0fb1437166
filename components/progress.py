"""Progress events from inside a step, for a console that runs the steps elsewhere (`dlx run`).

A step's printed lines are its log (pipeline.log, a cluster pod's log, CloudWatch). Beside them it
reports what a person watching wants to see, as events: a *phase* (what it is doing now, e.g.
loading a framework or fitting a baseline) and an *epoch* (how far training is, with its figures).
When $DLX_PROGRESS names a file, each event is appended there as one JSON line, which the local
runner reads as it grows; without it nothing is written.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping

PROGRESS_ENV = "DLX_PROGRESS"


def _emit(event: dict) -> None:
    path = os.environ.get(PROGRESS_ENV)
    if not path:
        return
    line = json.dumps({"time": round(time.time(), 3), **event}) + "\n"
    with open(path, "a", encoding="utf-8") as out:  # one write per line: readers never see half of one
        out.write(line)


def phase(text: str) -> None:
    """What the step is doing now, until the next event: "loading Keras and TensorFlow"."""
    _emit({"kind": "phase", "text": text})


def epoch(done: int, total: int, figures: Mapping[str, float], *, label: str = "", speed: float | None = None,
          unit: str = "") -> None:
    """``done`` of ``total`` epochs finished, with the epoch's figures (loss, val_accuracy, ...)."""
    _emit({"kind": "epoch", "done": done, "total": total, "label": label,
           "figures": {name: float(value) for name, value in figures.items()},
           "speed": speed, "unit": unit})


def note(text: str) -> None:
    """Something worth a line of its own: a resumed checkpoint, an early stop, a download."""
    _emit({"kind": "note", "text": text})
