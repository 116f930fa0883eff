import pytest

from airflow_provider_somlier.errors import ColumnCollisionError, UnsupportedColumnTypeError
from airflow_provider_somlier.output import STAGEABLE_TYPES, check_passthrough, check_passthrough_types


@pytest.mark.parametrize(
    "column_type", ["TIME", "BIGNUMERIC", "JSON", "GEOGRAPHY", "INTERVAL", "RECORD", "STRUCT", "RANGE<DATE>", "ARRAY<INT64>"]
)
def test_passthrough_types_the_staging_cannot_carry_are_named(column_type):
    with pytest.raises(UnsupportedColumnTypeError, match=rf"'odd' \({column_type}\) of src"):
        check_passthrough_types({"row_id": "INT64", "odd": column_type}, source="src")


@pytest.mark.parametrize("column_type", [*STAGEABLE_TYPES, "INTEGER", "FLOAT", "BOOLEAN"])
def test_plain_passthrough_types_pass(column_type):
    check_passthrough_types({"id": column_type}, source="src")


@pytest.mark.parametrize("column", ["PREDICTION", "Target_Date", "predicted_AT", "Prediction_1"])
def test_output_names_collide_in_any_letter_case(column):
    with pytest.raises(ColumnCollisionError, match=repr(column)):
        check_passthrough(["row_id", column])
