"""Past local runs: `dlx runs`, run ids wherever a run directory goes, and runs/index.html.

A run is a directory under the runs root holding metrics.json (pipelines.local). Everything the
table shows is recorded there when the run ends (its verdict, main metric, the parameters that
differ from the defaults), so listing a hundred runs reads a hundred small files and imports no
topic.
"""
from __future__ import annotations

import html
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.errors import DlxError
from components.files import read_json

COLUMNS = ("run", "date", "topic", "dataset", "metric", "baseline", "wall s", "changed parameters")
INDEX = "index.html"


@dataclass(frozen=True)
class Run:
    """One complete local run."""

    path: Path
    metrics: dict

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def finished(self) -> float:
        """When it ended (seconds since the epoch): recorded, else metrics.json's time."""
        stamp = self.metrics.get("finished_at")
        if stamp:
            return time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        return (self.path / "metrics.json").stat().st_mtime

    @property
    def date(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(self.finished))

    @property
    def verdict(self) -> dict:
        return self.metrics.get("verdict") or {}

    def metric(self) -> str:
        found = self.verdict
        return f"{found['label']} {found['value']:.4f}" if found else "-"

    def baseline(self) -> str:
        found = self.verdict
        return f"{found['baseline']} {found['baseline_value']:.4f}" if found.get("baseline") else "-"

    def changed(self) -> dict[str, Any]:
        return self.metrics.get("params_changed", {})

    def row(self) -> tuple[str, ...]:
        changed = " ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in self.changed().items())
        wall = self.metrics.get("wall_seconds")
        return (self.id, self.date, self.metrics.get("topic", "?"), self.metrics.get("dataset", "?"), self.metric(),
                self.baseline(), f"{wall:.1f}" if wall is not None else "-", changed or "-")

    def keys(self) -> tuple[Any, ...]:
        """What each column of the index sorts by: numbers where the column holds one."""
        found, wall = self.verdict, self.metrics.get("wall_seconds")
        return (self.id, self.finished, self.metrics.get("topic", ""), self.metrics.get("dataset", ""),
                found.get("value", ""), found.get("baseline_value", ""), wall if wall is not None else "",
                self.row()[-1])

    def summary(self) -> dict[str, Any]:
        """What `dlx runs --json` shows of the run."""
        return {"id": self.id, "path": str(self.path), "finished_at": self.metrics.get("finished_at"),
                "topic": self.metrics.get("topic"), "dataset": self.metrics.get("dataset"),
                "verdict": self.verdict, "wall_seconds": self.metrics.get("wall_seconds"),
                "train_seconds": self.metrics.get("train_seconds"), "params_changed": self.changed()}


def list_runs(root: Path, topic: str | None = None) -> list[Run]:
    """Every complete run under ``root`` (optionally of one topic), newest first."""
    found = []
    for entry in os.scandir(root) if root.is_dir() else ():
        path = Path(entry.path)
        if entry.name.startswith(".") or not entry.is_dir() or not (path / "metrics.json").is_file():
            continue
        try:
            metrics = read_json(path / "metrics.json")
        except ValueError:
            continue
        if isinstance(metrics, dict) and "topic" in metrics and (topic is None or metrics["topic"] == topic):
            found.append(Run(path, metrics))
    return sorted(found, key=lambda run: (run.finished, run.id), reverse=True)


def track_local_runs(root: Path) -> int:
    """Log every local run under ``root`` that the current MLflow experiment lacks (tag dlx.run_id);
    how many were added. Each keeps its figures, curves, report and model (components.tracking)."""
    from components import tracking

    seen = tracking.logged_runs()
    added = 0
    for run in reversed(list_runs(root)):  # oldest first, so MLflow's start times keep the order
        if run.id in seen:
            continue
        model = next((d for d in (run.path / "train" / "model", run.path / "choose" / "best") if d.is_dir()),
                     run.path / "model")
        tracking.log_evaluated(run.metrics, model, run.path / "evaluate" / "evaluation", run_name=run.id,
                               tags={"dlx.run_id": run.id})
        added += 1
    return added


def resolve_run(root: Path, name: str) -> Path:
    """The run directory ``name`` names: a path, a run id under ``root``, or a unique prefix of a complete run's id."""
    given = Path(name)
    if given.is_dir():
        return given
    if given.name != name or name.startswith("."):
        raise DlxError(f"{name}: no such run directory; pass one that `dlx run` created (see `dlx runs`)")
    if (root / name).is_dir():
        return root / name
    ids = sorted(entry.name for entry in os.scandir(root) if entry.is_dir() and not entry.name.startswith(".")
                 and (root / entry.name / "metrics.json").is_file()) if root.is_dir() else []
    matches = [run_id for run_id in ids if run_id.startswith(name)]
    if len(matches) == 1:
        return root / matches[0]
    if matches:
        raise DlxError(f"run id '{name}' matches {len(matches)} runs under {root}/ ({', '.join(matches[:4])}"
                       f"{', ...' if len(matches) > 4 else ''}); give more of the id")
    raise DlxError(f"no run '{name}' under {root}/ and no such directory; see `dlx runs` (or pass --runs-dir)")


def format_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip() for row in (header, *rows)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def runs_json(runs: list[Run]) -> str:
    return json.dumps([run.summary() for run in runs], indent=2)


def write_index(root: Path) -> Path:
    """runs/index.html: every run in a table sortable by any column, each linking its report; one
    self-contained file that opens offline."""
    runs = list_runs(root)
    body = "".join(
        "<tr>" + "".join(f'<td data-key="{html.escape(str(key))}">{cell}</td>' for key, cell in zip(run.keys(), (
            f'<a href="{html.escape(run.id)}/report.html">{html.escape(run.id)}</a>', *map(html.escape, run.row()[1:]))))
        + "</tr>" for run in runs)
    head = "".join(f'<th onclick="sortBy({i})">{html.escape(name)}</th>' for i, name in enumerate(COLUMNS))
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>dlx runs</title><style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; max-width: 100%; }}
th, td {{ border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; overflow-wrap: anywhere; }}
th {{ background: #f3f3f3; cursor: pointer; user-select: none; }} td {{ vertical-align: top; }}
</style></head><body><h1>dlx runs</h1><p>{len(runs)} runs under <code>{html.escape(str(root))}</code>, newest first;
click a heading to sort.</p><table id="runs"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
<script>
function sortBy(column) {{
  const body = document.querySelector("#runs tbody"), rows = Array.from(body.rows);
  const key = row => row.cells[column].dataset.key, up = body.dataset.column == column && body.dataset.up != "1";
  rows.sort((a, b) => {{
    const x = Number(key(a)), y = Number(key(b));
    const order = key(a) === "" || key(b) === "" || isNaN(x) || isNaN(y) ? key(a).localeCompare(key(b)) : x - y;
    return up ? order : -order;
  }});
  body.dataset.column = column; body.dataset.up = up ? "1" : "0";
  rows.forEach(row => body.appendChild(row));
}}
</script></body></html>
"""
    path = root / INDEX
    partial = path.with_name(f".{INDEX}.partial")
    partial.write_text(page, encoding="utf-8")
    partial.replace(path)
    return path


def learning_history(run: Run) -> dict[str, list[float]]:
    """The run's per-epoch history: the folds' mean for cross-validated topics, else the model's own."""
    model = run.path / "train" / "model"
    for name in ("cv_history.json", "history.json"):
        if (model / name).is_file():
            return read_json(model / name)
    return {}


def differing_params(runs: list[Run]) -> dict[str, list[Any]]:
    """Each parameter whose value differs between the runs, with every run's value."""
    names = dict.fromkeys(name for run in runs for name in run.metrics.get("params", {}))
    values = {name: [run.metrics.get("params", {}).get(name, "-") for run in runs] for name in names}
    return {name: found for name, found in values.items() if any(v != found[0] for v in found)}


def compared_figures(runs: list[Run]) -> dict[str, list[Any]]:
    """The figures the runs share, side by side: main metric, every test figure, baselines, times."""
    rows: dict[str, list[Any]] = {"topic": [r.metrics.get("topic") for r in runs],
                                  "dataset": [r.metrics.get("dataset") for r in runs],
                                  "seed": [r.metrics.get("seed") for r in runs],
                                  "main metric": [r.metric() for r in runs]}
    names = dict.fromkeys(name for run in runs for name in run.metrics.get("test", {}))
    for name in names:
        rows[name] = [run.metrics.get("test", {}).get(name) for run in runs]
    bases = dict.fromkeys(name for run in runs for name in run.metrics.get("baseline", {}))
    for base in bases:
        main = [run.verdict.get("metric") for run in runs]
        rows[f"baseline {base}"] = [run.metrics.get("baseline", {}).get(base, {}).get(metric)
                                    for run, metric in zip(runs, main)]
    rows["train s"] = [run.metrics.get("train_seconds") for run in runs]
    rows["wall s"] = [run.metrics.get("wall_seconds") for run in runs]
    return rows


def plot_compared_curves(runs: list[Run], path: Path) -> str:
    """Each run's learning curves overlaid, a panel per metric (training solid, validation dashed)."""
    from components.evaluate import pyplot, save_figure

    plt = pyplot()
    histories = {run.id: learning_history(run) for run in runs}
    metrics = list(dict.fromkeys(name for h in histories.values() for name in h
                                 if not name.startswith("val_") and name != "learning_rate"))
    fig, axes = plt.subplots(1, max(1, len(metrics)), figsize=(5 * max(1, len(metrics)), 3.8), squeeze=False)
    for ax, name in zip(axes[0], metrics):
        for index, (run_id, history) in enumerate(histories.items()):
            colour = f"C{index % 10}"
            for key, style in ((name, "-"), (f"val_{name}", "--")):
                if key in history:
                    ax.plot(range(1, len(history[key]) + 1), history[key], style, color=colour, marker=".",
                            label=f"{run_id}{' (validation)' if style == '--' else ''}")
        ax.set(title=name, xlabel="epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def compare(runs: list[Run], out_dir: Path) -> Path:
    """compare.html and curves.png in ``out_dir``: differing parameters, figures side by side, curves."""
    import base64

    out_dir.mkdir(parents=True, exist_ok=True)
    image = plot_compared_curves(runs, out_dir / "curves.png")

    def table(rows: dict[str, list[Any]]) -> str:
        head = "<tr><th></th>" + "".join(f"<th>{html.escape(run.id)}</th>" for run in runs) + "</tr>"
        body = "".join(f"<tr><th>{html.escape(name)}</th>" + "".join(
            f"<td>{html.escape(cell_text(v))}</td>" for v in values) + "</tr>" for name, values in rows.items())
        return f"<table>{head}{body}</table>"

    params = differing_params(runs)
    encoded = base64.b64encode((out_dir / image).read_bytes()).decode("ascii")
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>dlx compare</title><style>"
            "body { font-family: system-ui, sans-serif; margin: 2rem; } table { border-collapse: collapse; "
            "margin-bottom: 1.5rem; } th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; } "
            "img { max-width: 100%; }</style></head><body><h1>dlx compare</h1>"
            + "<h2>Parameters that differ</h2>" + (table(params) if params else "<p>none</p>")
            + "<h2>Figures</h2>" + table(compared_figures(runs))
            + f"<h2>Learning curves</h2><img alt='learning curves' src='data:image/png;base64,{encoded}'>"
            + "</body></html>\n")
    path = out_dir / "compare.html"
    path.write_text(page, encoding="utf-8")
    return path


def cell_text(value: Any) -> str:
    """A figure or parameter value as a table shows it."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return "-" if value is None else str(value)
