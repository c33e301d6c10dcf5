"""Methodology files are validated on load, every problem reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from carbonbook.methodology import errors
from carbonbook.methodology.registry import Registry, load_file, parse
from tests.methodology.builders import behaviour, document

SHIPPED = Path(__file__).resolve().parents[2] / "data" / "methodologies" / "personal"


def problems_of(data: dict) -> list[str]:
    with pytest.raises(errors.InvalidMethodologyError) as refused:
        parse(data, "x@1.toml")
    assert refused.value.code == "INVALID_METHODOLOGY"
    return refused.value.details["problems"]


def test_a_valid_document_loads():
    assert parse(document(), "x@1.toml").ref == "x@1"


def test_a_factor_without_a_source_is_refused():
    bad = behaviour()
    del bad["factor_source"]
    assert problems_of(document(behaviours=[bad])) == [
        (
            "x@1.toml: behaviours.walk: missing source ('factor_source'): every value must cite "
            "where it is from"
        )
    ]


def test_limits_points_duplicates_evidence_and_dates_each_need_a_source():
    data = document()
    del data["points"]["source"]
    del data["duplicates"]["source"]
    del data["evidence"]["self"]["source"]
    del data["effective_from_source"]
    data["behaviours"][0]["limits"].pop("source")
    found = "\n".join(problems_of(data))
    for at in ("points", "duplicates", "evidence.self", "effective_from", "behaviours.walk.limits"):
        assert f"x@1.toml: {at}: missing source" in found


@pytest.mark.parametrize("written", [1.5, 250, "abc", "", "NaN"])
def test_a_factor_not_written_as_a_decimal_string_is_refused(written):
    [problem] = problems_of(document(behaviours=[behaviour(factor_g_per_unit=written)]))
    assert problem.startswith("x@1.toml: behaviours.walk: ")
    assert "factor_g_per_unit" in problem


def test_a_float_factor_names_the_quoted_form_to_write():
    [problem] = problems_of(document(behaviours=[behaviour(factor_g_per_unit=45.72)]))
    assert 'must be a decimal written as a string (e.g. factor_g_per_unit = "45.72")' in problem


def test_a_factor_finer_than_two_decimals_of_a_gram_is_refused():
    [problem] = problems_of(document(behaviours=[behaviour(factor_g_per_unit="45.725")]))
    assert "has more than 2 decimals" in problem


def test_a_duplicate_behaviour_code_is_refused():
    [problem] = problems_of(document(behaviours=[behaviour("walk"), behaviour("walk")]))
    assert problem == "x@1.toml: behaviours.walk: duplicate behaviour code"


def test_an_unknown_key_is_refused_so_typos_do_not_pass_silently():
    [problem] = problems_of(document(behaviours=[behaviour(factor_g_per_km="10")]))
    assert "unknown keys ['factor_g_per_km']" in problem


def test_every_problem_of_a_file_is_reported_in_one_pass():
    data = document(timezone="Mars/Olympus", behaviours=[behaviour(unit=3, factor_g_per_unit=2)])
    del data["points"]
    found = problems_of(data)
    assert len(found) == 4
    assert any("unknown time zone 'Mars/Olympus'" in p for p in found)
    assert any("missing table 'points'" in p for p in found)


def test_a_behaviour_without_a_factor_must_say_it_is_not_published():
    bad = behaviour()
    del bad["factor_g_per_unit"]
    [problem] = problems_of(document(behaviours=[bad]))
    assert "missing 'factor_g_per_unit' (or factor_status = 'not published')" in problem
    bad["factor_status"] = "not published"
    assert (
        parse(document(behaviours=[bad]), "x@1.toml").behaviours["walk"].factor_g_per_unit is None
    )


def test_evidence_factors_must_name_declared_evidence_levels():
    bad = behaviour(evidence_factors={"notary": "10", "source": "test"})
    [problem] = problems_of(document(behaviours=[bad]))
    assert "evidence_factors names 'notary', not an [evidence] level" in problem


def test_an_evidence_weight_above_one_is_refused():
    data = document()
    data["evidence"]["operator"]["weight"] = "1.5"
    [problem] = problems_of(data)
    assert "must be at most 1" in problem


def test_an_unsupported_points_rounding_is_refused():
    data = document()
    data["points"]["rounding"] = "banker"
    [problem] = problems_of(data)
    assert "rounding 'banker' is not supported" in problem


def test_a_file_must_be_named_after_its_id_and_version(tmp_path):
    path = tmp_path / "x@2.toml"
    path.write_text((SHIPPED / "bj-green-life@2023.toml").read_text(encoding="utf-8"))
    with pytest.raises(errors.InvalidMethodologyError, match="the file name must be ID@VERSION"):
        load_file(path)


def test_a_file_that_is_not_toml_is_refused_with_its_name(tmp_path):
    (tmp_path / "x@1.toml").write_text("id = \n", encoding="utf-8")
    with pytest.raises(errors.InvalidMethodologyError, match=r"x@1\.toml: not valid TOML"):
        load_file(tmp_path / "x@1.toml")


def test_a_directory_reports_the_problems_of_every_file(tmp_path):
    (tmp_path / "a@1.toml").write_text("id = \n", encoding="utf-8")
    (tmp_path / "b@1.toml").write_text('id = "b"\n', encoding="utf-8")
    with pytest.raises(errors.InvalidMethodologyError) as refused:
        Registry.from_directory(tmp_path)
    problems = refused.value.details["problems"]
    assert any(p.startswith("a@1.toml") for p in problems)
    assert any(p.startswith("b@1.toml") for p in problems)
