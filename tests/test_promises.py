"""The promised-time check: finding deadlines in drafts and judging them against the plan."""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from service.guard.promises import check_promised_times, cn_number, find_promises
from service.guard.sla import SlaEngine
from service.policy import load_policy

TZ = ZoneInfo("Asia/Shanghai")
POLICY_PATH = Path(__file__).resolve().parents[1] / "knowledge" / "policy.yaml"


def at(y, mo, d, h=0, mi=0, s=0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=TZ)


NOW = at(2025, 11, 24, 15)  # Monday 15:00
END = (23, 59, 59)


@pytest.fixture(scope="module")
def engine() -> SlaEngine:
    return SlaEngine(load_policy(POLICY_PATH))


# --- reading phrases ------------------------------------------------------------

FOUND = [
    # text, phrase reported, latest moment
    ("我们会在2小时内给您答复。", "2小时内", NOW + timedelta(hours=2)),
    ("两小时内给您回电", "两小时内", NOW + timedelta(hours=2)),
    ("30分钟内联系您", "30分钟内", NOW + timedelta(minutes=30)),
    ("三十分钟内联系您", "三十分钟内", NOW + timedelta(minutes=30)),
    ("半小时内回复", "半小时内", NOW + timedelta(minutes=30)),
    ("一个半小时内回复", "一个半小时内", NOW + timedelta(minutes=90)),
    ("24小时内处理完毕", "24小时内", NOW + timedelta(hours=24)),
    ("二十四小时之内处理", "二十四小时之内", NOW + timedelta(hours=24)),
    ("48小时给您答复", "48小时", NOW + timedelta(hours=48)),
    ("今日18:00前回复您", "今日18:00前", at(2025, 11, 24, 18)),
    ("今日18：00前回复您", "今日18：00前", at(2025, 11, 24, 18)),
    ("今天下午6点前回复您", "今天下午6点前", at(2025, 11, 24, 18)),
    ("今天18点半前", "今天18点半前", at(2025, 11, 24, 18, 30)),
    ("今晚8点前", "今晚8点前", at(2025, 11, 24, 20)),
    ("今天之内给您结果", "今天之内", at(2025, 11, 24, *END)),
    ("明天中午12点前给您结果", "明天中午12点前", at(2025, 11, 25, 12)),
    ("明天上午十点前", "明天上午十点前", at(2025, 11, 25, 10)),
    ("预计明日送达", "明日", at(2025, 11, 25, *END)),
    ("后天给您回复", "后天", at(2025, 11, 26, *END)),
    ("3个工作日内完成退款", "3个工作日内", at(2025, 11, 27, 15)),
    ("三个工作日完成退款", "三个工作日", at(2025, 11, 27, 15)),
    ("1个工作日内回复", "1个工作日内", at(2025, 11, 25, 15)),
    ("预计2-3个工作日到账", "2-3个工作日", at(2025, 11, 27, 15)),
    ("一周内寄回", "一周内", NOW + timedelta(days=7)),
    ("7天内寄回", "7天内", NOW + timedelta(days=7)),
    ("一两天内", "一两天内", NOW + timedelta(days=2)),
    ("本周五前完成", "本周五前", at(2025, 11, 28, *END)),
    ("下周一前完成", "下周一前", at(2025, 12, 1, *END)),
    ("本周内完成", "本周内", at(2025, 11, 30, *END)),
    ("11月26日前完成", "11月26日前", at(2025, 11, 26, *END)),
    ("11月26号前完成", "11月26号前", at(2025, 11, 26, *END)),
    ("11月26日18:00前完成", "11月26日18:00前", at(2025, 11, 26, 18)),
    ("十一月二十六日前完成", "十一月二十六日前", at(2025, 11, 26, *END)),
    ("预计11月26日送达", "11月26日", at(2025, 11, 26, *END)),
    ("1月5日前完成", "1月5日前", at(2026, 1, 5, *END)),  # next January, not last
    ("2026年1月5日18:00前", "2026年1月5日18:00前", at(2026, 1, 5, 18)),
    # Traditional Chinese
    ("我們會在兩小時內回覆您", "兩小時內", NOW + timedelta(hours=2)),
    ("三個工作日內完成", "三個工作日內", at(2025, 11, 27, 15)),
    ("本週五前完成", "本週五前", at(2025, 11, 28, *END)),
    ("明天中午12點前", "明天中午12點前", at(2025, 11, 25, 12)),
    ("預計明日送達", "明日", at(2025, 11, 25, *END)),
    ("今天下午6點前", "今天下午6點前", at(2025, 11, 24, 18)),
    ("30分鐘內聯繫您", "30分鐘內", NOW + timedelta(minutes=30)),
]


@pytest.mark.parametrize("text, phrase, latest", FOUND, ids=[row[0] for row in FOUND])
def test_finds_promise(engine, text, phrase, latest):
    assert find_promises(text, NOW, engine) == [(phrase, latest)]


NOT_PROMISES = [
    "我们会在回复后2小时内电话回访，确认问题是否解决。",  # counts from the reply
    "问题处理完成后24小时内，我们会电话回访听取您的意见。",
    "回复后24小时内我们会邀请您对本次服务进行评价。",
    "問題處理完成後24小時內回訪",
    "在问题解决前，我们每天都会向您同步处理进度。",
    "我们提供7×24小时客服热线400-820-1234。",
    "24小时在线客服随时为您服务",
    "工作时间：周一至周五9:00-18:00",
    "您11月20日下的订单已经出库。",
    "您今天反映的问题我们已经记录。",
    "支持7天无理由退货。",
    "让您等了48小时，非常抱歉。",
    "超过24小时未处理的会自动升级。",
    "我们每2小时同步一次进度。",
    "我们会尽快处理，请您耐心等待。",
    "十分抱歉给您带来不便。",
    "请您稍等一点时间。",
    "",
]


@pytest.mark.parametrize("text", NOT_PROMISES)
def test_not_a_promise(engine, text):
    assert find_promises(text, NOW, engine) == []


def test_several_promises_in_order(engine):
    text = "我们会在2小时内联系您，3个工作日内完成维修，我们会在回复后2小时内电话回访。"
    assert find_promises(text, NOW, engine) == [
        ("2小时内", NOW + timedelta(hours=2)), ("3个工作日内", at(2025, 11, 27, 15))]


def test_work_days_skip_holidays(engine):
    before_national_day = at(2025, 9, 30, 10)
    assert find_promises("1个工作日内", before_national_day, engine) == [("1个工作日内", at(2025, 10, 9, 10))]


def test_bare_clock_hours_without_period_read_as_afternoon(engine):
    assert find_promises("今天6点前", NOW, engine) == [("今天6点前", at(2025, 11, 24, 18))]
    assert find_promises("今日06:00前", NOW, engine) == [("今日06:00前", at(2025, 11, 24, 6))]


@pytest.mark.parametrize("text, value", [("24", 24), ("二十四", 24), ("两", 2), ("十", 10), ("十二", 12),
                                         ("一百二十", 120), ("四十八", 48), ("1.5", 1.5), ("几", None)])
def test_cn_number(text, value):
    assert cn_number(text) == value


# --- the check: both directions ---------------------------------------------------------

def plan_for(engine, priority):
    return engine.plan(priority, "after_sales", "app", NOW)  # urgent resolution: tomorrow 15:00


CHECKS = [
    # priority, draft, passes
    ("urgent", "我们会在2小时内给您答复。", True),
    ("urgent", "24小时内处理完毕。", True),  # exactly the resolution due time
    ("urgent", "今日18:00前给您结果。", True),
    ("urgent", "明天中午12点前给您结果。", True),
    ("urgent", "1个工作日内处理完毕。", True),
    ("urgent", "我们会在回复后2小时内电话回访。", True),  # relative: not judged against now
    ("urgent", "您好，我们已收到您的反馈。", True),  # nothing promised
    ("urgent", "预计明日送达。", False),  # the end of tomorrow is after 15:00 tomorrow
    ("urgent", "3个工作日内处理完毕。", False),
    ("urgent", "48小时内处理完毕。", False),
    ("urgent", "一周内处理完毕。", False),
    ("urgent", "本周五前处理完毕。", False),
    ("urgent", "11月26日前处理完毕。", False),
    ("urgent", "今日10:00前给您结果。", False),  # already past at 15:00
    ("urgent", "2小时内回复，今日10:00前处理。", False),
    ("urgent", "我們會在兩小時內回覆您。", True),
    ("urgent", "三個工作日內處理完畢。", False),
    ("high", "48小时内处理完毕。", True),
    ("high", "本周五前处理完毕。", False),
    ("medium", "72小时内处理完毕。", True),
    ("medium", "3个工作日内处理完毕。", True),  # Thursday 15:00 = 72 h
    ("medium", "11月26日前处理完毕。", True),
    ("medium", "本周五前处理完毕。", False),
    ("low", "7天内处理完毕。", False),
]


@pytest.mark.parametrize("priority, draft, passes", CHECKS, ids=[f"{p}:{d}" for p, d, _ in CHECKS])
def test_check_promised_times(engine, priority, draft, passes):
    result = check_promised_times(draft, plan_for(engine, priority), NOW, engine)
    assert result.name == "promised_time"
    assert result.passed is passes, result.reason


def test_late_promise_reason_names_phrase_and_both_times(engine):
    result = check_promised_times("3个工作日内处理完毕。", plan_for(engine, "urgent"), NOW, engine)
    assert not result.passed
    assert "3个工作日内" in result.reason
    assert "2025-11-27 15:00" in result.reason and "2025-11-25 15:00" in result.reason
    assert result.details["promises"][0]["late"] is True


def test_past_promise_reason(engine):
    result = check_promised_times("今日10:00前给您结果。", plan_for(engine, "urgent"), NOW, engine)
    assert not result.passed
    assert "今日10:00前" in result.reason and "2025-11-24 10:00" in result.reason
    assert "2025-11-24 15:00" in result.reason
    assert result.details["promises"][0]["past"] is True


def test_pass_reason_lists_what_was_found(engine):
    result = check_promised_times("2小时内回复，回复后2小时内回访。", plan_for(engine, "urgent"), NOW, engine)
    assert result.passed
    assert "2小时内" in result.reason and "2025-11-24 17:00" in result.reason
    assert result.details["ignored"] == ["2小时内"]


def test_nothing_promised_passes(engine):
    result = check_promised_times("感谢您的反馈。", plan_for(engine, "low"), NOW, engine)
    assert result.passed and result.details["promises"] == []


def test_engine_phrases_pass_the_check(engine):
    for priority in ("urgent", "high", "medium", "low"):
        plan = plan_for(engine, priority)
        for due in (plan.first_response_due, plan.resolution_due):
            draft = f"我们会在{engine.deadline_phrase(due, NOW)}给您答复。"
            assert check_promised_times(draft, plan, NOW, engine).passed, draft


def test_work_day_promise_uses_the_plans_calendar(engine):
    # The phone line works every day: from Saturday, 1 working day ends Sunday.
    saturday = at(2025, 11, 29, 10)
    plan = engine.plan("urgent", "after_sales", "phone", saturday)
    assert check_promised_times("1个工作日内处理完毕。", plan, saturday, engine).passed
    app_plan = engine.plan("urgent", "after_sales", "app", saturday)
    assert not check_promised_times("1个工作日内处理完毕。", app_plan, saturday, engine).passed


def test_naive_now_rejected(engine):
    with pytest.raises(ValueError):
        check_promised_times("2小时内", plan_for(engine, "urgent"), datetime(2025, 11, 24, 15), engine)
    with pytest.raises(ValueError):
        find_promises("2小时内", datetime(2025, 11, 24, 15), engine)
