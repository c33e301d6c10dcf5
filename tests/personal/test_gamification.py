"""Levels, badges (勋章) and streaks: the rules as data, the pure functions over day totals, and
awarding, which writes each badge once however often it runs."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from carbonbook.db.schema import person_badges
from carbonbook.methodology.registry import all_methodologies, get
from carbonbook.personal.achievements import Achievements
from carbonbook.personal.gamification import (
    BadGamificationRulesError,
    DayTotal,
    evaluate_badges,
    level_of,
    load_rules,
    mask_handle,
    parse_rules,
    streak_of,
)
from carbonbook.personal.service import Personal

RULES = """
version = "test.1"
timezone = "Asia/Shanghai"

[[levels]]
id = "sprout"
name_zh = "绿芽"
name_en = "Sprout"
threshold_g = 0
source = "test"

[[levels]]
id = "seedling"
name_zh = "绿苗"
name_en = "Seedling"
threshold_g = 1_000
source = "test"

[[levels]]
id = "tree"
name_zh = "大树"
name_en = "Tree"
threshold_g = 5_000
source = "test"

[streak]
active_when = "day_reduction_gt_0"
today_pending = true

[leaderboards]
scopes = ["city", "organisation", "team"]
periods = ["month", "all"]
size = 10
max_size = 100

[[badges]]
id = "first-ride"
kind = "first_event"
behaviour = "shared_bike"
name_zh = "第一次骑行"
name_en = "First ride"
description_zh = "第一次骑行"
description_en = "First ride"
source = "test"

[[badges]]
id = "bike-2kg"
kind = "total_reduction"
behaviour = "shared_bike"
threshold_g = 2_000
name_zh = "骑行 2 千克"
name_en = "Cycling 2 kg"
description_zh = "骑行累计减碳 2 千克"
description_en = "2 kg by bike"
source = "test"

[[badges]]
id = "no-cutlery-3"
kind = "active_days"
behaviour = "no_cutlery"
days = 3
name_zh = "三天无餐具"
name_en = "No cutlery, 3 days"
description_zh = "3 天不要餐具"
description_en = "3 days without cutlery"
source = "test"

[[badges]]
id = "streak-3"
kind = "streak"
days = 3
name_zh = "连续三天"
name_en = "Three in a row"
description_zh = "连续 3 天"
description_en = "3 days in a row"
source = "test"

[[badges]]
id = "points-20"
kind = "points"
points = 20
name_zh = "20 积分"
name_en = "20 points"
description_zh = "累计 20 积分"
description_en = "20 points"
source = "test"
"""


@pytest.fixture(scope="module")
def rules():
    return parse_rules(RULES, "test.toml")


def day(text: str, points: int = 0, **mg: int) -> DayTotal:
    return DayTotal(date.fromisoformat(text), mg, points)


# -- the rules file ----------------------------------------------------------------------------------


def test_the_shipped_rules_load_and_name_only_behaviours_some_methodology_has():
    shipped = load_rules()
    assert shipped.version
    assert len(shipped.sha256) == 64
    assert shipped.levels[0].threshold_mg == 0
    known = {code for m in all_methodologies().values() for code in m.behaviours}
    assert {b.behaviour for b in shipped.badges if b.behaviour} <= known
    assert {b.kind for b in shipped.badges} == {
        "first_event",
        "total_reduction",
        "active_days",
        "streak",
        "points",
    }


def test_grams_in_the_file_become_milligrams_exactly(rules):
    assert [level.threshold_mg for level in rules.levels] == [0, 1_000_000, 5_000_000]
    assert rules.badge("bike-2kg").target == 2_000_000
    assert rules.badge("first-ride").target == 1


def test_the_hash_changes_with_the_text_and_the_version_is_kept(rules):
    other = parse_rules(RULES.replace("threshold_g = 5_000", "threshold_g = 6_000"))
    assert other.version == rules.version == "test.1"
    assert other.sha256 != rules.sha256


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (('kind = "points"', 'kind = "teleport"'), "kind must be one of"),
        (("threshold_g = 5_000", "threshold_g = 500"), "thresholds must increase"),
        (("threshold_g = 0", "threshold_g = 10"), "first level must start at threshold_g = 0"),
        (
            ('days = 3\nname_zh = "连续三天"', 'dayz = 3\nname_zh = "连续三天"'),
            "unknown key 'dayz'",
        ),
        (("points = 20", "points = true"), "points must be a whole number"),
        (("threshold_g = 2_000", "threshold_g = -1"), "threshold_g must be a whole number >= 1"),
        (('id = "bike-2kg"', 'id = "first-ride"'), "'first-ride' is used twice"),
        (('kind = "points"', 'kind = "points"\nbehaviour = "metro"'), "leave behaviour out"),
        (('id = "streak-3"', 'id = "Streak 3"'), "id must be"),
        (('name_en = "Tree"', 'name_en = ""'), "name_en must be a non-empty string"),
        (('active_when = "day_reduction_gt_0"', 'active_when = "any"'), "active_when"),
        (('scopes = ["city", "organisation", "team"]', 'scopes = ["street"]'), "scopes must be"),
        (("size = 10", "size = 1000"), "size must not exceed max_size"),
        (('timezone = "Asia/Shanghai"', 'timezone = "UTC"'), "timezone must be Asia/Shanghai"),
        (('version = "test.1"', "version = 1"), "version must be a non-empty string"),
    ],
)
def test_bad_rules_are_refused_with_where_and_why(change, problem):
    old, new = change
    assert old in RULES
    with pytest.raises(BadGamificationRulesError) as caught:
        parse_rules(RULES.replace(old, new, 1), "bad.toml")
    assert problem in caught.value.message
    assert caught.value.message.startswith("bad.toml")
    assert caught.value.code == "BAD_GAMIFICATION_RULES"
    assert caught.value.http_status == 422


def test_a_file_that_is_not_toml_is_refused():
    with pytest.raises(BadGamificationRulesError, match="not TOML"):
        parse_rules("levels = [", "broken.toml")


# -- levels ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total_mg", "level", "percent", "to_next_mg"),
    [
        (0, "sprout", 0, 1_000_000),
        (-5, "sprout", 0, 1_000_000),
        (999_999, "sprout", 99, 1),  # one milligram short is never 100 %
        (1_000_000, "seedling", 0, 4_000_000),  # exactly at the threshold: reached
        (3_000_000, "seedling", 50, 2_000_000),
        (5_000_000, "tree", 100, 0),
        (9_999_999_999, "tree", 100, 0),
    ],
)
def test_the_level_is_the_highest_threshold_reached(rules, total_mg, level, percent, to_next_mg):
    standing = level_of(rules.levels, total_mg)
    assert standing.level.id == level
    assert standing.percent == percent
    assert standing.to_next_mg == to_next_mg
    assert (standing.next_level is None) == (level == "tree")


# -- streaks -----------------------------------------------------------------------------------------


def d(text: str) -> date:
    return date.fromisoformat(text)


def test_a_streak_runs_across_a_month_and_a_year_boundary():
    days = [d("2024-12-30"), d("2024-12-31"), d("2025-01-01"), d("2025-01-02")]
    found = streak_of(days, d("2025-01-02"))
    assert (found.current, found.longest) == (4, 4)
    leap = streak_of([d("2024-02-28"), d("2024-02-29"), d("2024-03-01")], d("2024-03-01"))
    assert (leap.current, leap.longest) == (3, 3)


def test_a_gap_breaks_the_streak_and_the_longest_run_is_remembered():
    days = [d("2025-01-01"), d("2025-01-02"), d("2025-01-03"), d("2025-01-05"), d("2025-01-06")]
    found = streak_of(days, d("2025-01-06"))
    assert (found.current, found.longest) == (2, 3)
    assert streak_of(days, d("2025-01-08")).current == 0  # two days without: broken


def test_today_with_nothing_yet_does_not_break_the_streak_unless_the_rule_says_so():
    days = [d("2025-03-30"), d("2025-03-31")]
    assert streak_of(days, d("2025-04-01")).current == 2
    assert streak_of(days, d("2025-04-01"), today_pending=False).current == 0
    assert streak_of([], d("2025-04-01")) == streak_of([], d("2025-04-01"))
    assert streak_of([], d("2025-04-01")).longest == 0


def test_days_after_today_and_repeated_days_are_ignored():
    days = [d("2025-01-01"), d("2025-01-01"), d("2025-01-02"), d("2025-01-09")]
    found = streak_of(days, d("2025-01-02"))
    assert (found.current, found.longest) == (2, 2)


@given(
    st.sets(st.dates(min_value=date(2024, 1, 1), max_value=date(2025, 12, 31)), max_size=60),
    st.dates(min_value=date(2024, 1, 1), max_value=date(2026, 1, 31)),
    st.booleans(),
)
def test_streak_properties(days, today, pending):
    found = streak_of(days, today, today_pending=pending)
    counted = {x for x in days if x <= today}
    assert 0 <= found.current <= found.longest <= len(counted)
    if found.current:  # a current streak ends today, or yesterday while today is pending
        last = today if today in counted else today - timedelta(days=1)
        assert all(last - timedelta(days=n) in counted for n in range(found.current))
        assert last - timedelta(days=found.current) not in counted
    if counted:
        assert found.longest >= 1


# -- badges ------------------------------------------------------------------------------------------


def test_first_event_is_earned_on_the_first_day_with_grams_of_the_behaviour(rules):
    report = evaluate_badges(
        rules.badges,
        [day("2025-01-02", shared_bike=250_000), day("2025-01-01", no_cutlery=45_720)],
    )
    assert report.earned["first-ride"] == d("2025-01-02")


def test_a_behaviour_total_counts_that_behaviour_only(rules):
    days = [
        day("2025-01-01", shared_bike=1_250_000, no_cutlery=9_000_000),
        day("2025-01-04", shared_bike=749_999),
    ]
    assert "bike-2kg" not in evaluate_badges(rules.badges, days).earned
    report = evaluate_badges(rules.badges, [*days, day("2025-02-01", shared_bike=1)])
    assert report.earned["bike-2kg"] == d("2025-02-01")
    assert report.progress["bike-2kg"] == 2_000_000  # capped at the target


def test_active_days_count_days_not_events_and_need_grams(rules):
    days = [
        day("2025-01-01", no_cutlery=45_720),
        day("2025-01-07", no_cutlery=0),  # nothing avoided: not an active day
        day("2025-01-09", no_cutlery=91_440),
    ]
    report = evaluate_badges(rules.badges, days)
    assert "no-cutlery-3" not in report.earned
    assert report.progress["no-cutlery-3"] == 2
    later = evaluate_badges(rules.badges, [*days, day("2025-03-01", no_cutlery=1)])
    assert later.earned["no-cutlery-3"] == d("2025-03-01")


def test_a_streak_badge_holds_once_the_longest_run_reached_it(rules):
    days = [day(f"2025-01-{n:02}", e_waybill=5_000) for n in (30, 31)] + [
        day("2025-02-01", metro=1),
        day("2025-02-10", metro=1),  # the run is broken now, the badge stays
    ]
    report = evaluate_badges(rules.badges, days)
    assert report.earned["streak-3"] == d("2025-02-01")


def test_points_add_up_over_days(rules):
    days = [day("2025-01-01", 13, shared_bike=1_250_000), day("2025-01-02", 7, metro=700_000)]
    assert evaluate_badges(rules.badges, days).earned["points-20"] == d("2025-01-02")
    assert "points-20" not in evaluate_badges(rules.badges, days[:1]).earned


def test_the_same_day_given_twice_is_added_up(rules):
    days = [day("2025-01-01", shared_bike=1_000_000), day("2025-01-01", shared_bike=1_000_000)]
    assert evaluate_badges(rules.badges, days).earned["bike-2kg"] == d("2025-01-01")


day_totals = st.lists(
    st.builds(
        DayTotal,
        st.dates(min_value=date(2025, 1, 1), max_value=date(2025, 3, 31)),
        st.dictionaries(
            st.sampled_from(["shared_bike", "no_cutlery", "metro"]),
            st.integers(min_value=0, max_value=2_000_000),
            max_size=3,
        ),
        st.integers(min_value=0, max_value=20),
    ),
    max_size=40,
)


@given(day_totals, day_totals)
def test_more_days_never_take_a_badge_away(rules, first, more):
    before = evaluate_badges(rules.badges, first).earned
    after = evaluate_badges(rules.badges, first + more).earned
    assert set(before) <= set(after)
    for when in after.values():
        assert any(t.day == when for t in first + more)


def test_a_masked_handle_shows_no_phone_number_or_address():
    assert mask_handle("13800138000") == "1***0"
    assert mask_handle("chen@example.com") == "c***m"
    assert mask_handle("xu") == "x*"
    assert mask_handle("a") == "a*"


# -- awarding (database) -----------------------------------------------------------------------------


def ride(n: int, person: str, at: str, km: str = "5", behaviour: str = "shared_bike") -> str:
    unit = "km" if behaviour == "shared_bike" else "order"
    return json.dumps(
        {
            "platform": "bike-a",
            "event_id": f"{person}-{n}",
            "person": person,
            "behaviour": behaviour,
            "quantity": km,
            "unit": unit,
            "occurred_at": at,
        }
    )


def test_awarding_is_idempotent_and_remembers_the_day_earned(engine: sa.Engine, rules):
    lines = [
        ride(1, "chen", "2025-01-30T08:00:00+08:00", "2"),  # 500 g
        ride(2, "chen", "2025-01-31T08:00:00+08:00", "2"),
        ride(3, "chen", "2025-02-01T00:30:00+08:00", "2"),  # 2025-01-31 16:30 UTC: Feb 1st here
        ride(4, "xu", "2025-02-01T08:00:00+08:00", "1", "no_cutlery"),
    ]
    Personal(engine).ingest_lines(lines, get("bj-green-life@2023"))
    service = Achievements(engine, rules)
    first = service.of("chen", today=d("2025-02-01"))
    assert sorted(first.new_badges) == ["first-ride", "streak-3"]
    assert (first.streak.current, first.streak.longest) == (3, 3)
    assert first.standing.level.id == "seedling"  # 1500 g
    assert first.standing.total_mg == 1_500_000
    again = service.of("chen", today=d("2025-02-01"))
    assert again.new_badges == []
    assert {s.badge.id: s.earned_day for s in again.badges if s.earned} == {
        "first-ride": "2025-01-30",
        "streak-3": "2025-02-01",
    }
    assert service.award_all() == 0  # chen's are in; xu's "no-cutlery-3" is not earned yet
    assert service.award_all() == 0
    with engine.connect() as conn:
        rows = conn.execute(sa.select(person_badges).order_by(person_badges.c.badge)).all()
    assert [(r.person, r.badge) for r in rows] == [("chen", "first-ride"), ("chen", "streak-3")]
    assert {r.rules_version for r in rows} == {"test.1"}
    assert {r.rules_hash for r in rows} == {rules.sha256}


def test_award_all_awards_everyone_set_wise_once(engine: sa.Engine, rules):
    now = datetime.now(UTC) - timedelta(days=1)
    lines = [ride(n, f"p{n % 3}", (now - timedelta(days=n // 3)).isoformat()) for n in range(9)]
    Personal(engine).ingest_lines(lines, get("bj-green-life@2023"))
    service = Achievements(engine, rules)
    awarded = service.award_all()
    # each of three: first-ride, bike-2kg (3 x 1250 g), streak-3 and points-20 (3 x 13 points)
    assert awarded == 3 * 4
    assert service.award_all() == 0
    assert service.of("p0").new_badges == []
    with engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(person_badges)).scalar_one()
    assert count == 12


def test_a_badge_is_kept_when_the_rules_change(engine: sa.Engine, rules):
    Personal(engine).ingest_lines(
        [ride(1, "chen", "2025-01-30T08:00:00+08:00")], get("bj-green-life@2023")
    )
    Achievements(engine, rules).of("chen", today=d("2025-01-30"))
    stricter = parse_rules(RULES.replace('id = "first-ride"', 'id = "first-ride-v2"'))
    found = Achievements(engine, stricter).of("chen", today=d("2025-01-30"))
    assert found.retired == ("first-ride",)
    assert found.new_badges == ["first-ride-v2"]
