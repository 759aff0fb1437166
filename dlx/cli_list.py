"""`dlx list [NAME] [--json]`: the topics and data sets, one line each, or one of them in full."""
from __future__ import annotations

import argparse
import json
from typing import Any

from components.data import DATASETS, DatasetSpec, get_dataset
from components.errors import DlxError
from components.params import describe
from components.registry import Topic, topics

WIDTH = 110
"""Compact lines stay within this many characters."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add `dlx list` to the `dlx` parser."""
    listing = sub.add_parser("list", help="topics and data sets, a line each; one in full by name")
    listing.add_argument("name", nargs="?", help="a topic or data set to show in full")
    listing.add_argument("--json", action="store_true", help="everything (or NAME) as JSON, for scripts")
    listing.set_defaults(func=cmd_list)


def cmd_list(args: argparse.Namespace) -> None:
    registry = topics()
    if args.json:
        if args.name in registry:
            found = {"topics": [_topic_json(registry[args.name])], "datasets": []}
        elif args.name:
            found = {"topics": [], "datasets": [_dataset_json(_dataset(args.name))]}
        else:
            found = {"topics": [_topic_json(t) for t in registry.values()],
                     "datasets": [_dataset_json(spec) for spec in DATASETS.values()]}
        print(json.dumps(found, indent=2))
    elif args.name in registry:
        print("\n".join(topic_lines(registry[args.name])))
    elif args.name:
        print("\n".join(dataset_lines(_dataset(args.name))))
    else:
        print("\n".join(compact_lines(registry)))


def _dataset(name: str) -> DatasetSpec:
    try:
        return get_dataset(name)
    except DlxError:
        raise DlxError(f"'{name}' is neither a topic nor a data set; `dlx list` shows them all") from None


def compact_lines(registry: dict[str, Topic]) -> list[str]:
    """One line per topic and per data set."""
    lines = [f"{len(registry)} topics (default data set first):"]
    lines += [f"  {t.name:<18} {t.framework:<13} {t.default_dataset:<18} {t.description}" for t in registry.values()]
    lines += ["", f"{len(DATASETS)} data sets:"]
    for spec in DATASETS.values():
        line = f"  {spec.name:<23} {spec.description}"
        names = [name for name, *_ in describe(spec.options)] if spec.options else []
        shown = f"  options: {', '.join(names)}"
        lines.append(line + (shown if len(line + shown) <= WIDTH else f"  {len(names)} options") if names else line)
    lines += ["", "`dlx list NAME` shows a topic (its parameters, presets, metric) or a data set in full; --json all."]
    return lines


def _metric(name: str, higher_is_better: bool) -> str:
    return f"{name} ({'higher' if higher_is_better else 'lower'} is better)"


def topic_lines(topic: Topic) -> list[str]:
    sets = ", ".join(f"{name} (default)" if name == topic.default_dataset else name for name in topic.datasets)
    by_metric: dict[tuple[str, bool], list[str]] = {}
    for name, metric in topic.dataset_metrics.items():
        by_metric.setdefault(metric, []).append(name)
    lines = [f"{topic.name}  [{topic.framework}]  {topic.description}", f"  data sets: {sets}",
             f"  main metric: {_metric(topic.main_metric, topic.higher_is_better)}" + "".join(
                 f"; on {', '.join(names)}: {_metric(*metric)}" for metric, names in by_metric.items())]
    lines += [f"  preset for {name}: " + " ".join(f"{k}={v}" for k, v in preset.items())
              for name, preset in topic.presets.items()]
    lines += [f"  data set options for {name}: " + " ".join(f"{k}={v}" for k, v in options.items())
              for name, options in topic.dataset_options.items()]
    lines.append("  parameters (--param NAME=VALUE):")
    return lines + _table(describe(topic.params))


def _table(rows: list[tuple[str, str, str, str, str]]) -> list[str]:
    """NAME=DEFAULT, type with its range, and help in aligned columns."""
    width = max(len(f"{name}={default}") for name, _, _, default, _ in rows)
    kinds = [f"{kind} {bounds}".strip() for _, kind, bounds, _, _ in rows]
    kind_width = max(map(len, kinds))
    return [f"    {f'{name}={default}':<{width}}  {kind:<{kind_width}}  {help_text}"
            for (name, _, _, default, help_text), kind in zip(rows, kinds)]


def dataset_lines(spec: DatasetSpec) -> list[str]:
    where = "its files from --data-dir, $DLX_DATA_DIR, the cache or a download" if spec.needs_location else \
        "bundled, generated or named by its path: no --data-dir"
    lines = [f"{spec.name}  [{spec.kind}]  {spec.description}", f"  {where}",
             "  used by: " + (", ".join(t.name for t in topics().values() if _takes(t, spec.name)) or "-")]
    if spec.options:
        lines.append("  options (--dataset-option NAME=VALUE):")
        lines += _table(describe(spec.options))
    return lines


def _takes(topic: Topic, dataset: str) -> bool:
    try:
        topic.check_dataset(dataset)
    except DlxError:
        return False
    return True


def _params_json(cls: type) -> list[dict[str, Any]]:
    return [{"name": name, "type": kind, "range": bounds, "default": default, "help": help_text}
            for name, kind, bounds, default, help_text in describe(cls)]


def _topic_json(topic: Topic) -> dict[str, Any]:
    return {"name": topic.name, "description": topic.description, "framework": topic.framework,
            "datasets": list(topic.datasets), "default_dataset": topic.default_dataset,
            "main_metric": topic.main_metric, "higher_is_better": topic.higher_is_better,
            "dataset_metrics": {name: {"main_metric": m, "higher_is_better": h}
                                for name, (m, h) in topic.dataset_metrics.items()},
            "presets": {k: dict(v) for k, v in topic.presets.items()},
            "dataset_options": {k: dict(v) for k, v in topic.dataset_options.items()},
            "parameters": _params_json(topic.params)}


def _dataset_json(spec: DatasetSpec) -> dict[str, Any]:
    return {"name": spec.name, "description": spec.description, "kind": spec.kind,
            "needs_location": spec.needs_location, "options": _params_json(spec.options) if spec.options else []}
