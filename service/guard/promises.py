"""The "promised time" check: every deadline a draft promises must be keepable.

Each promise is read at its latest plausible moment from `now` ("今日18:00前"
→ 18:00 today, "明日" → the end of tomorrow, "11月26日前" → the end of
26 November, "3个工作日内" → the SLA calendar's 3 working days). A promise
fails when that moment is after the plan's resolution due time, or when it
has already passed.

A clock time written "X点" without 上午/下午 reads 1–6 as the afternoon;
"HH:MM" is a 24-hour clock and is taken as written.

Durations that count from a later event ("回复后2小时内", "处理完成后24小时")
are not deadlines from now; they are listed as ignored. Traditional Chinese
is read through its Simplified form.
"""
from __future__ import annotations

import re
from calendar import monthrange
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from service.guard import CheckResult
from service.guard.calendar import BusinessCalendar, require_aware
from service.language import to_simplified

_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_NUM = "零〇一二两三四五六七八九十百"
NUM = rf"(?:\d+(?:\.\d+)?|[{_CN_NUM}]+)"

_DURATION = re.compile(
    rf"(?:(?:{NUM})\s*[-~～—–至到或]\s*)?"  # a range promises its upper end
    rf"(?:(?P<num>{NUM})\s*个?\s*(?P<half>半)?|(?P<halfonly>半))\s*个?\s*"
    r"(?P<unit>工作小时|工作日|小时|钟头|分钟|秒钟?|天|日|周|星期|礼拜|月)"
    r"(?P<suffix>之内|以内|内|之后|以后|后)?"
)
# Units that also promise without 内 ("48小时给您答复"); day-sized ones need it,
# so "7天无理由退货" or "两周年" are not read as deadlines.
_BARE_UNITS = {"工作小时", "工作日", "小时", "钟头", "分钟", "秒", "秒钟"}
_INSIDE = {"之内", "以内", "内"}

_WD = "一二三四五六日天1234567"
_CN_SMALL = "零一二两三四五六七八九十"
_POINT = re.compile(
    r"(?:"
    rf"(?P<wk>(?P<wkpre>本|这|下个?)?(?:周|星期|礼拜)(?P<wd>[{_WD}]))"
    r"|(?P<span>本周|这周|下周|周末|本月|这个月|月底)"
    r"|(?P<day>今日|今天|当日|当天|今晚|今早|明日|明天|明早|明晚|后天)"
    rf"|(?P<date>(?:(?P<y>\d{{4}})年)?(?P<m>\d{{1,2}}|[{_CN_SMALL}]+)月(?P<d>\d{{1,2}}|[{_CN_SMALL}]+)[日号])"
    r")?\s*"
    r"(?P<period>上午|早上|早晨|中午|下午|傍晚|晚上|晚间|夜里|凌晨|早|晚)?\s*"
    rf"(?:(?P<h>\d{{1,2}}|[{_CN_SMALL}]+)"
    rf"(?::(?P<mm>\d{{2}})|[点时](?:(?P<mhalf>半)|(?P<mm2>\d{{1,2}}|[{_CN_SMALL}]+)分?|整)?))?"
    r"\s*(?P<end>之前|以前|前|之内|以内|内)?"
)
_PM_PERIODS = {"下午", "傍晚", "晚上", "晚间", "夜里", "晚"}
_CUE = re.compile(r"(?:预计|将于|将在|将|会在|会|于|在|可|能)\s*$")
# Words right before a duration that make it a measure, not a promise.
_NOT_PROMISE_BEFORE = re.compile(r"(?:超过|超出|已经|已|满|过了|等了|等待了|长达|近|足足|用了|花了|耗时|每|第|[x×*/])\s*$",
                                 re.IGNORECASE)
_NOT_PROMISE_AFTER = re.compile(r"\s*(?:客服|热线|在线|服务|营业|值班|人工|全天|不间断|畅通|开放|待命|无休|接听|以上|多|无理由|价保|保价|包换|包退)")
_RELATIVE_BEFORE = re.compile(r"后\s*的?\s*$")
_FULLWIDTH = str.maketrans("０１２３４５６７８９：～", "0123456789:~")


@dataclass(frozen=True)
class Promise:
    phrase: str
    start: int
    end: int
    latest: datetime


def cn_number(text: str) -> float | None:
    """'24' → 24, '二十四' → 24, '两' → 2, '一百二十' → 120; None when unreadable."""
    if not text:
        return None
    if text[0].isdigit():
        try:
            return float(text)
        except ValueError:
            return None
    total, current = 0, 0
    for ch in text:
        if ch in _DIGITS:
            current = _DIGITS[ch]
        elif ch == "十":
            total += (current or 1) * 10
            current = 0
        elif ch == "百":
            total += (current or 1) * 100
            current = 0
        else:
            return None
    return float(total + current)


def _normalise(text: str) -> str:
    # Same length as the input, so match positions point into the original text.
    text = text.translate(_FULLWIDTH)
    simplified = to_simplified(text)
    if len(simplified) == len(text):
        return simplified
    return "".join(c if len(c := to_simplified(ch)) == 1 else ch for ch in text)


def _end_of(d: date, cal: BusinessCalendar) -> datetime:
    return datetime.combine(d, time(23, 59, 59), tzinfo=cal.tz)


def _add_months(dt: datetime, months: int) -> datetime:
    month = dt.month - 1 + months
    year, month = dt.year + month // 12, month % 12 + 1
    return dt.replace(year=year, month=month, day=min(dt.day, monthrange(year, month)[1]))


def _duration_latest(m: re.Match, now: datetime, cal: BusinessCalendar) -> datetime | None:
    unit, suffix = m.group("unit"), m.group("suffix")
    if unit not in _BARE_UNITS and suffix not in _INSIDE:
        return None
    amount = cn_number(m.group("num")) if m.group("num") else 0.0
    if amount is None:
        return None
    if m.group("half") or m.group("halfonly"):
        amount += 0.5
    if amount <= 0:
        return None
    if unit == "工作日":
        return cal.add_working_days(now, amount)
    if unit == "工作小时":
        return cal.add_working_time(now, timedelta(hours=amount))
    if unit == "月":
        whole = int(amount)
        return _add_months(now, whole) + timedelta(days=30 * (amount - whole))
    seconds = {"秒": 1, "秒钟": 1, "分钟": 60, "小时": 3600, "钟头": 3600, "天": 86400, "日": 86400,
               "周": 604800, "星期": 604800, "礼拜": 604800}[unit]
    return now + timedelta(seconds=amount * seconds)


def _small(text: str | None) -> int | None:
    if text is None:
        return None
    value = cn_number(text)
    return int(value) if value is not None and value == int(value) else None


def _point_latest(m: re.Match, text: str, now: datetime, cal: BusinessCalendar) -> datetime | None:
    has_time = m.group("h") is not None
    end = m.group("end")
    before = text[:m.start()]
    today = now.date()
    day: date | None = None
    day_default: time = time(23, 59, 59)
    pm = m.group("period") in _PM_PERIODS

    if m.group("wk"):
        wd = m.group("wd")
        index = 6 if wd in "日天7" else ("一二三四五六".index(wd) if wd in "一二三四五六" else int(wd) - 1)
        prefix = m.group("wkpre")
        if not prefix and not end:
            return None  # "周一至周五9:00-18:00" states hours, it promises nothing
        monday = today - timedelta(days=today.weekday())
        if prefix in ("本", "这"):
            day = monday + timedelta(days=index)
        elif prefix:
            day = monday + timedelta(days=7 + index)
        else:
            day = today + timedelta(days=(index - today.weekday()) % 7)
    elif m.group("span"):
        if not end:
            return None
        span = m.group("span")
        sunday = today + timedelta(days=6 - today.weekday())
        if span in ("本周", "这周", "周末"):
            day = sunday
        elif span == "下周":
            day = sunday + timedelta(days=7)
        else:
            day = date(today.year, today.month, monthrange(today.year, today.month)[1])
        return _end_of(day, cal)
    elif m.group("day"):
        word = m.group("day")
        if word in ("今日", "今天", "当日", "当天") and not (end or has_time):
            return None  # "您今天反映的问题" mentions today, it promises nothing
        offset = {"明日": 1, "明天": 1, "明早": 1, "明晚": 1, "后天": 2}.get(word, 0)
        day = today + timedelta(days=offset)
        pm = pm or word in ("今晚", "明晚")
        if word in ("今早", "明早"):
            day_default = time(12, 0)
    elif m.group("date"):
        if not end and not _CUE.search(before):
            return None  # "您11月20日下的订单" refers to the past
        month, dom = _small(m.group("m")), _small(m.group("d"))
        if month is None or dom is None:
            return None
        year = int(m.group("y")) if m.group("y") else today.year
        try:
            day = date(year, month, dom)
            if not m.group("y") and day < today - timedelta(days=183):
                day = date(year + 1, month, dom)  # "1月5日前" written in late December
        except ValueError:
            return None
    else:
        if not has_time or not end:
            return None  # a bare clock time ("9:00-18:00") is not a promise
        day = today

    if not has_time:
        return datetime.combine(day, day_default, tzinfo=cal.tz)
    hour = _small(m.group("h"))
    minute = 30 if m.group("mhalf") else _small(m.group("mm") or m.group("mm2") or "0")
    if hour is None or minute is None or minute >= 60 or hour > 24:
        return None
    period = m.group("period")
    if not period and not pm and m.group("mm") is None and 1 <= hour <= 6:
        pm = True  # "6点前" with no 上午/下午 means the evening; nobody promises 6 a.m.
    if pm and hour < 12:
        hour += 12
    elif period == "中午" and hour <= 2:
        hour += 12
    elif period == "凌晨" and hour == 12:
        hour = 0
    if hour == 24:
        if minute:
            return None
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=cal.tz)
    return datetime.combine(day, time(hour, minute), tzinfo=cal.tz)


def scan_promises(text: str, now: datetime, cal: BusinessCalendar) -> tuple[list[Promise], list[str]]:
    """Promises in `text` (in order) and the relative durations that were ignored."""
    now = cal.local(now, "now")
    norm = _normalise(text or "")
    found: list[Promise] = []
    ignored: list[str] = []
    for m in _DURATION.finditer(norm):
        before, after = norm[:m.start()], norm[m.end():]
        if _RELATIVE_BEFORE.search(before):
            ignored.append(text[m.start():m.end()])
            continue
        if _NOT_PROMISE_BEFORE.search(before):
            continue
        if m.group("suffix") is None and _NOT_PROMISE_AFTER.match(after):
            continue
        if m.group("suffix") in ("之后", "以后", "后") and m.group("unit") not in _BARE_UNITS:
            continue
        latest = _duration_latest(m, now, cal)
        if latest is not None:
            found.append(Promise(text[m.start():m.end()], m.start(), m.end(), latest))
    for m in _POINT.finditer(norm):
        if m.end() == m.start():
            continue
        latest = _point_latest(m, norm, now, cal)
        if latest is not None:
            phrase = text[m.start():m.end()].strip()
            found.append(Promise(phrase, m.start(), m.end(), latest))
    # Keep the longest reading where two overlap ("11月26日18:00前" over "18:00前").
    found.sort(key=lambda p: (p.start, -(p.end - p.start)))
    kept: list[Promise] = []
    for promise in found:
        if kept and promise.start < kept[-1].end:
            continue
        kept.append(promise)
    return kept, ignored


def find_promises(text: str, now: datetime, engine, team: str | None = None) -> list[tuple[str, datetime]]:
    """Every deadline `text` promises, as (phrase, latest moment), read from `now`."""
    promises, _ = scan_promises(text, now, engine.calendar(team))
    return [(p.phrase, p.latest) for p in promises]


def _fmt(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M")


def check_promised_times(draft_text: str, plan, now: datetime, engine) -> CheckResult:
    cal = engine.calendar(getattr(plan, "team", None))
    now = cal.local(require_aware(now, "now"))
    due = cal.local(plan.resolution_due)
    promises, ignored = scan_promises(draft_text, now, cal)
    details = {
        "now": now.isoformat(), "resolution_due": due.isoformat(),
        "promises": [{"phrase": p.phrase, "latest": p.latest.isoformat(), "late": p.latest > due,
                      "past": p.latest <= now} for p in promises],
        "ignored": ignored,
    }
    if not promises:
        return CheckResult("promised_time", True, "草稿没有承诺从现在起算的具体时限。", details)

    problems = []
    for p in promises:
        if p.latest <= now:
            problems.append(f"“{p.phrase}”指向{_fmt(p.latest)}，现在已是{_fmt(now)}，这个时间已经过去")
        elif p.latest > due:
            problems.append(f"“{p.phrase}”最晚到{_fmt(p.latest)}，晚于解决时限{_fmt(due)}")
    if problems:
        return CheckResult("promised_time", False, "；".join(problems) + "。", details)
    listed = "、".join(f"“{p.phrase}”（{_fmt(p.latest)}）" for p in promises)
    return CheckResult("promised_time", True, f"承诺的时限都不晚于解决时限{_fmt(due)}：{listed}。", details)
