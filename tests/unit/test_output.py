import pytest

from airflow_provider_somlier.errors import ColumnCollisionError, ModelPredictionError, UnsupportedColumnTypeError
from airflow_provider_somlier.output import (
    STAGEABLE_TYPES,
    check_passthrough,
    check_passthrough_types,
    output_schema,
    prediction_columns,
)


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


def test_a_model_s_output_becomes_named_columns():
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    assert list(prediction_columns(np.zeros(3), 3)) == ["prediction"]
    assert list(prediction_columns(np.zeros((3, 2)), 3)) == ["prediction_0", "prediction_1"]
    frame = pd.DataFrame({"high": [0.2, 0.3, 0.4], "low": [0.8, 0.7, 0.6]})
    assert list(prediction_columns(frame, 3)) == ["prediction_high", "prediction_low"]
    labels = prediction_columns(pd.Series(pd.Categorical(["a", None, "b"])), 3)["prediction"]
    assert labels.type == pa.string() and labels.null_count == 1  # a categorical's missing label is NULL
    floats = prediction_columns(np.array([1.0, np.nan, 2.0]), 3)["prediction"]
    assert floats.null_count == 0  # NaN stays NaN, for the quality gate to name


@pytest.mark.parametrize("columns, match", [
    (["p(high)", "low"], r"'p\(high\)' \(→ prediction_p\(high\)\).*letters, digits and underscores"),
    (["low prob", "high"], r"'low prob' \(→ prediction_low prob\)"),
    (["Ä", "b"], r"'Ä'"),
    (["x" * 300, "b"], r"at most 300 characters"),
    (["High", "high"], r"'High' and 'high'.*letter case"),
])
def test_output_column_names_bigquery_would_refuse_or_fold_together_are_named(columns, match):
    import pandas as pd

    frame = pd.DataFrame([[0.5, 0.5]], columns=columns)
    with pytest.raises(ModelPredictionError, match=match):
        prediction_columns(frame, 1)


def test_output_of_mixed_types_is_named_by_column():
    import numpy as np

    with pytest.raises(ModelPredictionError, match=r"several types in prediction \(int, str\)"):
        prediction_columns(np.array([1, "a", None], dtype=object), 3)


def test_an_output_column_missing_on_every_row_of_the_first_chunk_is_named():
    import numpy as np
    import pyarrow as pa

    with pytest.raises(ModelPredictionError, match=r"only missing values in prediction"):
        output_schema({"row_id": "INT64"}, {"prediction": prediction_columns(np.array([None, None]), 2)[
            "prediction"].type})
    with pytest.raises(ModelPredictionError, match=r"prediction: model output type .* has no BigQuery column type"):
        output_schema({}, {"prediction": pa.list_(pa.int64())})


def test_an_answer_in_another_row_order_is_put_back_in_the_input_s():
    """A pyfunc that concatenates per-segment answers keeps each row's label but not its place."""
    import pandas as pd

    features = pd.DataFrame({"segment": ["vip", "basic", "vip", "basic"], "x": [1.0, 2.0, 3.0, 4.0]})
    answer = pd.concat([rows["x"] * (100 if segment == "vip" else 1) for segment, rows in features.groupby("segment")])
    assert answer.tolist() == [2.0, 4.0, 100.0, 300.0]  # basic rows first
    assert prediction_columns(answer, 4, features.index)["prediction"].to_pylist() == [100.0, 2.0, 300.0, 4.0]
    frame = answer.to_frame("score").assign(rank=[1, 2, 3, 4])
    columns = prediction_columns(frame, 4, features.index)
    assert columns["prediction_score"].to_pylist() == [100.0, 2.0, 300.0, 4.0]
    assert columns["prediction_rank"].to_pylist() == [3, 1, 4, 2]
    # labels of its own (ids, a reset index) are taken by position, as written
    relabelled = pd.Series([1.0, 2.0, 3.0, 4.0], index=[10, 11, 12, 13])
    assert prediction_columns(relabelled, 4, features.index)["prediction"].to_pylist() == [1.0, 2.0, 3.0, 4.0]
