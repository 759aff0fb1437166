from dataclasses import dataclass
from typing import Literal

import pytest

from components.errors import DlxError
from components.params import describe, differences, from_dict, help_field, override, to_dict


@dataclass(frozen=True)
class Example:
    epochs: int = help_field(3, "passes", at_least=1)
    rate: float = help_field(0.1, "step size", above=0, at_most=1)
    shuffle: bool = help_field(True, "shuffle each epoch")
    units: tuple[int, ...] = help_field((8, 4), "layer widths", at_least=1)
    optimizer: Literal["adam", "sgd"] = help_field("adam", "optimiser")
    name: str = help_field("x", "a label")

    def __post_init__(self):
        if self.epochs > 5 and self.rate > 0.5:
            raise ValueError("a rate above 0.5 takes at most 5 epochs")


def test_overrides_are_parsed_to_each_fields_type():
    p = override(Example, ["epochs=7", "rate=1e-3", "shuffle=no", "units=16, 8,2", "optimizer=sgd", "name=a=b"], "t")
    assert (p.epochs, p.rate, p.shuffle, p.units, p.optimizer, p.name) == (7, 0.001, False, (16, 8, 2), "sgd", "a=b")
    assert override(Example, {}, "t") == Example()


@pytest.mark.parametrize("item, fragment", [
    ("epoch=3", "unknown parameter 'epoch' for t; valid parameters: epochs, rate, shuffle, units, optimizer, name"),
    ("epochs=three", "bad value 'three' for parameter epochs (int) of t: expected int"),
    ("shuffle=maybe", "expected true or false"),
    ("optimizer=adagrad", "choose one of adam, sgd"),
    ("units=", "expected a comma-separated list"),
    ("epochs=0", "bad value 0 for parameter epochs of t: must be >= 1"),
    ("rate=0", "must be (0, 1]"),
    ("rate=1.5", "must be (0, 1]"),
    ("units=8,0", "each item must be >= 1"),
    ("epochs=6 rate=0.9", "bad parameter for t: a rate above 0.5 takes at most 5 epochs"),
    ("epochs", "write it as NAME=VALUE"),
])
def test_bad_overrides_name_the_problem(item, fragment):
    with pytest.raises(DlxError, match=None) as info:
        override(Example, item.split(" "), "t")
    assert fragment in str(info.value)


def test_json_round_trip_and_differences():
    p = override(Example, ["units=32", "rate=0.5"], "t")
    data = to_dict(p)
    assert data["units"] == [32]
    assert from_dict(Example, data, "t") == p
    assert differences(Example(), data) == {"rate": 0.5, "units": [32]}
    with pytest.raises(DlxError, match="unknown parameter 'bogus'"):
        from_dict(Example, {"bogus": 1}, "t")
    assert from_dict(Example, {"rate": 1}, "t").rate == 1.0


@pytest.mark.parametrize("data, fragment", [
    ({"epochs": "2"}, "bad value '2' for parameter epochs (int) of t: expected int"),
    ({"epochs": True}, "expected int"),
    ({"units": 8}, "expected a non-empty list"),
    ({"units": [8, "x"]}, "expected int"),
    ({"optimizer": "adagrad"}, "choose one of adam, sgd"),
    ({"epochs": 0}, "epochs of t: must be >= 1"),
])
def test_json_values_of_the_wrong_type_are_user_errors(data, fragment):
    with pytest.raises(DlxError) as info:
        from_dict(Example, data, "t")
    assert fragment in str(info.value)


def test_describe_lists_every_field_with_help():
    rows = describe(Example)
    assert [r[0] for r in rows] == ["epochs", "rate", "shuffle", "units", "optimizer", "name"]
    assert rows[3] == ("units", "int,...", ">= 1", "8,4", "layer widths")
    assert rows[1][2] == "(0, 1]" and rows[4][1:3] == ("adam|sgd", "")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "1e999"])
def test_non_finite_floats_are_refused_for_every_float_parameter(value):
    """nan and inf parse as floats; every topic's float parameters refuse them in one line."""
    from components.params import parameter_types
    from components.registry import topics

    for topic in topics().values():
        for name, tp in parameter_types(topic.params).items():
            if tp is float:
                with pytest.raises(DlxError, match=f"parameter {name} .*expected a finite number"):
                    topic.params_for(topic.default_dataset, [f"{name}={value}"])


def test_non_finite_values_in_a_pipelines_json_are_refused_too():
    from components.params import from_dict
    from components.registry import get_topic

    with pytest.raises(DlxError, match="expected a finite number"):
        from_dict(get_topic("cf-regularized").params, {"learning_rate": float("nan")}, "cf-regularized")


def test_every_topic_declares_a_range_for_its_numbers_and_its_defaults_lie_in_it():
    """Each int and float parameter (and list of them) of every topic and data set says what it
    accepts; the defaults and presets are inside it, and a value outside is one line naming it."""
    import typing

    from components.data import DATASETS
    from components.params import parameter_types, to_dict
    from components.registry import topics

    for owner, cls, values in [*((t.name, t.params, [t.params_for(d) for d in t.datasets]) for t in topics().values()),
                               *((d.name, d.options, [d.options()]) for d in DATASETS.values() if d.options)]:
        rows = {name: bounds for name, _, bounds, _, _ in describe(cls)}
        for name, tp in parameter_types(cls).items():
            item = typing.get_args(tp)[0] if typing.get_origin(tp) is tuple else tp
            if item in (int, float):
                assert rows[name], f"{owner}: {name} declares no range"
        for params in values:
            from_dict(cls, to_dict(params), owner)  # raises on a default outside its range
