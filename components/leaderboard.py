"""The suite's leaderboard: one row per topic (its main metric, the baseline it must beat, the
verdict, the promotion), as JSON and as one self-contained HTML page.

Each evaluate step reduces its metrics to a row (``row``); the summary step gets every row and
writes the board (``write``). Rows travel between steps as JSON text, so a cluster hands them over
as plain pipeline parameters.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from components.errors import DlxError
from components.files import write_json
from components.report import STYLE, html_table

CHAMPION_FILE = "{topic}.json"
"""A champion folder's record for one topic (a suite promotes each topic against its own)."""


def champion_for(champion: str, topic: str) -> str:
    """A champion location for ``topic``: a folder or prefix ending in ``/`` holds one record per
    topic (TOPIC.json); anything else names the record (or registry) itself."""
    return champion + CHAMPION_FILE.format(topic=topic) if champion.endswith("/") else champion


def row(metrics: dict) -> dict[str, Any]:
    """What the leaderboard shows of one evaluated topic."""
    verdict, promotion = metrics["verdict"], metrics.get("promotion")
    return {
        "topic": metrics["topic"], "dataset": metrics["dataset"], "metric": verdict["metric"],
        "label": verdict["label"], "value": verdict["value"], "baseline": verdict.get("baseline"),
        "baseline_value": verdict.get("baseline_value"), "beats": verdict.get("beats"), "verdict": verdict["text"],
        "promoted": promotion["promoted"] if promotion else None,
        "promotion": promotion["reason"] if promotion else "no champion given",
        "train_seconds": metrics["train_seconds"], "run_id": metrics.get("run_id", ""),
    }


def summary(rows: list[dict]) -> dict[str, Any]:
    """The board: the rows in topic order, and how many beat their baseline and were promoted."""
    if not rows:
        raise DlxError("the suite has no topics to summarise; choose at least one with --topics")
    ordered = sorted(rows, key=lambda r: r["topic"])
    return {"topics": len(ordered), "beat_baseline": sum(bool(r["beats"]) for r in ordered),
            "promoted": sum(bool(r["promoted"]) for r in ordered), "rows": ordered}


def outcome(found: dict) -> str:
    """A row's verdict in a word or three."""
    if found["beats"] is None:
        return "no baseline to beat"
    return "beats" if found["beats"] else "does NOT beat"


def promotion(found: dict) -> str:
    """A row's champion decision with its reason."""
    if found["promoted"] is None:
        return "-"
    return ("promoted: " if found["promoted"] else "kept champion: ") + found["promotion"]


def page(board: dict) -> str:
    """The leaderboard as HTML, readable with no server (and in the Kubeflow UI's HTML viewer)."""
    header = ["topic", "data set", "main metric", "value", "baseline", "baseline value", "verdict", "champion",
              "training s"]
    rows = [[r["topic"], r["dataset"], r["label"], r["value"], r["baseline"] or "-",
             r["baseline_value"] if r["baseline_value"] is not None else "-", outcome(r), promotion(r),
             float(r["train_seconds"])] for r in board["rows"]]
    details = "".join(f"<li><b>{html.escape(r['topic'])}</b>: {html.escape(r['verdict'])}</li>" for r in board["rows"])
    heading = (f"{board['beat_baseline']} of {board['topics']} topics beat their baseline; "
               f"{board['promoted']} promoted")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>dlx suite leaderboard</title>"
            f"<style>{STYLE}</style></head><body><h1>dlx suite leaderboard</h1>"
            f"<p class='verdict'>{html.escape(heading)}</p>{html_table(header, rows)}<h2>Verdicts</h2><ul>{details}</ul>"
            "</body></html>\n")


def write(rows: list[dict], out_dir: Path) -> dict:
    """leaderboard.json and leaderboard.html in ``out_dir``; returns the board."""
    board = summary(rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "leaderboard.json", board)
    (out_dir / "leaderboard.html").write_text(page(board), encoding="utf-8")
    return board
