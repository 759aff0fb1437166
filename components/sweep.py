"""Hyperparameter sweeps: the trials a search space gives, and the choice among trained trials.

A space is a list of axes, each ``NAME=V1,V2,...`` (values to try) or ``NAME=LO:HI`` /
``NAME=LO:HI:log`` (a range). ``grid`` takes every combination (a range contributes ``points``
evenly spaced values, geometric with ``log``); ``random`` draws ``trials`` combinations from a
generator seeded by the run's seed (values uniformly, ranges uniformly or log-uniformly, integer
parameters rounded). Each trial is the job's parameters with the axes' values, checked like
``--param``. Trials are compared on the validation split only, by the topic's main metric as
training recorded it for the last epoch (``val_<metric>`` in history.json); the test split is for
the chosen trial alone. Topics scored by cross-validation have no separate validation split to
choose on, and are refused.
"""
from __future__ import annotations

import itertools
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from components import tracking
from components.errors import DlxError
from components.files import read_json, write_json
from components.params import parameter_types, split_pair, to_dict
from components.registry import Topic

STRATEGIES = ("grid", "random")
TABLE, PLOT = "trials.json", "sweep.png"
CROSS_VALIDATED = ("text-vectors", "random-embeddings", "word-embeddings")
"""Topics whose figures are cross-validated over the whole corpus: no validation split to choose on."""


@dataclass(frozen=True)
class Axis:
    name: str
    values: tuple[str, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False

    @property
    def is_range(self) -> bool:
        return not self.values


def parse_axis(text: str) -> Axis:
    """``NAME=V1,V2,...`` or ``NAME=LO:HI[:log]``; one clear line for anything else."""
    name, value = split_pair(text)
    if ":" in value:
        parts = value.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
            raise DlxError(f"bad range '{text}': write NAME=LO:HI or NAME=LO:HI:log, e.g. learning_rate=1e-4:1e-2:log")
        try:
            low, high = float(parts[0]), float(parts[1])
        except ValueError:
            raise DlxError(f"bad range '{text}': LO and HI must be numbers") from None
        if not low < high or (len(parts) == 3 and low <= 0):
            raise DlxError(f"bad range '{text}': need LO < HI (and LO > 0 for log)")
        return Axis(name, low=low, high=high, log=len(parts) == 3)
    values = tuple(v.strip() for v in value.split(",") if v.strip())
    if not values:
        raise DlxError(f"bad sweep axis '{text}': give values NAME=V1,V2 or a range NAME=LO:HI")
    return Axis(name, values=values)


def _range_values(axis: Axis, count: int, kind: type) -> list[str]:
    space = np.geomspace if axis.log else np.linspace
    points = space(axis.low, axis.high, count)
    return _format(points, kind)


def _format(points: np.ndarray, kind: type) -> list[str]:
    if kind is int:
        return [str(int(round(p))) for p in points]
    return [f"{float(p):.6g}" for p in points]


def check_axes(topic: Topic, axes: list[Axis]) -> dict[str, type]:
    """Each axis names a parameter of ``topic`` once, ranges only numbers; returns each axis's type."""
    known = parameter_types(topic.params)
    for axis in axes:
        if axis.name not in known:
            raise DlxError(f"unknown parameter '{axis.name}' for {topic.name}; valid parameters: {', '.join(known)}")
        if axis.is_range and known[axis.name] not in (int, float):
            raise DlxError(f"{axis.name} is not a number; sweep it over values: {axis.name}=V1,V2")
    if len({axis.name for axis in axes}) != len(axes):
        raise DlxError("each parameter may be swept once; put all its values in one --param")
    return {axis.name: known[axis.name] for axis in axes}


def trials(topic: Topic, dataset: str, axes: list[Axis], strategy: str, count: int, seed: int,
           fixed: list[str] = ()) -> list[dict]:
    """Every trial's full parameters (as params.json holds them), checked; duplicates dropped."""
    if topic.name in CROSS_VALIDATED:
        raise DlxError(f"{topic.name} is scored by cross-validation over the whole corpus, with no validation "
                       "split to choose on; sweep a topic with a validation split (the MNIST, ratings, sequence "
                       "and regression topics)")
    if strategy not in STRATEGIES:
        raise DlxError(f"--strategy {strategy}: valid: {', '.join(STRATEGIES)}")
    if not axes:
        raise DlxError("a sweep needs at least one --param NAME=V1,V2 or NAME=LO:HI axis")
    if count < 1:
        raise DlxError(f"--trials {count}: must be at least 1")
    kinds = check_axes(topic, axes)
    if strategy == "grid":
        columns = [axis.values or tuple(_range_values(axis, count, kinds[axis.name])) for axis in axes]
        combos = [dict(zip([a.name for a in axes], values)) for values in itertools.product(*columns)]
    else:
        rng = np.random.default_rng([seed, 7919])
        combos = []
        for _ in range(count):
            combo = {}
            for axis in axes:
                if axis.values:
                    combo[axis.name] = axis.values[int(rng.integers(len(axis.values)))]
                else:
                    draw = math.exp(rng.uniform(math.log(axis.low), math.log(axis.high))) if axis.log \
                        else rng.uniform(axis.low, axis.high)
                    combo[axis.name] = _format(np.array([draw]), kinds[axis.name])[0]
            combos.append(combo)
    chosen, seen = [], set()
    for combo in combos:
        params = to_dict(topic.params_for(dataset, [*fixed, *(f"{k}={v}" for k, v in combo.items())]))
        key = json.dumps(params, sort_keys=True)
        if key not in seen:
            seen.add(key)
            chosen.append({"swept": {k: params[k] for k in combo}, "params": params})
    return chosen


def validation_figure(topic: Topic, model_dir: Path) -> float:
    """The trial's main metric on the validation split, after its last epoch."""
    history = read_json(model_dir / "history.json")
    key = f"val_{topic.main_metric}"
    if key not in history:
        raise DlxError(f"{topic.name}'s training records no {key} to compare trials on; "
                       f"it records {', '.join(sorted(history))}")
    return float(history[key][-1])


def choose(topic: Topic, model_dirs: list[Path], best_dir: Path, out_dir: Path, *, dataset_dir: Path | None = None,
           run_id: str = "") -> dict:
    """Score each trained trial on validation, copy the best one's model to ``best_dir``, and write
    the table of trials (parameters, validation figure, train seconds) as ``out_dir``/trials.json with
    the validation figure plotted against each parameter that varies (sweep.png); the best row.
    With tracking on, the sweep is logged as a parent run with a child per trial
    (components.tracking), named ``run_id``."""
    rows = []
    for index, model_dir in enumerate(model_dirs):
        summary = read_json(model_dir / "train.json")
        rows.append({"trial": index, "params": read_json(model_dir / "params.json"),
                     "validation": validation_figure(topic, model_dir), "train_seconds": summary.get("train_seconds")})
    pick = max if topic.higher_is_better else min
    best = pick(rows, key=lambda row: row["validation"])
    shutil.copytree(model_dirs[best["trial"]], best_dir, dirs_exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = {"metric": f"val_{topic.main_metric}", "higher_is_better": topic.higher_is_better,
             "best": best["trial"], "swept": varied(rows), "trials": rows}
    write_json(out_dir / TABLE, table)
    plot(table, out_dir / PLOT)
    if tracking.enabled():
        dataset = read_json(dataset_dir / "meta.json")["dataset"] if dataset_dir else ""
        tracking.log_sweep(topic.name, dataset, rows, model_dirs, best_dir, run_name=run_id)
    return best


def varied(rows: list[dict]) -> list[str]:
    """The parameters whose value differs between trials, in parameter order."""
    return [name for name in rows[0]["params"] if len({json.dumps(r["params"][name]) for r in rows}) > 1]


def plot(table: dict, path: Path) -> None:
    """The validation figure against each swept parameter, the best trial marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = table["swept"] or ["trial"]
    figure, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.2), squeeze=False)
    for axis, name in zip(axes[0], names):
        values = [row["params"].get(name, row["trial"]) if name != "trial" else row["trial"] for row in table["trials"]]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        xs = values if numeric else [str(v) for v in values]
        axis.scatter(xs, [row["validation"] for row in table["trials"]], color="#4c72b0")
        best = table["trials"][table["best"]]
        axis.scatter([xs[table["best"]]], [best["validation"]], color="#dd8452", s=80, label="best", zorder=3)
        if numeric and min(values) > 0 and max(values) / min(values) >= 20:
            axis.set_xscale("log")
        axis.set_xlabel(name)
        axis.set_ylabel(table["metric"])
        axis.legend(loc="best", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def table_lines(table: dict) -> list[str]:
    """The trials as Markdown table lines, the best one marked."""
    swept = table["swept"]
    lines = [f"| trial | {' | '.join(swept)} | {table['metric']} | train s |",
             "| --- | " + "--- | " * len(swept) + "--- | --- |"]
    for row in table["trials"]:
        mark = " **best**" if row["trial"] == table["best"] else ""
        values = " | ".join(str(row["params"].get(name)) for name in swept)
        lines.append(f"| {row['trial']}{mark} | {values} | {row['validation']:.4f} | {row['train_seconds']} |")
    return lines
