"""report.html: one self-contained page per run (plots and interactive HTML inlined), readable with no server."""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from components.protocol import scored_on

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; max-width: 100%; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; overflow-wrap: anywhere; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5rem 0; }
code { background: #f3f3f3; padding: 0 0.2rem; overflow-wrap: anywhere; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f8f8f8; padding: 0.6rem; }
.verdict { font-size: 1.15rem; padding: 0.6rem 0.9rem; border-left: 0.3rem solid #2a7; background: #f2fbf6; }
.verdict.short { border-color: #c63; background: #fdf5f0; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1rem; }
dl.facts dt { color: #666; } dl.facts dd { margin: 0; }
"""


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f'<td class="num">{value:.4g}</td>'
    if isinstance(value, (list, dict)):
        value = json.dumps(value)
    return f"<td>{html.escape(str(value))}</td>"


def html_table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}"></figure>'


def _frame(path: Path) -> str:
    """A standalone HTML artifact (e.g. a Bokeh plot with inlined resources) shown in place: the
    whole page goes into srcdoc, so report.html stays one file that opens offline."""
    page = html.escape(path.read_text(encoding="utf-8"), quote=True)
    return (f'<figure><iframe title="{html.escape(path.stem)}" srcdoc="{page}" '
            'style="width: 100%; height: 680px; border: 1px solid #eee"></iframe>'
            f"<figcaption>{html.escape(path.name)}</figcaption></figure>")


def _facts(metrics: dict, log: str | None) -> str:
    """Run id, date, times, seed, data and version, as a definition list."""
    facts = []
    if metrics.get("run_id"):
        facts.append(("run", html.escape(metrics["run_id"])))
    if metrics.get("finished_at"):
        facts.append(("finished", html.escape(metrics["finished_at"].replace("T", " ").replace("Z", " UTC"))))
    times = f"training {metrics['train_seconds']:.1f} s"
    if metrics.get("wall_seconds") is not None:
        times += f"; whole pipeline {metrics['wall_seconds']:.1f} s"
    facts += [("time", times), ("seed", str(metrics["seed"])),
              ("data", f"<code>{html.escape(str(metrics.get('data_source', '')))}</code>")]
    facts += [(f"sha256 of {html.escape(name)}", f"<code>{html.escape(digest)}</code>")
              for name, digest in metrics.get("data_inputs", {}).items()]
    if metrics.get("test_fingerprint"):
        facts.append(("scored data", f"<code>{html.escape(metrics['test_fingerprint'])}</code>"))
    if log:
        facts.append(("log", f'<a href="{html.escape(log)}">{html.escape(log)}</a>'))
    facts.append(("dlx", html.escape(metrics["dlx_version"])))
    return '<dl class="facts">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>"


def render(metrics: dict, plot_dir: Path, log: str | None = None) -> str:
    """The page for one run's metrics; plots named in metrics["plots"] are read from plot_dir;
    ``log``: a link to the run's pipeline.log."""
    names = list(metrics["test"])
    score_rows = [[f"model ({scored_on(metrics.get('protocol', {}))})"] + [metrics["test"][n] for n in names]]
    score_rows += [[f"baseline: {b}"] + [values.get(n, "") for n in names] for b, values in metrics["baseline"].items()]
    if "noise_floor" in metrics:
        score_rows.append(["noise floor (best achievable)"] + [metrics["noise_floor"].get(n, "") for n in names])
    verdict = metrics.get("verdict") or {}
    parts = [f"<h1>dlx run: {html.escape(metrics['topic'])} on {html.escape(metrics['dataset'])}</h1>"]
    if verdict:
        short = " short" if verdict.get("beats") is False else ""
        parts.append(f'<p class="verdict{short}">{html.escape(verdict["text"])}</p>')
    parts += [
        _facts(metrics, log),
        "<h2>Scores</h2>",
        html_table(["", *names], score_rows),
    ]
    if "promotion" in metrics:
        decision = metrics["promotion"]
        verdict = "promoted to champion" if decision["promoted"] else "not promoted"
        parts += ["<h2>Promotion</h2>", f"<p><b>{verdict}</b>: {html.escape(decision['reason'])}</p>"]
    if "per_class" in metrics:
        parts += ["<h2>Per class</h2>",
                  html_table(["class", "precision", "recall", "f1", "support"],
                         [[c, v["precision"], v["recall"], v["f1"], v["support"]] for c, v in metrics["per_class"].items()])]
    if "embedding_check" in metrics:
        parts += ["<h2>Random forest on the embeddings</h2>",
                  "<p>out-of-bag R² of a random forest predicting training ratings from the learned "
                  "user and item embeddings, against one given the raw ids</p>",
                  html_table(["features", "OOB R²"], [[k, v] for k, v in metrics["embedding_check"].items()])]
    for key, heading in (("item_bias_top", "Most positive item biases"), ("item_bias_bottom", "Most negative item biases")):
        if key in metrics:
            parts += [f"<h2>{heading}</h2>",
                      html_table(["item", "bias", "training ratings"], [[e["item"], e["bias"], e["ratings"]] for e in metrics[key]])]
    for key, heading in _TABLES:
        if metrics.get(key):
            parts += [f"<h2>{heading}</h2>", _records(metrics[key])]
    if metrics.get("neighbours"):
        parts += ["<h2>Nearest neighbours (cosine)</h2>",
                  html_table(["word", "neighbours"], [[word, ", ".join(f"{n['word']} {n['cosine']:.2f}" for n in near)]
                                                  for word, near in metrics["neighbours"].items()])]
    if metrics.get("samples"):
        parts += ["<h2>Samples</h2>"] + [
            f"<h3>temperature {s['temperature']}{', prompt ' + html.escape(repr(s['prompt'])) if s['prompt'] else ''}</h3>"
            f"<pre>{html.escape(s['prompt'] + s['text'])}</pre>" for s in metrics["samples"]]
    parts += ["<h2>Parameters</h2>", html_table(["name", "value"], [[k, v] for k, v in metrics["params"].items()])]
    plots = metrics.get("plots", [])
    if plots:
        parts += ["<h2>Plots</h2>"] + [_image(plot_dir / name) for name in plots]
    interactive = metrics.get("interactive", [])
    if interactive:
        parts += ["<h2>Interactive</h2>"] + [_frame(plot_dir / name) for name in interactive]
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>dlx {html.escape(metrics['topic'])}</title><style>{STYLE}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>\n"
    )


# metrics keys holding a table as row records (a list of dicts, or a dict of name -> dict)
_TABLES = (("vectorizers", "Vectorisers (cross-validated)"), ("hashing_collisions", "Hashing-trick collisions"),
           ("folds", "Per fold"))


def _records(rows: list[dict] | dict[str, dict]) -> str:
    if isinstance(rows, dict):
        rows = [{"": name, **values} for name, values in rows.items()]
    header = list(dict.fromkeys(key for row in rows for key in row))
    return html_table(header, [[row.get(key, "") for key in header] for row in rows])


def interactive_page(metrics: dict, plot_dir: Path) -> str:
    """The run's interactive figures as one page, for the Kubeflow UI's HTML viewer: the figure
    itself when there is one (e.g. the Bokeh map of the item embeddings), else a short note."""
    names = metrics.get("interactive", [])
    if len(names) == 1:
        return (plot_dir / names[0]).read_text(encoding="utf-8")
    body = "".join(_frame(plot_dir / name) for name in names) or (
        f"<p>{html.escape(metrics['topic'])} draws no interactive figure; its plots are in the report.</p>")
    return f"<!doctype html><html><head><meta charset='utf-8'><style>{STYLE}</style></head><body>{body}</body></html>\n"


def write_report(metrics: dict, plot_dir: Path, path: Path, log: str | None = None) -> Path:
    path.write_text(render(metrics, plot_dir, log), encoding="utf-8")
    return path
