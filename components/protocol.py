"""How a run's figures were measured, in words: "test RMSE", "cross-validated accuracy (5 folds)".

metrics.json keeps its figures under "test" whatever the protocol (other tools read that key) and
names the protocol beside them: {"kind": "test"}, {"kind": "cv", "folds": 5}, {"kind": "holdout",
"test_fraction": 0.2} or {"kind": "validation"}.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

METRIC_NAMES = {"rmse": "RMSE", "mae": "MAE", "mse": "MSE", "loss": "log loss", "nats_per_char": "nats/char",
                "bits_per_char": "bits/char"}
"""How a metric is written in words (the rest as they are named)."""


def scored_on(protocol: Mapping[str, Any]) -> str:
    """Where the figures come from: "test", "cross-validated (5 folds)", "validation"."""
    kind = protocol.get("kind", "test")
    if kind == "cv":
        return f"cross-validated ({protocol['folds']} folds)"
    if kind == "holdout":
        return f"held-out test ({protocol['test_fraction']:.0%})"
    return kind


def metric_label(protocol: Mapping[str, Any], name: str) -> str:
    """A figure's name with how it was measured: "test RMSE", "cross-validated accuracy (5 folds)"."""
    shown = METRIC_NAMES.get(name, name)
    where = scored_on(protocol)
    if where.endswith(")"):
        head, _, tail = where.partition(" (")
        return f"{head} {shown} ({tail}"
    return f"{where} {shown}"
