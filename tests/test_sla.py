"""SLA engine and business calendar: targets, working time, holidays, follow-ups, breaches."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from service.guard.calendar import BusinessCalendar
from service.guard.promises import find_promises
from service.guard.sla import SlaEngine
from service.policy import BusinessHours, Policy, load_policy

POLICY_PATH = Path(__file__).resolve().parents[1] / "knowledge" / "policy.yaml"
TZ = ZoneInfo("Asia/Shanghai")
H = timedelta(hours=1)
MIN = timedelta(minutes=1)
SPLIT = BusinessHours(weekdays=["mon", "tue", "wed", "thu", "fri"], periods=[("09:00", "12:00"), ("13:30", "18:00")])


def at(y, mo, d, h=0, mi=0, s=0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=TZ)


MON = at(2025, 11, 24, 10)  # an ordinary Monday, no holiday near


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(POLICY_PATH)


@pytest.fixture(scope="module")
def engine(policy) -> SlaEngine:
    return SlaEngine(policy)


@pytest.fixture(scope="module")
def cal() -> BusinessCalendar:
    return BusinessCalendar(SPLIT)


def custom_policy(**sla_overrides) -> Policy:
    """The real policy with some SLA targets swapped (e.g. for work_hours units)."""
    data = yaml.safe_load(POLICY_PATH.read_text(encoding="utf-8"))
    for priority, targets in sla_overrides.items():
        data["sla"][priority] = targets
    return Policy.model_validate(data)


# --- the package's view of the dates these tests rely on ------------------------

def test_reference_dates_match_chinese_calendar():
    assert chinese_calendar.get_holiday_detail(date(2025, 10, 1)) == (True, "National Day")
    assert chinese_calendar.get_holiday_detail(date(2025, 9, 28)) == (False, "National Day")  # working Sunday
    assert chinese_calendar.get_holiday_detail(date(2025, 10, 11)) == (False, "National Day")  # working Saturday
    assert chinese_calendar.get_holiday_detail(date(2026, 2, 17))[0] is True  # Spring Festival
    assert chinese_calendar.get_holiday_detail(date(2026, 2, 14)) == (False, "Spring Festival")  # working Saturday


# --- priority targets -----------------------------------------------------------

@pytest.mark.parametrize("priority, first, resolution", [
    ("urgent", 2 * H, 24 * H),
    ("high", 4 * H, 48 * H),
    ("medium", 24 * H, 72 * H),
    ("low", 48 * H, 72 * H),
])
def test_priority_targets(engine, priority, first, resolution):
    plan = engine.plan(priority, "inquiry", "app", MON)
    assert plan.first_response_due == MON + first
    assert plan.resolution_due == MON + resolution
    assert plan.priority == priority and plan.channel == "app" and plan.received_at == MON


def test_calendar_hours_run_through_nights_and_weekends(engine):
    friday_evening = at(2025, 11, 28, 20)
    plan = engine.plan("urgent", "after_sales", "app", friday_evening)
    assert plan.first_response_due == at(2025, 11, 28, 22)
    assert plan.resolution_due == at(2025, 11, 29, 20)  # Saturday: "hours" are clock hours


def test_urgent_acknowledge_within_15_minutes(engine):
    assert engine.plan("urgent", "after_sales", "app", MON).acknowledge_due == MON + 15 * MIN
    for priority in ("high", "medium", "low"):
        assert engine.plan(priority, "after_sales", "app", MON).acknowledge_due is None


@pytest.mark.parametrize("channel, delta", [
    ("phone", timedelta(seconds=15)),
    ("web", 2 * MIN), ("app", 2 * MIN), ("wechat", 2 * MIN),
    ("email", 4 * H), ("sms", 4 * H), ("social", 4 * H), ("marketplace", 4 * H), ("store", 4 * H),
])
def test_channel_response(engine, channel, delta):
    assert engine.plan("medium", "inquiry", channel, MON).channel_response_due == MON + delta


def test_unknown_priority_category_channel_rejected(engine):
    with pytest.raises(ValueError):
        engine.plan("critical", "inquiry", "app", MON)
    with pytest.raises(ValueError):
        engine.plan("high", "refund", "app", MON)
    with pytest.raises(ValueError):
        engine.plan("high", "inquiry", "fax", MON)


# --- business calendar: split shifts, evenings, weekends ------------------------------

def test_split_shift_periods(cal):
    assert cal.is_open(at(2025, 11, 24, 11, 59))
    assert not cal.is_open(at(2025, 11, 24, 12))  # periods are half-open
    assert not cal.is_open(at(2025, 11, 24, 13))
    assert cal.is_open(at(2025, 11, 24, 13, 30))
    assert cal.next_open(at(2025, 11, 24, 12, 30)) == at(2025, 11, 24, 13, 30)
    assert cal.next_open(at(2025, 11, 24, 10)) == at(2025, 11, 24, 10)
    assert cal.next_open(at(2025, 11, 24, 7)) == at(2025, 11, 24, 9)
    assert cal.next_open(at(2025, 11, 24, 18)) == at(2025, 11, 25, 9)
    assert cal.next_open(at(2025, 11, 29, 10)) == at(2025, 12, 1, 9)  # Saturday → Monday
    assert cal.day_length == 7.5 * H


@pytest.mark.parametrize("start, hours, due", [
    (at(2025, 11, 24, 11), 2, at(2025, 11, 24, 14, 30)),  # over lunch
    (at(2025, 11, 24, 12, 15), 1, at(2025, 11, 24, 14, 30)),  # starts in the lunch break
    (at(2025, 11, 24, 17), 2, at(2025, 11, 25, 10)),  # over the evening
    (at(2025, 11, 24, 16), 2, at(2025, 11, 24, 18)),  # fits exactly: due at the close, not next morning
    (at(2025, 11, 24, 20), 1, at(2025, 11, 25, 10)),  # received after hours
    (at(2025, 11, 28, 17), 2, at(2025, 12, 1, 10)),  # Friday evening → Monday
    (at(2025, 11, 29, 10), 4, at(2025, 12, 1, 14, 30)),  # Saturday counts nothing
    (at(2025, 11, 24, 10), 7.5, at(2025, 11, 25, 10)),  # one working day of hours
])
def test_add_working_time(cal, start, hours, due):
    assert cal.add_working_time(start, timedelta(hours=hours)) == due
    assert cal.working_time_between(start, due) == timedelta(hours=hours)


def test_working_time_between(cal):
    assert cal.working_time_between(at(2025, 11, 24, 8), at(2025, 11, 24, 19)) == 7.5 * H
    assert cal.working_time_between(at(2025, 11, 28, 17), at(2025, 12, 1, 10)) == 2 * H
    assert cal.working_time_between(at(2025, 11, 24, 12, 10), at(2025, 11, 24, 13, 20)) == timedelta(0)
    assert cal.working_time_between(at(2025, 11, 25, 10), at(2025, 11, 24, 17)) == -2 * H
    assert cal.add_working_time(MON, timedelta(0)) == MON
    with pytest.raises(ValueError):
        cal.add_working_time(MON, -H)


@pytest.mark.parametrize("start, n, due", [
    (at(2025, 11, 24, 10), 1, at(2025, 11, 25, 10)),  # inside hours: same clock time
    (at(2025, 11, 24, 10), 3, at(2025, 11, 27, 10)),
    (at(2025, 11, 27, 15), 2, at(2025, 12, 1, 15)),  # over the weekend
    (at(2025, 11, 24, 8), 1, at(2025, 11, 24, 18)),  # before opening: close of that day
    (at(2025, 11, 24, 9), 1, at(2025, 11, 24, 18)),  # at opening: close of that day
    (at(2025, 11, 24, 18), 1, at(2025, 11, 25, 18)),  # at closing: close of the next day
    (at(2025, 11, 28, 20), 1, at(2025, 12, 1, 18)),  # Friday night → Monday close
    (at(2025, 11, 29, 10), 2, at(2025, 12, 2, 18)),  # Saturday → Tuesday close
])
def test_add_working_days_convention(cal, start, n, due):
    assert cal.add_working_days(start, n) == due


# --- holidays and adjusted working days ------------------------------------------------

def test_national_day_week_is_off_and_adjusted_days_are_on(cal):
    for day in range(1, 9):
        assert not cal.is_working_day(date(2025, 10, day))
    assert cal.is_working_day(date(2025, 9, 28))  # Sunday, 调休
    assert cal.is_working_day(date(2025, 10, 11))  # Saturday, 调休
    assert not cal.is_working_day(date(2025, 10, 12))  # an ordinary Sunday
    assert cal.is_working_day(date(2025, 10, 9))


def test_work_time_over_national_day(cal):
    assert cal.add_working_time(at(2025, 9, 30, 17), 2 * H) == at(2025, 10, 9, 10)
    assert cal.add_working_days(at(2025, 9, 30, 10), 1) == at(2025, 10, 9, 10)
    assert cal.next_open(at(2025, 10, 3, 10)) == at(2025, 10, 9, 9)
    assert cal.working_time_between(at(2025, 9, 30, 18), at(2025, 10, 9, 9)) == timedelta(0)


def test_work_time_onto_adjusted_working_weekend_days(cal):
    assert cal.add_working_time(at(2025, 9, 26, 17), 2 * H) == at(2025, 9, 28, 10)  # Friday → working Sunday
    assert cal.add_working_time(at(2025, 10, 10, 17), 2 * H) == at(2025, 10, 11, 10)  # → working Saturday


def test_spring_festival_2026(cal):
    assert cal.is_working_day(date(2026, 2, 14))  # Saturday before the holiday, 调休
    assert not any(cal.is_working_day(date(2026, 2, d)) for d in range(15, 24))
    assert cal.is_working_day(date(2026, 2, 28))  # Saturday after the holiday, 调休
    assert cal.add_working_time(at(2026, 2, 13, 17), 2 * H) == at(2026, 2, 14, 10)
    assert cal.add_working_time(at(2026, 2, 14, 17), 2 * H) == at(2026, 2, 24, 10)
    assert cal.add_working_days(at(2026, 2, 13, 10), 2) == at(2026, 2, 24, 10)


def test_holidays_can_be_switched_off():
    plain = BusinessCalendar(SPLIT, use_china_holidays=False)
    assert plain.is_working_day(date(2025, 10, 1))  # a Wednesday
    assert not plain.is_working_day(date(2025, 10, 11))  # a Saturday


def test_years_the_package_does_not_know_use_the_weekday_rule(cal):
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(2040, 1, 2))
    assert cal.is_working_day(date(2040, 1, 2))  # Monday
    assert not cal.is_working_day(date(2040, 1, 1))  # Sunday (New Year's Day, but unknown to the package)
    assert cal.add_working_time(at(2039, 12, 30, 17), 2 * H) == at(2040, 1, 2, 10)  # Fri → Mon


def test_team_weekdays_still_apply_on_ordinary_days(policy):
    seven_days = BusinessCalendar(policy.hours_for("phone"))
    assert seven_days.is_working_day(date(2025, 11, 29))  # ordinary Saturday
    assert not seven_days.is_working_day(date(2025, 10, 2))  # statutory holiday is off for everyone
    six_days = BusinessCalendar(policy.hours_for("after_sales_team"))
    assert six_days.is_working_day(date(2025, 11, 29))
    assert not six_days.is_working_day(date(2025, 11, 30))


def test_bad_business_hours_rejected():
    with pytest.raises(ValueError):
        BusinessCalendar(BusinessHours(weekdays=["mon"], periods=[("18:00", "09:00")]))
    with pytest.raises(ValueError):
        BusinessCalendar(BusinessHours(weekdays=["mon"], periods=[("09:00", "13:00"), ("12:00", "18:00")]))
    with pytest.raises(ValueError):
        BusinessCalendar(BusinessHours(weekdays=["mon"], periods=[("9am", "18:00")]))
    with pytest.raises(ValueError):
        BusinessCalendar(BusinessHours(weekdays=["mon"], periods=[]))


# --- working-time units in the policy ------------------------------------------------------

WORK_UNITS = {"high": {"first_response": {"amount": 4, "unit": "work_hours"},
                       "resolution": {"amount": 2, "unit": "work_days"}},
              "urgent": {"acknowledge": {"amount": 15, "unit": "minutes"},
                         "first_response": {"amount": 2, "unit": "work_hours"},
                         "resolution": {"amount": 1, "unit": "work_days"}}}


def test_work_unit_targets_follow_the_calendar():
    engine = SlaEngine(custom_policy(**WORK_UNITS))
    plan = engine.plan("high", "complaint", "app", at(2025, 11, 28, 16))  # Friday 16:00
    assert plan.first_response_due == at(2025, 12, 1, 11)  # 2 h Friday + 2 h Monday
    assert plan.resolution_due == at(2025, 12, 2, 16)  # same clock, 2 working days later
    lunch = engine.plan("high", "complaint", "app", at(2025, 11, 24, 11))
    assert lunch.first_response_due == at(2025, 11, 24, 16, 30)  # 1 h morning + 3 h afternoon


def test_work_unit_targets_over_holidays():
    engine = SlaEngine(custom_policy(**WORK_UNITS))
    plan = engine.plan("urgent", "after_sales", "app", at(2025, 9, 30, 17))
    assert plan.acknowledge_due == at(2025, 9, 30, 17, 15)  # minutes stay clock minutes
    assert plan.first_response_due == at(2025, 10, 9, 10)
    assert plan.resolution_due == at(2025, 10, 9, 17)
    festival = engine.plan("urgent", "after_sales", "app", at(2026, 2, 14, 17))
    assert festival.first_response_due == at(2026, 2, 24, 10)


def test_team_and_channel_hours_select_the_calendar():
    engine = SlaEngine(custom_policy(**WORK_UNITS))
    saturday_team = engine.plan("high", "after_sales", "app", at(2025, 11, 28, 17), team="after_sales_team")
    assert saturday_team.first_response_due == at(2025, 11, 29, 12)  # Saturday counts for this team
    assert saturday_team.team == "after_sales_team"
    phone = engine.plan("high", "after_sales", "phone", at(2025, 11, 28, 21))  # phone hours 08:00–22:00 daily
    assert phone.first_response_due == at(2025, 11, 29, 11)
    assert phone.team == "phone"
    unknown = engine.plan("high", "after_sales", "app", at(2025, 11, 28, 17), team="no_such_team")
    assert unknown.first_response_due == at(2025, 12, 1, 12) and unknown.team is None


# --- follow-ups ---------------------------------------------------------------------

def ids(plan):
    return [f.id for f in plan.followups]


@pytest.mark.parametrize("priority", ["urgent", "high"])
def test_callback_after_reply_for_urgent_and_high(engine, priority):
    plan = engine.plan(priority, "inquiry", "app", MON)
    assert ids(plan) == ["callback_after_reply"]
    callback = plan.followups[0]
    assert callback.after == "reply" and callback.estimated
    assert callback.due == plan.first_response_due + 2 * H  # no reply yet: counted from its due time
    replied = engine.plan(priority, "inquiry", "app", MON, replied_at=MON + 30 * MIN)
    assert replied.followups[0].due == MON + 30 * MIN + 2 * H
    assert not replied.followups[0].estimated


def test_medium_gets_a_satisfaction_survey_and_low_nothing(engine):
    plan = engine.plan("medium", "inquiry", "email", MON, replied_at=MON + 3 * H)
    assert ids(plan) == ["satisfaction_survey"]
    assert plan.followups[0].due == MON + 27 * H
    assert engine.plan("low", "suggestion", "app", MON).followups == []


def test_after_sales_daily_updates(engine):
    plan = engine.plan("medium", "after_sales", "app", MON)
    assert ids(plan) == ["satisfaction_survey", "daily_progress_update"]
    daily = plan.followups[1]
    assert daily.repeat == "daily_until_resolved"
    assert daily.due == plan.first_response_due + timedelta(days=1)
    assert ids(engine.plan("urgent", "after_sales", "app", MON)) == ["callback_after_reply", "daily_progress_update"]


def test_complaint_callback_after_resolution(engine):
    plan = engine.plan("high", "complaint", "phone", MON)
    assert ids(plan) == ["callback_after_reply", "complaint_callback"]
    callback = plan.followups[1]
    assert callback.after == "resolution"
    assert callback.due == plan.resolution_due + 24 * H
    resolved = engine.plan("high", "complaint", "phone", MON, resolved_at=MON + 5 * H)
    assert resolved.followups[1].due == MON + 29 * H


# --- breaches --------------------------------------------------------------------

def test_breaches_for_a_given_now(engine):
    plan = engine.plan("urgent", "after_sales", "app", MON)
    assert plan.breaches(MON + MIN) == {"acknowledge": False, "channel_response": False,
                                        "first_response": False, "resolution": False}
    late = plan.breaches(MON + 3 * H)
    assert late == {"acknowledge": True, "channel_response": True, "first_response": True, "resolution": False}
    assert plan.breaches(MON + 2 * H)["first_response"] is False  # the due moment itself is in time
    answered = plan.breaches(MON + 30 * H, responded_at=MON + MIN)
    assert answered == {"acknowledge": False, "channel_response": False, "first_response": False, "resolution": True}
    assert plan.breaches(MON + 30 * H, responded_at=MON + MIN, resolved_at=MON + 20 * H)["resolution"] is False
    # answering late stays a breach even when checked afterwards
    assert plan.breaches(MON + 30 * H, responded_at=MON + 10 * MIN)["acknowledge"] is False
    assert plan.breaches(MON + 30 * H, responded_at=MON + 20 * MIN)["acknowledge"] is True


def test_breaches_without_acknowledge_target(engine):
    plan = engine.plan("low", "inquiry", "email", MON)
    assert plan.breaches(MON + 100 * H)["acknowledge"] is False
    assert plan.breaches(MON + 100 * H)["resolution"] is True


# --- time zones and naive datetimes -----------------------------------------------------

def test_naive_datetimes_rejected(engine, cal):
    naive = datetime(2025, 11, 24, 10)
    with pytest.raises(ValueError):
        engine.plan("high", "inquiry", "app", naive)
    with pytest.raises(ValueError):
        engine.plan("high", "inquiry", "app", MON, replied_at=naive)
    plan = engine.plan("high", "inquiry", "app", MON)
    with pytest.raises(ValueError):
        plan.breaches(naive)
    for call in (lambda: cal.add_working_time(naive, H), lambda: cal.add_working_days(naive, 1),
                 lambda: cal.next_open(naive), lambda: cal.working_time_between(naive, MON),
                 lambda: engine.deadline_phrase(naive, MON)):
        with pytest.raises(ValueError):
            call()


def test_results_are_in_asia_shanghai(engine, policy):
    assert policy.timezone == "Asia/Shanghai"
    utc = datetime(2025, 11, 24, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
    plan = engine.plan("high", "inquiry", "app", utc)
    assert plan.received_at == MON and plan.received_at.utcoffset() == 8 * H
    assert plan.first_response_due.tzinfo == TZ
    data = plan.to_dict()
    assert data["first_response_due"] == "2025-11-24T14:00:00+08:00"
    assert json.loads(json.dumps(data)) == data
    assert [f["id"] for f in data["followups"]] == ["callback_after_reply"]
    # a working-time computation in another zone is done on Shanghai's clock
    cal = engine.calendar()
    assert cal.add_working_time(datetime(2025, 11, 24, 9, 30, tzinfo=timezone.utc), H) == at(2025, 11, 25, 9, 30)


# --- customer-facing deadline phrases -------------------------------------------------

@pytest.mark.parametrize("now, due, phrase", [
    (MON, MON + 2 * H, "2小时内"),
    (MON, MON + 24 * H, "24小时内"),
    (MON, MON + 14 * MIN + 59 * timedelta(seconds=1), "10分钟内"),
    (MON, MON + 7 * MIN, "7分钟内"),
    (MON, MON + timedelta(seconds=15), "尽快"),
    (MON, MON - H, "尽快"),
    (MON, at(2025, 11, 24, 18), "今日18:00前"),
    (at(2025, 11, 24, 15, 20), at(2025, 11, 25, 12), "明日12:00前"),
    (MON, MON + timedelta(days=7), "7天内"),
    (at(2025, 11, 24, 10, 5), at(2025, 11, 27, 17), "3个工作日内"),
    (at(2025, 9, 30, 10, 5), at(2025, 10, 9, 17), "1个工作日内"),
])
def test_deadline_phrase(engine, now, due, phrase):
    assert engine.deadline_phrase(due, now) == phrase


@settings(max_examples=150, deadline=None)
@given(now_minutes=st.integers(0, 2 * 365 * 24 * 60), ahead_minutes=st.integers(-60, 40 * 24 * 60),
       seconds=st.integers(0, 59))
def test_deadline_phrase_never_promises_later_than_due(engine, now_minutes, ahead_minutes, seconds):
    now = at(2025, 1, 1) + timedelta(minutes=now_minutes)
    due = now + timedelta(minutes=ahead_minutes, seconds=seconds)
    phrase = engine.deadline_phrase(due, now)
    promises = find_promises(phrase, now, engine)
    if phrase == "尽快":
        assert promises == []
    else:
        assert len(promises) == 1 and promises[0][0] == phrase
        assert now < promises[0][1] <= due
