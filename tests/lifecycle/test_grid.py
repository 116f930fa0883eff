import re

import pytest

from airflow_provider_somlier.errors import InvalidArgumentError
from airflow_provider_somlier.lifecycle.grid import expand_grid, parse_values


def test_the_seeds_example_makes_eight_runs():
    grid = expand_grid({"learning_rate": "0.001..0.005..0.001", "batch_size": "64,128", "num_epochs": "3"})
    assert len(grid) == 8
    assert sorted({g["learning_rate"] for g in grid}) == [0.001, 0.002, 0.003, 0.004]
    assert {g["batch_size"] for g in grid} == {64, 128} and {g["num_epochs"] for g in grid} == {3}


def test_float_steps_do_not_drift():
    assert parse_values("alpha", "0.1..0.4..0.1") == [0.1, 0.2, 0.3]


@pytest.mark.parametrize(
    "spec, message",
    [("1..2", "START..END..INCREMENT"), ("a..2..1", "START 'a' is not a finite number"),
     ("1..2..0", "INCREMENT 0 must be above 0"), ("1..2..-0.5", "INCREMENT -0.5 must be above 0"),
     ("3..1..1", "START 3 must be below END 1"), ("3..1..-1", "INCREMENT -1 must be above 0"),
     ("0..inf..1", "END 'inf' is not a finite number"), ("1,,2", "empty item"), ("", "empty value")],
)
def test_malformed_grid_specs_name_the_flag(spec, message):
    with pytest.raises(InvalidArgumentError, match=message) as caught:
        parse_values("lr", spec)
    assert "lr" in str(caught.value)


def test_empty_and_oversized_grids_are_refused():
    with pytest.raises(InvalidArgumentError, match="empty"):
        expand_grid({})
    with pytest.raises(InvalidArgumentError, match="1000 combinations, over the limit of 256"):
        expand_grid({"a": "0..10..1", "b": "0..10..1", "c": "0..10..1"})


def test_json_lists_and_numbers_are_values_as_they_are():
    grid = expand_grid({"alpha": [0.1, 0.2], "depth": 3, "kind": ["a", "b"]})
    assert [(g["alpha"], g["kind"]) for g in grid] == [(0.1, "a"), (0.1, "b"), (0.2, "a"), (0.2, "b")]
    assert {g["depth"] for g in grid} == {3}


@pytest.mark.parametrize("spec, message", [
    ([], "alpha: the list of values is empty"),
    ([0.1, [0.2]], "alpha: [0.2] in [0.1, [0.2]] is not a number"),
    ({"a": 1}, "alpha must be a string, a number or a list of values"),
])
def test_bad_json_values_name_the_parameter(spec, message):
    with pytest.raises(InvalidArgumentError, match=re.escape(message)):
        expand_grid({"alpha": spec})


@pytest.mark.parametrize("spec, values", [("0..1e12..1", 10**12), ("0..1000000..1", 10**6), ("0..1..1e-30", 10**30)])
def test_a_huge_range_is_counted_and_refused_before_it_is_listed(spec, values):
    import time

    began = time.monotonic()
    refusal = f"--lr '{re.escape(spec)}' has {values} values, over the limit of 256"
    with pytest.raises(InvalidArgumentError, match=refusal):
        expand_grid({"lr": spec})
    assert time.monotonic() - began < 0.5


def test_a_small_increment_on_a_large_start_still_moves():
    start = str(10**30)
    assert parse_values("n", f"{start}..{10**30 + 2}..1") == [10**30, 10**30 + 1]


@pytest.mark.parametrize("spec", [[0.1, float("nan")], float("inf"), [float("-inf")]])
def test_non_finite_json_numbers_are_refused_by_name(spec):
    with pytest.raises(InvalidArgumentError, match="is not a finite number"):
        expand_grid({"alpha": spec})


def test_nan_and_inf_as_text_stay_text():
    """A float NaN would make the web server's answers invalid JSON; ``inf`` has no int value."""
    assert expand_grid({"alpha": "nan,inf,-Infinity,0.5"}) == [
        {"alpha": "nan"}, {"alpha": "inf"}, {"alpha": "-Infinity"}, {"alpha": 0.5}]
