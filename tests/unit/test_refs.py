import pytest

from airflow_provider_somlier.errors import InvalidRefError
from airflow_provider_somlier.refs import ModelRef, TableRef, parse_model_ref, parse_table_ref


@pytest.mark.parametrize(
    "ref, expected",
    [
        ("boston-house-pricing/2", ModelRef("boston-house-pricing", version="2")),
        ("boston-house-pricing@champion", ModelRef("boston-house-pricing", alias="champion")),
        ("models:/boston-house-pricing/2", ModelRef("boston-house-pricing", version="2")),
        ("models:/boston_house.v2@prod-kr", ModelRef("boston_house.v2", alias="prod-kr")),
    ],
)
def test_the_four_model_ref_forms_parse(ref, expected):
    assert parse_model_ref(ref) == expected


def test_seed_style_table_refs_take_the_connection_project():
    ref = parse_table_ref("temp_serena.boston_house_pricing_feature_set", "my-project")
    assert ref == TableRef("my-project", "temp_serena", "boston_house_pricing_feature_set")
    assert ref.sql == "`my-project.temp_serena.boston_house_pricing_feature_set`"
    assert ref.storage_path == "projects/my-project/datasets/temp_serena/tables/boston_house_pricing_feature_set"


def test_a_table_ref_without_any_project_is_refused():
    with pytest.raises(InvalidRefError, match="has no project"):
        parse_table_ref("ds.table", None)


@pytest.mark.parametrize("ref", ["ds.t`x", "ds.t;DROP", "ds", "ds.t t", "`ds`.`t`", "ds.t\nx", "ds.-t"])
def test_table_refs_with_unsafe_characters_are_refused(ref):
    with pytest.raises(InvalidRefError):
        parse_table_ref(ref, "my-project")


@pytest.mark.parametrize("name", ["load_date\n", "load_date\n\n", "load\ndate", "end\r"])
def test_column_names_with_a_newline_anywhere_are_refused(name):
    from airflow_provider_somlier.refs import validate_column_name

    with pytest.raises(InvalidRefError, match=repr(name).replace("\\", "\\\\")):
        validate_column_name(name, field="dataset_load_column")


@pytest.mark.parametrize("name", ["preds\n", "preds\nx"])
def test_table_names_with_a_newline_are_refused(name):
    from airflow_provider_somlier.refs import validate_table_name

    with pytest.raises(InvalidRefError):
        validate_table_name(name)


@pytest.mark.parametrize("ref", ["m@champion\nx", "m/1\n2", "models:/m/1\nx"])
def test_model_refs_with_an_inner_newline_are_refused(ref):
    with pytest.raises(InvalidRefError):
        parse_model_ref(ref)
