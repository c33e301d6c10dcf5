"""The registry: versions found by ID@VERSION or by the date they are in force."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from carbonbook.methodology import errors
from carbonbook.methodology.registry import (
    Registry,
    all_methodologies,
    data_dir,
    default_registry,
    get,
    in_force,
)
from tests.methodology.builders import methodology

REPOSITORY_DATA = Path(__file__).resolve().parents[2] / "data" / "methodologies"


def registry_of_three_versions() -> Registry:
    return Registry(
        [
            methodology("x", "2021", effective_from=date(2021, 1, 1)),
            methodology("x", "2023", effective_from=date(2023, 7, 1)),
            methodology("x", "2022", effective_from=date(2022, 1, 1)),
            methodology(
                "y", "1", effective_from=date(2022, 1, 1), effective_until=date(2022, 12, 31)
            ),
        ]
    )


def test_a_version_is_found_by_its_id_at_version():
    assert get("bj-green-life@2023").ref == "bj-green-life@2023"
    assert get("ali-88@2023").behaviour("shared_bike").factor_g_per_unit == 334


def test_an_unknown_version_is_refused_naming_the_known_ones():
    with pytest.raises(errors.UnknownMethodologyError) as refused:
        get("bj-green-life@1999")
    assert refused.value.code == "UNKNOWN_METHODOLOGY"
    assert "'bj-green-life@1999'" in refused.value.message
    assert "bj-green-life@2023" in refused.value.message
    assert "bj-green-life@1999" in refused.value.message_zh


def test_the_version_in_force_is_the_latest_that_has_taken_effect():
    registry = registry_of_three_versions()
    assert registry.in_force("x", date(2021, 6, 1)).ref == "x@2021"
    assert registry.in_force("x", date(2022, 1, 1)).ref == "x@2022"  # its first day
    assert registry.in_force("x", date(2023, 6, 30)).ref == "x@2022"
    assert registry.in_force("x", date(2023, 7, 1)).ref == "x@2023"  # superseded
    assert registry.in_force("x", date(2030, 1, 1)).ref == "x@2023"


def test_versions_are_listed_oldest_effective_date_first():
    assert [m.version for m in registry_of_three_versions().versions("x")] == [
        "2021",
        "2022",
        "2023",
    ]


def test_nothing_is_in_force_before_the_first_version_or_after_an_explicit_end():
    registry = registry_of_three_versions()
    with pytest.raises(errors.UnknownMethodologyError) as before:
        registry.in_force("x", date(2020, 12, 31))
    assert "2020-12-31" in before.value.message
    assert "x@2021 from 2021-01-01" in before.value.message
    assert registry.in_force("y", date(2022, 12, 31)).ref == "y@1"
    with pytest.raises(errors.UnknownMethodologyError):
        registry.in_force("y", date(2023, 1, 1))
    with pytest.raises(errors.UnknownMethodologyError):
        registry.in_force("nobody", date(2023, 1, 1))


def test_a_name_resolves_as_id_at_version_or_as_the_id_in_force_on_a_day():
    registry = registry_of_three_versions()
    assert registry.resolve("x@2021", date(2030, 1, 1)).ref == "x@2021"
    assert registry.resolve("x", date(2022, 5, 1)).ref == "x@2022"
    with pytest.raises(errors.UnknownMethodologyError):
        registry.resolve("x")  # a bare id needs a day


def test_two_versions_taking_effect_on_the_same_day_are_refused_as_ambiguous():
    with pytest.raises(errors.InvalidMethodologyError) as refused:
        Registry([methodology("x", "a"), methodology("x", "b")])
    assert "x@a, x@b: take effect on the same day 2023-01-01" in refused.value.message


def test_the_same_version_twice_is_refused():
    with pytest.raises(errors.InvalidMethodologyError, match="x@1: defined twice"):
        Registry([methodology("x", "1"), methodology("x", "1")])


def test_the_shipped_versions_in_force_on_the_example_day():
    day = date(2023, 3, 6)
    assert in_force("bj-green-life", day).ref == "bj-green-life@2023"
    assert in_force("sz-tph", day).ref == "sz-tph@2022"
    assert default_registry().resolve("ali-88", day).ref == "ali-88@2023"


def test_all_methodologies_is_a_fresh_dict_by_ref():
    every = all_methodologies()
    assert sorted(every) == list(default_registry().refs)
    every.clear()
    assert all_methodologies()


def test_data_is_read_from_the_package_copy_or_else_the_repository():
    found = data_dir()
    assert (found / "personal" / "bj-green-life@2023.toml").is_file()
    packaged = Path(__file__).resolve().parents[2] / "src" / "carbonbook" / "_data"
    if not packaged.exists():  # a source checkout: the repository's own data
        assert found == REPOSITORY_DATA


def test_methodology_versions_are_immutable_values():
    bj = get("bj-green-life@2023")
    with pytest.raises(AttributeError):
        bj.version = "2024"  # type: ignore[misc]
    with pytest.raises(TypeError):
        bj.behaviours["teleport"] = bj.behaviours["shared_bike"]  # type: ignore[index]
    assert get("bj-green-life@2023") == bj
